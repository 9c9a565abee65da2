"""`protege bench chunking`: what an inference delay costs each way of running chunks. For each task x
chunked policy (state inputs, trained on noise-free scripted demos), success on unseen seeds for every
strategy at every delay, and how much the action jumps where a new chunk takes over against within a chunk.

OUT/settings.json     what the table measures (a rerun that measures the same way resumes it, and may add
                      tasks, policies and delays)
OUT/demos/TASK.zarr   the demos            OUT/runs/TASK-POLICY/   each policy's training run
OUT/results/TASK-POLICY-STRATEGY-D.json   each cell's figures
OUT/table.md          the table            OUT/chunking.png        success against delay

act trains with ``rtc_train_max_delay`` (a random committed prefix), so that it can follow a guide;
diffusion follows one by inpainting, with its default config, and ``diffusion-prefix`` is diffusion trained
with committed prefixes too (training-time real-time chunking).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from protege.launch.errors import UserError
from protege.launch.experiments.learn_table import CHUNK_NOISE, check_counts, check_names, claim_table, collect_demos
from protege.launch.records import Record
from protege.launch.runfiles import write_json
from protege.launch.runs import EVAL_SEED

TASKS = ("push", "stack")
DELAYS = (0, 1, 2, 4, 6)
PREFIX = f"rtc_train_max_delay={max(DELAYS)}"  # able to continue a prefix as long as the largest delay measured
# The table's policies: name -> (policy, its --set overrides, training steps). act at its CPU settings, with
# the learning table's steps (about 25 minutes on one core).
VARIANTS: dict[str, tuple[str, list[str], int]] = {
    "act": ("act", ["dim_model=128", "n_heads=4", "dim_feedforward=512", "n_encoder_layers=2",
                    "n_vae_encoder_layers=2", PREFIX], 20_000),  # 3,000 steps did not learn push (1%)
    "diffusion": ("diffusion", [], 8_000),
    "diffusion-prefix": ("diffusion", [PREFIX], 8_000),
}
DEFAULT_POLICIES = ("act", "diffusion")


@dataclass(frozen=True)
class ChunkingSettings(Record):
    """What the table measures: ``policies`` are :data:`VARIANTS`; ``steps`` 0 takes each one's own."""

    tasks: tuple[str, ...] = TASKS
    policies: tuple[str, ...] = DEFAULT_POLICIES
    delays: tuple[int, ...] = DELAYS
    demos: int = 100
    noise: float = CHUNK_NOISE
    episodes: int = 100
    steps: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "delays", tuple(sorted(set(self.delays))))  # the table's columns, in order

    def check(self) -> None:
        from protege.policies.chunking import max_delay

        check_names("chunking", self.tasks, self.policies, VARIANTS)
        if not self.delays or min(self.delays) < 0 or max(self.delays) > max_delay(16, 8):
            raise UserError(f"--delays must be ticks from 0 to {max_delay(16, 8)}, got {list(self.delays)}")
        check_counts(self.demos, self.noise, self.episodes, self.steps)

    def steps_for(self, variant: str) -> int:
        return self.steps or VARIANTS[variant][2]


@dataclass(frozen=True)
class Cell:
    task: str
    policy: str
    strategy: str
    delay: int

    @property
    def name(self) -> str:
        return f"{self.task}-{self.policy}-{self.strategy}-{self.delay}"


def run_table(settings: ChunkingSettings, out: Path, envs: int = 1, device: str = "auto",
              notify: Any = print) -> list[dict[str, Any]]:
    """Run (or resume) every cell of ``settings``: demos, training, then each strategy at each delay on
    ``envs`` processes; write the table and the plot; return the results in table order."""
    from protege.policies.chunking import STRATEGIES

    settings.check()
    settings = _claim(out, settings)
    results = []
    for task in settings.tasks:
        demos = _demos(settings, out, task, envs)
        for policy in settings.policies:
            run_dir = _train(settings, out, task, policy, demos, device, notify)
            for strategy in STRATEGIES:
                for delay in settings.delays:
                    results.append(_cell(settings, out, Cell(task, policy, strategy, delay), run_dir, envs, notify))
    (out / "table.md").write_text(format_table(results, settings))
    plot(results, settings, out / "chunking.png")
    return results


MEASUREMENT = ("demos", "noise", "episodes", "steps", "seed")  # what a table's cells share


def _claim(out: Path, settings: ChunkingSettings) -> ChunkingSettings:
    """The table at ``out``, joined if it measures the same way: its tasks, policies and delays grow by
    ``settings``'."""
    return claim_table(out, settings, MEASUREMENT, "chunking table", ("tasks", "policies", "delays"))


def _demos(settings: ChunkingSettings, out: Path, task: str, workers: int) -> Path:
    """The task's demos as the learning table collects them."""
    from protege.sim import EnvSpec

    path = out / "demos" / f"{task}.zarr"
    collect_demos(path, EnvSpec.make(task, cameras=()), settings.demos, settings.noise, settings.seed, workers)
    return path


