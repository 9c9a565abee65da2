"""`protege bench sim|record|dataset|train|inference|rollout|intervene|replay|gate|learn|chunking|vision`: each
capability's figures.

`protege bench learn --out DIR` runs the learning table (:mod:`protege.launch.experiments.learn_table`), `protege
bench chunking --out DIR` the chunking table (:mod:`protege.launch.experiments.chunking_table`), `protege bench
vision --out DIR` the vision table (:mod:`protege.launch.experiments.vision_table`); a rerun with the same settings
resumes each.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from protege.launch.cli import add_ray_argument, connect_ray, emit_json

T = TypeVar("T")

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
    "gate": ("protege.launch.cmd_bench", "_gate"),
    "learn": ("protege.launch.cmd_bench", "_learn"),
    "chunking": ("protege.launch.cmd_bench", "_chunking"),
    "vision": ("protege.launch.cmd_bench", "_vision"),
}
ROLLOUT_EPISODES = 48
GATE_EPISODES, GATE_SEED = 50, 200_000  # validation seeds: apart from demos (0, ...) and evaluation (100000, ...)


RAY_TARGETS = ("record", "rollout")  # their functions also take ray: an address, or None
LEARN_TASKS = ("reach", "lift", "push", "slot_push", "stack")
LEARN_OPTIONS = ("out", "tasks", "policies", "demos", "noise", "episodes", "steps", "disturb", "jobs", "envs", "device",
                 "cell", "delays", "looks")
# The table options each table takes (the rest are the learning table's alone).
TABLE_OPTIONS = {"learn": set(LEARN_OPTIONS) - {"delays", "looks"},
                 "chunking": {"out", "tasks", "policies", "demos", "noise", "episodes", "steps", "envs", "device",
                              "delays"},
                 "vision": {"out", "tasks", "policies", "demos", "noise", "episodes", "steps", "disturb", "envs",
                            "device", "looks"}}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from protege.launch.experiments.learn_table import CHUNK_NOISE, TABLE_NOISE

    parser.add_argument("target", choices=sorted(BENCHES), help="what to measure")
    add_ray_argument(parser, "record and rollout only")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    sim = parser.add_argument_group("bench sim")
    sim.add_argument("--robot", help="the arm: built-in name, Menagerie name or spec file (default: protege_arm)")
    gate = parser.add_argument_group("bench gate and intervene")
    gate.add_argument("--checkpoint", metavar="RUN",
                      help="bench gate: an mlp trained with --set members=K (default: one trained here: 30 "
                           "slot_push demos, 4,000 steps, 5 members); bench intervene: the policy that drives the "
                           "window, in its own task (default: the scripted lift expert)")
    learn = parser.add_argument_group("bench learn (the learning table)")
    learn.add_argument("--out", help="table directory: created, or resumed if it holds the same settings")
    learn.add_argument("--tasks", help="comma-separated tasks (default: all; chunking: push,stack)")
    learn.add_argument("--policies",
                       help="comma-separated policies (default: mlp,act,diffusion on state, cnn with cameras on "
                            "lift and push; chunking: act,diffusion, and diffusion-prefix: trained with committed "
                            "prefixes; vision: cnn, and act and diffusion on the vision input set)")
    learn.add_argument("--demos", type=int, help="scripted demos per task (default: 100; vision: each task's own, 200 "
                                                  "on push, and 300 randomised ones)")
    learn.add_argument("--noise", type=float,
                       help=f"the demos' expert action noise, DART-labelled (default: {TABLE_NOISE:g}; chunking: "
                            f"{CHUNK_NOISE:g}, so that a chunk is the expert's own plan; vision: each task's own, "
                            f"DART at 0.5 on push and slot_push, the executed actions at 0.2 on the others)")
    learn.add_argument("--episodes", type=int, default=100,
                       help="evaluation episodes per cell, clean and disturbed each (default: 100)")
    learn.add_argument("--steps", type=int, default=0, help="training steps of every cell (default: 20000)")
    learn.add_argument("--disturb", help="the disturbed evaluation's --disturb (default: default; vision: visual)")
    learn.add_argument("--jobs", type=int, default=1, help="cells run at a time (default: 1)")
    learn.add_argument("--envs", type=int, default=1, help="evaluation processes per cell (default: 1)")
    learn.add_argument("--device", default="auto", help="torch device for training: auto, cpu, cuda (default: auto)")
    learn.add_argument("--cell", help=argparse.SUPPRESS)  # one cell, in its own process (run by the table)
    learn.add_argument("--looks", type=int,
                       help="bench vision: looks each randomised demo is rendered under (`dataset relook`; default: 3)")
    learn.add_argument("--delays", help="bench chunking: comma-separated inference delays in ticks (default: "
                                        "0,1,2,4,6)")



def run(args: argparse.Namespace) -> int:
    from protege.launch.errors import UserError

    if args.ray and args.target not in RAY_TARGETS:
        raise UserError(f"--ray measures {' and '.join(RAY_TARGETS)}, not {args.target}")
    table_options = [f"--{name}" for name in _table_options_given(args)
                     if name not in TABLE_OPTIONS.get(args.target, set())]
    if table_options:
        tables = [t for t in TABLE_OPTIONS if set(o[2:] for o in table_options) <= TABLE_OPTIONS[t]]
        raise UserError(f"{', '.join(table_options)}: for bench {' or '.join(tables) or 'learn'} only, not bench "
                        f"{args.target}")
    if args.target != "sim" and args.robot is not None:
        raise UserError(f"--robot is for bench sim, not {args.target}")
    if args.target not in ("gate", "intervene") and args.checkpoint is not None:
        raise UserError(f"--checkpoint is for bench gate and intervene, not {args.target}")
    connect_ray(args.ray)
    module, function = BENCHES[args.target]
    takes_args = ("learn", "sim", "gate", "chunking", "vision", "intervene")
    extra = {"ray": args.ray} if args.ray else {"args": args} if args.target in takes_args else {}
    result = getattr(importlib.import_module(module), function)(json=args.json, **extra)
    if args.json:
        emit_json(result)
    return 0


def _table_options_given(args: argparse.Namespace) -> list[str]:
    """The table options ``args`` gives a value other than their default."""
    from protege.launch.cli import build_parser

    defaults = build_parser().parse_args(["bench", args.target])
    return [name for name in LEARN_OPTIONS if getattr(args, name) != getattr(defaults, name)]


def _sim(json: bool, args: argparse.Namespace) -> dict:
    from protege.sim.bench import format_bench, run_bench

    result = run_bench(robot=args.robot or "protege_arm")
    if not json:
        print(format_bench(result), flush=True)
    return result


def _rollout(json: bool, ray: str | None = None) -> dict:
    """Policy rollout throughput with 1 and 4 env processes (and with ``ray``, 4 Ray actors, at most one
    per CPU): an mlp on lift without cameras, episodes running to the time limit (the policy is barely
    trained), process start-up included."""
    import os
    import tempfile
    from pathlib import Path

    from protege.launch.runs import open_run
    from protege.policies.config import TrainConfig
    from protege.policies.trainer import train
    from protege.sim import EnvSpec
    from protege.teleop.runtime.collect import collect

    env = EnvSpec.make("lift", cameras=())
    result: dict = {"task": "lift", "policy": "mlp", "episodes": ROLLOUT_EPISODES, "cpus": os.cpu_count(), "envs": []}
    with tempfile.TemporaryDirectory(prefix="protege-bench-rollout-") as tmp:
        demos, run_dir = str(Path(tmp) / "demos.zarr"), str(Path(tmp) / "run")
        collect(env, demos, 4, noise=0.2, progress=False)
        train(TrainConfig(dataset=demos, out=run_dir, policy="mlp", steps=20, warmup_steps=5, progress=False))
        run = open_run(run_dir)
        for envs, on in ((1, None), (4, None), *(((4, ray),) if ray else ())):
            summary = run.evaluate(ROLLOUT_EPISODES, seed=0, envs=envs, progress=False, ray=on).summary
            figures = {"envs": envs, "ray": on, "episodes_per_min": summary.episodes_per_min,
                       "seconds": summary.seconds, "steps_per_s": round(sum(summary.lengths) / summary.seconds, 1)}
            result["envs"].append(figures)
            if not json:
                where = f"{envs} Ray actor(s) at {on}" if on else f"{envs} env(s)"
                print(f"rollout: {ROLLOUT_EPISODES} lift episodes (mlp, no cameras), {where}: "
                      f"{figures['episodes_per_min']} episodes/min, {figures['steps_per_s']} steps/s "
                      f"({figures['seconds']} s with process start-up)", flush=True)
    return result


def _intervene(json: bool, args: argparse.Namespace) -> dict:
    """The intervention window's loop timing, driven by the scripted lift expert or by the policy of
    ``--checkpoint`` in its own task (a chunked one computing its chunks in a worker thread, as windows do)."""
    from protege.launch.runs import open_run
    from protege.teleop.bench import bench_intervention

    policy, spec, driver = None, None, "the scripted lift expert"
    if args.checkpoint is not None:  # the front and wrist cameras at the size the policy reads (or was trained at)
        run = open_run(args.checkpoint, cameras=("front", "wrist"), delay=None)
        policy, spec, driver = run.make_policy(), run.env, f"{run.meta.policy} on {run.env.task}"
    result = {**bench_intervention(policy, spec), "driver": driver}
    if not json:
        tick = result["tick_ms"]
        print(f"intervention window on {result['display']}, {driver}: {result['ticks']} ticks at "
              f"{result['target_hz']:g} Hz with two cameras, achieved {result['achieved_hz']} Hz, late "
              f"{result['late_ticks']} ({100 * result['on_time']:.1f}% on time); tick work ms p50 {tick['p50']} "
              f"p99 {tick['p99']}", flush=True)
    return result


def _replay(json: bool) -> dict:
    from protege.teleop.bench import bench_replay

    result = bench_replay()
    if not json:
        print(" ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    return result


def _gate(json: bool, args: argparse.Namespace) -> dict:
    """Precision and recall of the doubt gate's firings against the deviation gate's over the same rollouts
    (the policy driving alone under --disturb default, the expert watching), at thresholds from the
    doubt's own distribution."""
    import tempfile
    from pathlib import Path

    import numpy as np

    from protege.launch.errors import UserError
    from protege.launch.runs import open_run
    from protege.policies.config import TrainConfig
    from protege.policies.mlp.config import MLPConfig
    from protege.policies.trainer import train
    from protege.sim import EnvSpec
    from protege.sim.disturbances import parse_disturbances
    from protege.teleop.runtime.collect import collect
    from protege.teleop.runtime.gate import GateConfig, compare_gates, watch

    with tempfile.TemporaryDirectory(prefix="protege-bench-gate-") as tmp:
        run_dir = args.checkpoint
        if run_dir is None:
            demos, run_dir = str(Path(tmp) / "demos.zarr"), str(Path(tmp) / "run")
            collect(EnvSpec.make("slot_push", cameras=()), demos, 30, noise=0.2, progress=False)
            train(TrainConfig(dataset=demos, out=run_dir, policy="mlp", steps=4000, val_ratio=0.0, progress=False),
                  MLPConfig(members=5))
        run = open_run(run_dir)
        if not run.meta.policy_config.knows_doubt:
            raise UserError(f"{run_dir} has no doubt to measure: train an mlp with --set members=5")
        config = GateConfig()
        watcher = watch(run.env, run.make_policy, GATE_EPISODES, GATE_SEED, parse_disturbances("default"))
    doubts = np.concatenate(watcher.doubts)
    thresholds = [float(q) for q in np.percentile(doubts, np.arange(10, 96, 2.5))]
    window = round(0.5 * run.env.control_hz)
    rows = compare_gates(watcher, config, thresholds, window)
    best = max(rows, key=lambda r: (r.precision >= 0.6, r.recall, r.precision))
    (default,) = compare_gates(watcher, config, [config.doubt], window)
    result = {"task": run.env.task, "episodes": GATE_EPISODES, "window_ticks": window,
              "deviation_threshold": config.threshold, "deviation_firings": rows[0].deviation_firings,
              "rows": [dataclasses.asdict(r) for r in rows], "best": dataclasses.asdict(best),
              "default": dataclasses.asdict(default)}
    if not json:
        print(f"gate: {GATE_EPISODES} {run.env.task} episodes under --disturb default, the deviation gate "
              f"(> {config.threshold} of a step for {config.deviation_ticks} ticks) fired {best.deviation_firings} "
              f"times; precision: the doubt gate's firings with one of those within {window} ticks; recall: those "
              f"with the policy doubtful within {window} ticks:", flush=True)
        for r in rows:
            print(f"  doubt > {r.doubt:.4f}: {r.firings:4d} firings, precision {r.precision:.3f}, "
                  f"recall {r.recall:.3f}", flush=True)
        print(f"best with precision >= 0.6: doubt > {best.doubt:.4f}, precision {best.precision:.3f}, "
              f"recall {best.recall:.3f}", flush=True)
        print(f"at the default doubt {default.doubt:g}: {default.firings} firings, precision {default.precision:.3f}, "
              f"recall {default.recall:.3f}", flush=True)
    return result


