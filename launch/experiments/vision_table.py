"""`protege bench vision`: policies that see. For each task x image policy on the vision input set (the front
and wrist cameras and the arm's own sensing, never the simulator's object state), trained on plain demos
and on demos with a randomised look (``record --randomize``), success on unseen seeds clean and under
``--disturb visual``, with the training minutes and the milliseconds per action.

OUT/settings.json       what the table measures (a rerun that measures the same way resumes it, and may add
                        tasks and policies)
OUT/demos/TASK-KIND.zarr     the demos, KIND plain or randomized   OUT/demos/TASK-randomized-xK.zarr   under K looks
OUT/runs/TASK-POLICY-KIND/   each cell's training run     OUT/results/TASK-POLICY-KIND.json   its figures
OUT/table.md            the table

The cameras are 64 px: a quarter of the pixels 128 px has to go through the image trunk, with every
task's objects and goal still in view of a default camera (tests/sim/test_cameras_see_the_task.py finds
them at 128 px with 51 pixels or more, so about 13 at 64; at 84 px push was no better). The settings are
sized for one CPU core (:data:`VARIANTS`); with another cell beside it on 2 cores a cnn trains on 100 plain demos
in about 7 minutes (push, on 200, 14) and on 300 randomised ones (under any number of looks) in 17-20; act and
diffusion train about 30 minutes in every cell.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from protege.launch.errors import UserError
from protege.launch.experiments.learn_table import (
    TABLE_NOISE,
    check_counts,
    check_names,
    claim_table,
    collect_demos,
    percent,
)
from protege.launch.records import Record
from protege.launch.runfiles import write_json
from protege.launch.runs import EVAL_SEED
from protege.policies.act.config import ACT_CPU_SETTINGS
from protege.policies.cnn.config import CNN_CPU_SETTINGS
from protege.sim.experts import DEMO_NOISE

TASKS = ("reach", "lift", "push", "slot_push", "stack")
KINDS = ("plain", "randomized")
CAMERAS = ("front", "wrist")


class Variant(NamedTuple):
    """A policy's cell: its config fields on the vision input set, and its training steps, for every 100 demos
    (``scaled``) or for the whole cell."""

    fields: dict[str, Any]
    steps: int
    scaled: bool = True


# The cnn at its CPU settings, reactive (its defaults); 3,000 steps for 100 demos: slot_push 95%, push 81% (200 demos:
# 78% at 3,000 steps, 100% at 6,000), and on stack the chunked cnn's validation loss was lowest at 3,000 of 10,000
# steps (docs/experiments.md). act at its CPU settings and diffusion, each with the cnn's small image trunk, take
# the steps of about 30 minutes of one core in every cell (on 100 stack demos both reached 0-1% after 10-11
# minutes): act with each camera's feature map pooled to 2 x 2 tokens (0.24-0.31 s a step; the whole 8 x 8 map:
# 0.83 s), diffusion at 0.23-0.25 s a step.
VARIANTS: dict[str, Variant] = {
    "cnn": Variant(CNN_CPU_SETTINGS, 3_000),
    "act": Variant({**ACT_CPU_SETTINGS, "inputs": "vision", "widths": CNN_CPU_SETTINGS["widths"], "image_grid": 2},
                   6_000, scaled=False),
    "diffusion": Variant({"inputs": "vision", "widths": CNN_CPU_SETTINGS["widths"], "n_obs_steps": 1}, 7_000,
                         scaled=False),
}


class TaskDemos(NamedTuple):
    """A task's demos: how many, the expert's action noise, and whether they are labelled noise-free (DART)."""

    episodes: int
    noise: float
    dart: bool


# Each task's demos, measured with the reactive cnn at 3,000 steps (docs/experiments.md): push and slot_push learn
# from noise 0.5 labelled noise-free (100 demos: 81% and 95%; record's executed actions at 0.2: 56% and 50%), push
# from 200 of them (100% at 6,000 steps); stack from record's demos (85%; DART at 0.5: 24%), reach and lift likewise.
TASK_DEMOS: dict[str, TaskDemos] = {
    "reach": TaskDemos(100, DEMO_NOISE, False),
    "lift": TaskDemos(100, DEMO_NOISE, False),
    "push": TaskDemos(200, TABLE_NOISE, True),
    "slot_push": TaskDemos(100, TABLE_NOISE, True),
    "stack": TaskDemos(100, DEMO_NOISE, False),
}
# Randomised demos per task: a policy memorises the looks it was shown (a lift cnn from 100 randomised demos keeps
# 98% under --disturb visual on their own seeds, 72% on unseen ones), so more of them (300: 88%, with colour jitter),
# and each rendered again under more looks (`dataset relook`; 300 demos under 3 looks: 94%, the same steps).
RANDOMIZED_EPISODES = 300
RANDOMIZED_LOOKS = 3
MEASUREMENT = ("demos", "noise", "episodes", "steps", "image_size", "randomize", "looks", "disturb", "seed")
BEFORE_LOOKS = {"looks": 1}  # what a table written before `looks` measured


@dataclass(frozen=True)
class VisionSettings(Record):
    """What the table measures: ``policies`` are :data:`VARIANTS`; ``steps`` 0 takes each one's own; each task's
    demos are its :data:`TASK_DEMOS` (:data:`RANDOMIZED_EPISODES` of them randomised, each rendered under ``looks``
    looks) but for ``demos`` (their number, either kind) and ``noise`` (DART labels at that noise)."""

    tasks: tuple[str, ...] = TASKS
    policies: tuple[str, ...] = ("cnn",)
    demos: int | None = None
    noise: float | None = None
    episodes: int = 100
    steps: int = 0
    image_size: int = 64
    randomize: str = "visual"
    looks: int = RANDOMIZED_LOOKS
    disturb: str = "visual"
    seed: int = 0

    def check(self) -> None:
        from protege.sim import SimError
        from protege.sim.disturbances import parse_disturbances
        from protege.sim.visual import VISUAL_FAMILIES

        check_names("vision", self.tasks, self.policies, VARIANTS)
        check_counts(1 if self.demos is None else self.demos, 0.0 if self.noise is None else self.noise,
                     self.episodes, self.steps)
        if self.looks < 1:
            raise UserError(f"--looks must be at least 1, got {self.looks}")
        try:
            randomize, _ = parse_disturbances(self.randomize), parse_disturbances(self.disturb)
        except SimError as exc:
            raise UserError(f"bench vision: {exc}") from None
        if any(f.name not in VISUAL_FAMILIES for f in randomize):
            raise UserError(f"bench vision: the demos are randomised in {', '.join(VISUAL_FAMILIES)} only")

    def steps_for(self, variant: str, task: str, kind: str) -> int:
        """``steps``, else the variant's own: for a scaled one, its steps for 100 demos times the cell's hundreds
        (the same passes over their frames, whatever the looks)."""
        own = VARIANTS[variant]
        if self.steps:
            return self.steps
        if not own.scaled:
            return own.steps
        return max(1, own.steps * self.demos_for(task, kind).episodes // 100)

    def demos_for(self, task: str, kind: str) -> TaskDemos:
        own = TASK_DEMOS[task]
        episodes = RANDOMIZED_EPISODES if kind == "randomized" else own.episodes
        return TaskDemos(episodes if self.demos is None else self.demos,
                         *((own.noise, own.dart) if self.noise is None else (self.noise, True)))


@dataclass(frozen=True)
class Cell:
    task: str
    policy: str
    kind: str

    @property
    def name(self) -> str:
        return f"{self.task}-{self.policy}-{self.kind}"


def run_table(settings: VisionSettings, out: Path, envs: int = 1, device: str = "auto",
              notify: Any = print) -> list[dict[str, Any]]:
    """Run (or resume) every cell of ``settings``: demos, training, then the clean and the disturbed
    evaluation on ``envs`` processes; write the table; return the results in table order."""
    settings.check()
    table = _claim(out, settings)
    results = []
    for task in settings.tasks:
        for kind in KINDS:
            demos = _demos(settings, out, task, kind, envs)
            for policy in settings.policies:
                results.append(_cell(settings, out, Cell(task, policy, kind), demos, envs, device, notify))
                (out / "table.md").write_text(format_table(_done(out, table), table))
    return results


def _claim(out: Path, settings: VisionSettings) -> VisionSettings:
    return claim_table(out, settings, MEASUREMENT, "vision table", missing=BEFORE_LOOKS)


def _done(out: Path, table: VisionSettings) -> list[dict[str, Any]]:
    """The results of the table's cells done so far."""
    paths = [out / "results" / f"{Cell(t, p, k).name}.json" for t in table.tasks for p in table.policies for k in KINDS]
    return [json.loads(path.read_text()) for path in paths if path.exists()]