def _train(settings: ChunkingSettings, out: Path, task: str, variant: str, demos: Path, device: str,
           notify: Any) -> Path:
    import shutil

    from protege.policies.base import POLICIES
    from protege.policies.checkpoint import read_meta
    from protege.policies.config import TrainConfig, apply_overrides
    from protege.policies.trainer import train

    policy, overrides, _ = VARIANTS[variant]
    run = out / "runs" / f"{task}-{variant}"
    steps = settings.steps_for(variant)
    if (run / "config.json").exists() and read_meta(run).step == steps:
        return run
    shutil.rmtree(run, ignore_errors=True)  # a stopped training starts again
    config = TrainConfig(dataset=str(demos), out=str(run), policy=policy, steps=steps, seed=settings.seed,
                         device=device, progress=False)
    policy_config = POLICIES[policy].config_class()
    apply_overrides([config, policy_config], overrides)
    started = time.perf_counter()
    train(config, policy_config)
    notify(f"{task}-{variant}: trained {steps} steps in {(time.perf_counter() - started) / 60:.1f} min")
    return run


def _cell(settings: ChunkingSettings, out: Path, cell: Cell, run_dir: Path, envs: int,
          notify: Any) -> dict[str, Any]:
    from protege.launch.runs import open_run
    from protege.teleop.runtime.rollout import RolloutSpec, run_rollouts

    path = out / "results" / f"{cell.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    run = open_run(run_dir, chunking=cell.strategy, delay=cell.delay)
    spec = RolloutSpec(run.env, run.make_policy, record=True)
    rollouts = run_rollouts(spec, settings.episodes, seed=EVAL_SEED, envs=envs, progress=False)
    summary = rollouts.summary
    switch, within = action_changes(rollouts.episodes)
    result = {**dataclasses.asdict(cell), "successes": summary.successes, "episodes": summary.episodes,
              "success_rate": summary.success_rate, "ci95": list(summary.ci95), "mean_length": summary.mean_length,
              "switch_change": switch, "within_change": within}
    write_json(path, result)
    notify(f"{cell.name}: {summary.successes}/{summary.episodes}, action change at a switch {switch:.4f} "
           f"against {within:.4f} within a chunk")
    return result


def action_changes(outcomes: list[Any]) -> tuple[float, float]:
    """Mean size of the arm's action change (every entry but the gripper's) from one tick to the next, at the
    ticks a new chunk took over and at every other tick, over the episodes' recorded actions."""
    switch, within = [], []
    for outcome in outcomes:
        actions = np.asarray(outcome.episode.data["action"])[:, :-1]
        change = np.linalg.norm(np.diff(actions, axis=0), axis=1)  # change[t - 1]: from tick t - 1 to t
        starts = np.zeros(len(actions), dtype=bool)
        starts[[t for t in outcome.chunk_starts if 0 < t < len(actions)]] = True
        switch.extend(change[starts[1:]])
        within.extend(change[~starts[1:]])
    return (round(float(np.mean(switch)), 5) if switch else 0.0, round(float(np.mean(within)), 5) if within else 0.0)


def format_table(results: list[dict[str, Any]], settings: ChunkingSettings) -> str:
    """Success (%) per strategy and delay for each task and policy, and the action change at a switch over the
    change within a chunk (at each delay, the ratio)."""
    header = "| task | policy | strategy | " + " | ".join(f"D={d}" for d in settings.delays) + " | switch / within |"
    lines = [f"Success on {settings.episodes} unseen seeds (%) at each inference delay D (ticks of 50 ms); last "
             "column: mean action change where a new chunk takes over over the mean within a chunk, at each D.",
             "", header, "|" + "---|" * (len(settings.delays) + 4)]
    rows: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = {}
    for r in results:
        rows.setdefault((r["task"], r["policy"], r["strategy"]), {})[r["delay"]] = r
    for (task, policy, strategy), cells in rows.items():
        success = " | ".join(f"{100 * cells[d]['success_rate']:.0f}" if d in cells else "" for d in settings.delays)
        ratios = " / ".join(f"{c['switch_change'] / c['within_change']:.2f}" if c["within_change"] else "-"
                            for c in (cells[d] for d in settings.delays if d in cells))
        lines.append(f"| {task} | {policy} | {strategy} | {success} | {ratios} |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict[str, Any]], settings: ChunkingSettings, path: Path) -> None:
    """Success against delay, one panel per task and policy, a line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, p) for t in settings.tasks for p in settings.policies]
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False, sharey=True)
    for ax, (task, policy) in zip(axes[0], panels):
        for strategy in dict.fromkeys(r["strategy"] for r in results):
            cells = sorted((r["delay"], r["success_rate"]) for r in results
                           if (r["task"], r["policy"], r["strategy"]) == (task, policy, strategy))
            ax.plot([50 * d for d, _ in cells], [100 * s for _, s in cells], marker="o", label=strategy)
        ax.set_title(f"{task}, {policy}")
        ax.set_ylim(-3, 103)
        ax.set_xlabel("inference delay (ms)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"success (%), {settings.episodes} seeds")
    axes[0][-1].legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
