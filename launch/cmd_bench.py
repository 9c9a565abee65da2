"""`protege bench sim|record|dataset|train|inference|rollout|intervene|replay`: each capability's figures."""

from __future__ import annotations

import argparse
import importlib

from protege.launch.cli import add_ray_argument, emit_json

# target -> (module, function); each function takes json: bool and returns a dict of figures.
BENCHES: dict[str, tuple[str, str]] = {
    "sim": ("protege.launch.cmd_bench", "_sim"),
    "record": ("protege.teleop.bench", "run_bench"),
    "dataset": ("protege.datasets.bench", "run_bench"),
    "train": ("protege.policies.bench", "run_train_bench"),
    "inference": ("protege.policies.bench", "run_inference_bench"),
    "rollout": ("protege.launch.cmd_bench", "_rollout"),
    "intervene": ("protege.launch.cmd_bench", "_intervene"),
    "replay": ("protege.launch.cmd_bench", "_replay"),
}
ROLLOUT_EPISODES = 48


RAY_TARGETS = ("record", "rollout")  # their functions also take ray: an address, or None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=sorted(BENCHES), help="what to measure")
    add_ray_argument(parser, "record and rollout only")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    from protege.launch.errors import UserError

    if args.ray and args.target not in RAY_TARGETS:
        raise UserError(f"--ray measures {' and '.join(RAY_TARGETS)}, not {args.target}")
    module, function = BENCHES[args.target]
    extra = {"ray": args.ray} if args.ray else {}
    result = getattr(importlib.import_module(module), function)(json=args.json, **extra)
    if args.json:
        emit_json(result)
    return 0


def _sim(json: bool) -> dict:
    from protege.sim.bench import format_bench, run_bench

    result = run_bench()
    print(format_bench(result), flush=True)
    return result


def _rollout(json: bool, ray: str | None = None) -> dict:
    """Policy rollout throughput with 1 and 4 env processes (and with ``ray``, 4 Ray actors, at most one
    per CPU): an mlp on lift without cameras, episodes running to the time limit (the policy is barely
    trained), process start-up included."""
    import functools
    import os
    import tempfile
    from pathlib import Path

    from protege.launch.checkpoints import load_for_rollout
    from protege.policies.config import TrainConfig
    from protege.policies.trainer import train
    from protege.sim import EnvSpec
    from protege.teleop.collect import collect
    from protege.teleop.rollout import RolloutSpec, run_rollouts

    env = EnvSpec.make("lift", cameras=())
    result: dict = {"task": "lift", "policy": "mlp", "episodes": ROLLOUT_EPISODES, "cpus": os.cpu_count(), "envs": []}
    with tempfile.TemporaryDirectory(prefix="protege-bench-rollout-") as tmp:
        demos, run_dir = str(Path(tmp) / "demos.zarr"), str(Path(tmp) / "run")
        collect(env, demos, 4, noise=0.2, progress=False)
        train(TrainConfig(dataset=demos, out=run_dir, policy="mlp", steps=20, warmup_steps=5, progress=False))
        spec = RolloutSpec(env, functools.partial(load_for_rollout, run_dir, "cpu", True))
        for envs, on in ((1, None), (4, None), *(((4, ray),) if ray else ())):
            summary = run_rollouts(spec, ROLLOUT_EPISODES, envs=envs, progress=False, ray=on).summary
            figures = {"envs": envs, "ray": on, "episodes_per_min": summary["episodes_per_min"],
                       "seconds": summary["seconds"], "steps_per_s": round(sum(summary["lengths"]) / summary["seconds"], 1)}
            result["envs"].append(figures)
            if not json:
                where = f"{envs} Ray actor(s) at {on}" if on else f"{envs} env(s)"
                print(f"rollout: {ROLLOUT_EPISODES} lift episodes (mlp, no cameras), {where}: "
                      f"{figures['episodes_per_min']} episodes/min, {figures['steps_per_s']} steps/s "
                      f"({figures['seconds']} s with process start-up)", flush=True)
    return result


def _intervene(json: bool) -> dict:
    from protege.teleop.bench import bench_intervention

    result = bench_intervention()
    if not json:
        tick = result["tick_ms"]
        print(f"intervention window on {result['display']}: {result['ticks']} ticks at {result['target_hz']:g} Hz with "
              f"two cameras, achieved {result['achieved_hz']} Hz, late {result['late_ticks']} "
              f"({100 * result['on_time']:.1f}% on time); tick work ms p50 {tick['p50']} p99 {tick['p99']}", flush=True)
    return result


def _replay(json: bool) -> dict:
    from protege.teleop.bench import bench_replay

    result = bench_replay()
    if not json:
        print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    return result