def _demos(settings: VisionSettings, out: Path, task: str, kind: str, workers: int) -> Path:
    """The task's demos with both cameras; for ``randomized`` their look randomised, and each then rendered under
    ``looks`` looks (kept when they are there; a stopped relook leaves nothing)."""
    from protege.datasets import Dataset
    from protege.sim import EnvSpec
    from protege.sim.disturbances import parse_disturbances
    from protege.teleop.relook import relook

    path = out / "demos" / f"{task}-{kind}.zarr"
    randomize = parse_disturbances(settings.randomize) if kind == "randomized" else ()
    demos = settings.demos_for(task, kind)
    collect_demos(path, EnvSpec.make(task, cameras=CAMERAS, image_size=settings.image_size), demos.episodes,
                  demos.noise, settings.seed, workers, randomize, demos.dart)
    if kind == "plain" or settings.looks == 1:
        return path
    looked = out / "demos" / f"{task}-{kind}-x{settings.looks}.zarr"
    if not looked.exists() or Dataset(str(looked)).num_episodes != demos.episodes * settings.looks:
        shutil.rmtree(looked, ignore_errors=True)
        relook(str(path), str(looked), settings.looks, workers=workers, progress=False)
    return looked


def _cell(settings: VisionSettings, out: Path, cell: Cell, demos: Path, envs: int, device: str,
          notify: Any) -> dict[str, Any]:
    """Train the cell's policy (a stopped training starts again) and evaluate it clean and disturbed."""
    from protege.launch.runs import open_run
    from protege.policies.base import POLICIES
    from protege.policies.bench import latency
    from protege.policies.checkpoint import read_meta
    from protege.policies.config import TrainConfig
    from protege.policies.trainer import train
    from protege.sim.disturbances import parse_disturbances

    path = out / "results" / f"{cell.name}.json"
    if path.exists():
        return json.loads(path.read_text())
    fields = VARIANTS[cell.policy].fields
    run_dir, steps = out / "runs" / cell.name, settings.steps_for(cell.policy, cell.task, cell.kind)
    shutil.rmtree(run_dir, ignore_errors=True)
    config = TrainConfig(dataset=str(demos), out=str(run_dir), policy=cell.policy, steps=steps, seed=settings.seed,
                         device=device, progress=False)
    started = time.perf_counter()
    train(config, dataclasses.replace(POLICIES[cell.policy].config_class(), **fields))
    minutes = (time.perf_counter() - started) / 60
    meta = read_meta(run_dir)
    if any(f.kind == "privileged" for f in meta.inputs):  # the table's promise, checked on the checkpoint
        raise UserError(f"{run_dir} reads the simulator's state ({', '.join(f.key for f in meta.inputs)})")
    run = open_run(run_dir)
    result: dict[str, Any] = {"task": cell.task, "policy": cell.policy, "kind": cell.kind, "steps": steps,
                              "inputs": [f.key for f in meta.inputs], "train_minutes": round(minutes, 1)}
    for key, disturb in (("clean", ()), ("disturbed", parse_disturbances(settings.disturb))):
        summary = run.evaluate(settings.episodes, envs=envs, disturb=disturb, progress=False).summary
        result[key] = {"successes": summary.successes, "episodes": summary.episodes,
                       "success_rate": summary.success_rate, "ci95": list(summary.ci95)}
    frame = {k: v[0] for k, v in _first_frame(demos, result["inputs"]).items()}
    result["ms_per_action"] = round(latency(run.make_policy(), frame, n=50)[0], 2)
    write_json(path, result)
    notify(f"{cell.name}: clean {percent(result['clean'])}, disturbed {percent(result['disturbed'])}, "
           f"{minutes:.1f} min training, {result['ms_per_action']} ms per action")
    return result