def _learn(json: bool, args: argparse.Namespace) -> dict:
    from pathlib import Path

    from protege.launch.cli import check_processes
    from protege.launch.cmd_rollout import parse_disturb
    from protege.launch.errors import UserError
    from protege.launch.experiments.learn_table import LearnSettings, run_cell, run_table
    from protege.policies.trainer import resolve_device
    from protege.sim.disturbances import describe

    if args.out is None:
        raise UserError("bench learn needs --out DIR (the table's directory)")
    resolve_device(args.device, 0)  # an unknown or absent device before any cell
    check_processes("--jobs x --envs", args.jobs * args.envs, None)
    out = Path(args.out)
    if args.cell:
        return run_cell(out, args.cell, args.envs, args.device)
    disturb = describe(parse_disturb(args.disturb or "default"))
    settings = _settings(LearnSettings, tasks=_names(args.tasks, LEARN_TASKS),
                         policies=_names(args.policies, ("mlp", "act", "diffusion", "cnn")), demos=args.demos,
                         noise=args.noise, episodes=args.episodes, steps=args.steps, disturb=disturb)
    results = run_table(settings, out, jobs=args.jobs, envs=args.envs, device=args.device,
                        notify=(lambda line: None) if json else (lambda line: print(line, flush=True)))
    if not json:
        print((out / "table.md").read_text(), flush=True)
    return {"out": str(out), "results": results}