def _first_frame(demos: Path, keys: list[str]) -> dict[str, Any]:
    from protege.datasets import Dataset

    return Dataset(str(demos)).episode(0, keys).data


def _relooked(settings: VisionSettings) -> str:
    return f", each rendered under {settings.looks} looks (`dataset relook`)" if settings.looks > 1 else ""


def format_table(results: list[dict[str, Any]], settings: VisionSettings) -> str:
    """A row per task and policy: its demos, and per kind of demos, clean / disturbed success with 95%
    intervals, and the training minutes and milliseconds per action."""
    by_cell = {(r["task"], r["policy"], r["kind"]): r for r in results}
    lines = [f"Success from each task's scripted demos (their number, plain / randomized where they differ, and the "
             f"expert's action noise; DART: labelled noise-free, else the executed actions), front and wrist cameras "
             f"at {settings.image_size} px and the arm's own sensing, over {settings.episodes} unseen seeds (from "
             f"{EVAL_SEED}): clean / under `--disturb {settings.disturb}`; randomized demos drawn with "
             f"`--randomize {settings.randomize}`{_relooked(settings)}.", "",
             "| task | demos | policy | plain demos | randomized demos | training min (plain / randomized) | "
             "ms per action |", "|---|---|---|---|---|---|---|"]
    for task in settings.tasks:
        plain, randomized = (settings.demos_for(task, kind) for kind in KINDS)
        for policy in settings.policies:
            cells = [by_cell.get((task, policy, kind)) for kind in KINDS]
            if not any(cells):
                continue
            shown = [f"{percent(c['clean'])} / {percent(c['disturbed'])}" if c else "pending" for c in cells]
            minutes = " / ".join(f"{c['train_minutes']:.1f}" if c else "-" for c in cells)
            ms = next((c["ms_per_action"] for c in cells if c), "")
            looks = f" x{settings.looks} looks" if settings.looks > 1 else ""
            count = f"{plain.episodes}" if plain == randomized and not looks else \
                f"{plain.episodes} / {randomized.episodes}{looks}"
            shown_demos = f"{count}, noise {plain.noise:g}{', DART' if plain.dart else ''}"
            lines.append(f"| {task} | {shown_demos} | {policy} | {shown[0]} | {shown[1]} | {minutes} | {ms} |")
    return "\n".join(lines) + "\n"