def _names(text: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    return default if text is None else tuple(name for name in text.split(",") if name)


def _settings(table: Callable[..., T], **options: Any) -> T:
    """A table's settings from the options; one not given (None) takes the table's own default."""
    return table(**{name: value for name, value in options.items() if value is not None})


def _chunking(json: bool, args: argparse.Namespace) -> dict:
    from pathlib import Path

    from protege.launch.cli import check_processes
    from protege.launch.errors import UserError
    from protege.launch.experiments.chunking_table import DEFAULT_POLICIES, DELAYS, TASKS, ChunkingSettings, run_table
    from protege.policies.trainer import resolve_device

    if args.out is None:
        raise UserError("bench chunking needs --out DIR (the table's directory)")
    resolve_device(args.device, 0)
    check_processes("--envs", args.envs, None)
    try:
        delays = DELAYS if args.delays is None else tuple(int(d) for d in args.delays.split(",") if d)
    except ValueError:
        raise UserError(f"--delays takes comma-separated whole numbers of ticks, got {args.delays!r}") from None
    settings = _settings(ChunkingSettings, tasks=_names(args.tasks, TASKS),
                         policies=_names(args.policies, DEFAULT_POLICIES), delays=delays, demos=args.demos,
                         noise=args.noise, episodes=args.episodes, steps=args.steps, seed=0)
    out = Path(args.out)
    results = run_table(settings, out, envs=args.envs, device=args.device,
                        notify=(lambda line: None) if json else (lambda line: print(line, flush=True)))
    if not json:
        print((out / "table.md").read_text() + f"plot: {out / 'chunking.png'}", flush=True)
    return {"out": str(out), "results": results}


def _vision(json: bool, args: argparse.Namespace) -> dict:
    from pathlib import Path

    from protege.launch.cli import check_processes
    from protege.launch.errors import UserError
    from protege.launch.experiments.vision_table import TASKS, VisionSettings, run_table
    from protege.policies.trainer import resolve_device

    if args.out is None:
        raise UserError("bench vision needs --out DIR (the table's directory)")
    resolve_device(args.device, 0)
    check_processes("--envs", args.envs, None)
    settings = _settings(VisionSettings, tasks=_names(args.tasks, TASKS), policies=_names(args.policies, ("cnn",)),
                         demos=args.demos, noise=args.noise, episodes=args.episodes, steps=args.steps,
                         looks=args.looks, disturb=args.disturb or "visual")
    out = Path(args.out)
    results = run_table(settings, out, envs=args.envs, device=args.device,
                        notify=(lambda line: None) if json else (lambda line: print(line, flush=True)))
    if not json:
        print((out / "table.md").read_text(), flush=True)
    return {"out": str(out), "results": results}
