"""`protege bench learn`: the learning table. Every task x policy, cloned from scripted demos and
evaluated on unseen seeds, clean and under the default disturbances; success with 95% intervals.

OUT/settings.json   what the table measures (a rerun must measure the same way; it resumes, and may add
                    tasks and policies)
OUT/demos/TASK.zarr     the demos of each task (TASK-cameras.zarr with the cameras, for the cnn)
OUT/runs/CELL/      each cell's training run        OUT/results/CELL.json   each cell's figures
OUT/logs/CELL.log   each cell's output              OUT/table.md, OUT/table.html   the table

Each cell runs in a process of its own (``--jobs`` at a time), trains, evaluates, and writes its
result file last: a stopped table resumes with the cells that have none.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from protege.launch.errors import UserError
from protege.launch.records import Record
from protege.launch.runfiles import write_json
from protege.launch.runs import EVAL_SEED

if TYPE_CHECKING:
    from protege.sim.disturbances import Disturbance
    from protege.sim.spec import EnvSpec

STATE_POLICIES = ("mlp", "act", "diffusion")
CAMERA_POLICY = "cnn"
CAMERA_TASKS = ("lift", "push")  # the cnn's rows: cameras cost ~10x the env steps
CAMERAS = ("front", "wrist")
STEPS = {"mlp": 20_000, "act": 20_000, "diffusion": 20_000, "cnn": 20_000}
# The table demos' expert noise (record's default, sim.experts.DEMO_NOISE, is 0.2): DART labels at 0.5 beat 0.2 on push
# (validation seeds, docs/experiments.md); the DAgger comparison's DART baseline uses 0.5 too.
TABLE_NOISE = 0.5
# The chunking table's: noise-free, so that a training chunk is the expert's own plan. With DART demos (noise 0.5)
# the actions after a chunk's first carry corrections for noise the policy cannot see and the arm never meets
# when the chunk runs: on push at 200 ms naive switching kept 5% against 59% on noise-free demos, and diffusion
# without a delay 61% against 74% (docs/experiments.md).
CHUNK_NOISE = 0.0
TableSettings = TypeVar("TableSettings", bound=Record)  # a table's settings: tasks, policies, what it measures
MEASUREMENT = ("demos", "noise", "episodes", "steps", "image_size", "disturb", "seed")  # what a table's cells share
BEFORE_NOISE = {"noise": 0.2}  # tables from before --noise collected their demos at 0.2


@dataclass(frozen=True)
class Cell:
    task: str
    policy: str

    @property
    def cameras(self) -> tuple[str, ...]:
        return CAMERAS if self.policy == CAMERA_POLICY else ()

    @property
    def name(self) -> str:
        return f"{self.task}-{self.policy}"

    @property
    def demos(self) -> str:
        return f"{self.task}-cameras" if self.cameras else self.task


@dataclass(frozen=True)
class LearnSettings(Record):
    """What the table measures; ``steps`` 0 takes each policy's :data:`STEPS`."""

    tasks: tuple[str, ...]
    policies: tuple[str, ...]
    demos: int = 100
    noise: float = TABLE_NOISE
    episodes: int = 100
    steps: int = 0
    image_size: int = 64
    disturb: str = "default"
    seed: int = 0

    def check(self) -> None:
        from protege.policies import POLICY_NAMES
        from protege.sim.tasks import TASKS

        if not self.tasks or not self.policies:
            raise UserError("--tasks and --policies must each name one at least")
        for task in self.tasks:
            if task not in TASKS:
                raise UserError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
        for policy in self.policies:
            if policy not in POLICY_NAMES:
                raise UserError(f"unknown policy {policy!r} (choose from {', '.join(POLICY_NAMES)})")
        check_counts(self.demos, self.noise, self.episodes, self.steps)
        if self.image_size < 1:
            raise UserError(f"--image-size must be at least 1, got {self.image_size}")
        if not self.cells:
            raise UserError("no cell to run: the cnn runs on lift and push only")
        self._check_disturb()

    def _check_disturb(self) -> None:
        """The disturbed evaluation's ``--disturb``, refused in one line if it cannot make sense on a task."""
        from protege.sim import EnvSpec, SimError
        from protege.sim.disturbances import check_disturbances, parse_disturbances

        try:
            disturb = parse_disturbances(self.disturb)
            for task in self.tasks:
                check_disturbances(disturb, EnvSpec.make(task, cameras=()))
        except SimError as exc:
            raise UserError(f"--disturb: {exc}") from None

    @property
    def cells(self) -> list[Cell]:
        return [Cell(task, policy) for task in self.tasks for policy in self.policies
                if policy in STATE_POLICIES or (policy == CAMERA_POLICY and task in CAMERA_TASKS)]

    def steps_for(self, policy: str) -> int:
        return self.steps or STEPS[policy]


def run_table(settings: LearnSettings, out: Path, jobs: int = 1, envs: int = 1, device: str = "auto",
              notify: Any = print) -> list[dict[str, Any]]:
    """Run (or resume) the cells of ``settings`` with ``jobs`` at a time, each evaluating on ``envs``
    processes and training on ``device``; write the table (every cell the table at ``out`` holds);
    return its results in table order."""
    settings.check()
    if jobs < 1 or envs < 1:
        raise UserError(f"--jobs and --envs must be at least 1, got {jobs} and {envs}")
    table = _claim(out, settings)
    _collect_demos(settings, out, os.cpu_count() or 1)
    pending = [cell for cell in settings.cells if not (out / "results" / f"{cell.name}.json").exists()]
    notify(f"learning table: {len(settings.cells) - len(pending)} of {len(settings.cells)} cells done, "
           f"running {len(pending)} with {jobs} at a time")
    running: list[tuple[Cell, subprocess.Popen, float]] = []
    failed: list[str] = []
    (out / "logs").mkdir(exist_ok=True)
    try:
        _run_cells(out, pending, running, failed, jobs, envs, device, notify)
    finally:  # Ctrl-C or SIGTERM: stop the cells under way (they rerun on resume) and keep the table so far
        for _, process, _ in running:
            process.terminate()
            process.wait()
        rewrite_table(out)
    if failed:
        raise UserError(f"{len(failed)} cell(s) failed ({', '.join(failed)}); rerun to resume them")
    return done_results(out, table)


def _run_cells(out: Path, pending: list[Cell], running: list[tuple[Cell, subprocess.Popen, float]],
               failed: list[str], jobs: int, envs: int, device: str, notify: Any) -> None:
    """Keep ``jobs`` cell processes running until every pending cell has ended."""
    while pending or running:
        while pending and len(running) < jobs:
            cell = pending.pop(0)
            command = [sys.executable, "-m", "protege.launch.cli", "bench", "learn", "--out", str(out),
                       "--cell", cell.name, "--envs", str(envs), "--device", device]
            with open(out / "logs" / f"{cell.name}.log", "w") as log:  # the process holds its own copy
                running.append((cell, subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), time.time()))
        time.sleep(0.5)
        for entry in list(running):
            cell, process, started = entry
            if process.poll() is None:
                continue
            running.remove(entry)
            if process.returncode == 0:
                result = read_result(out, cell)
                notify(f"{cell.name}: clean {percent(result['clean'])}, disturbed {percent(result['disturbed'])} "
                       f"({time.time() - started:.0f} s)")
            else:
                failed.append(cell.name)
                notify(f"{cell.name}: failed (exit {process.returncode}); see {out / 'logs' / (cell.name + '.log')}")


def run_cell(out: Path, name: str, envs: int, device: str) -> dict[str, Any]:
    """Train and evaluate one cell of the table at ``out`` (the ``--cell`` process)."""
    import torch

    from protege.launch.runs import open_run
    from protege.policies.checkpoint import read_meta
    from protege.policies.config import TrainConfig
    from protege.policies.trainer import train
    from protege.sim.disturbances import parse_disturbances

    settings = read_settings(out)
    cell = next((c for c in settings.cells if c.name == name), None)
    if cell is None:
        raise UserError(f"{out}: the table has no cell {name!r}")
    torch.set_num_threads(max(1, envs))
    run = out / "runs" / cell.name
    steps = settings.steps_for(cell.policy)
    started = time.perf_counter()
    config = TrainConfig(dataset=str(out / "demos" / f"{cell.demos}.zarr"), out=str(run), policy=cell.policy,
                         steps=steps, seed=settings.seed, device=device, progress=False)
    finished = (run / "config.json").exists() and read_meta(run).step == steps
    if not finished:
        if run.exists():  # a stopped cell trains again from the start
            import shutil

            shutil.rmtree(run)
        train(config)
    train_seconds = time.perf_counter() - started
    trained = open_run(run)
    result: dict[str, Any] = {"task": cell.task, "policy": cell.policy, "cameras": list(cell.cameras), "steps": steps,
                              "demos": settings.demos, "train_seconds": round(train_seconds, 1)}
    for key, disturb in (("clean", ()), ("disturbed", parse_disturbances(settings.disturb))):
        summary = trained.evaluate(settings.episodes, envs=envs, disturb=disturb, progress=False).summary
        result[key] = {"successes": summary.successes, "episodes": summary.episodes,
                       "success_rate": summary.success_rate, "ci95": list(summary.ci95), "disturb": summary.disturb,
                       "strikes": summary.strikes}
    write_json(out / "results" / f"{cell.name}.json", result)
    return result


def read_settings(out: Path) -> LearnSettings:
    return read_table_settings(out, LearnSettings, "learning table", BEFORE_NOISE)


def read_table_settings(out: Path, kind: type[TableSettings], what: str,
                        missing: dict[str, Any] | None = None) -> TableSettings:
    """The settings of the ``what`` at ``out`` (fields written by older versions filled from ``missing``); one
    line on a file that is not such a table's settings."""
    path = out / "settings.json"
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a {what}'s settings ({exc})") from None
    if isinstance(raw, dict):
        raw = {**(missing or {}), **raw}
    return kind.from_json(raw, str(path))


def read_result(out: Path, cell: Cell) -> dict[str, Any]:
    path = out / "results" / f"{cell.name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable result ({exc}); delete it to run the cell again") from None


def _claim(out: Path, settings: LearnSettings) -> LearnSettings:
    return claim_table(out, settings, MEASUREMENT, "learning table", missing=BEFORE_NOISE)


def claim_table(out: Path, settings: TableSettings, measurement: tuple[str, ...], what: str,
                grows: tuple[str, ...] = ("tasks", "policies"), missing: dict[str, Any] | None = None) -> TableSettings:
    """Start a table at ``out``, or join the one there (:func:`read_table_settings`) if it measures the same way
    (every field in ``measurement``): each field in ``grows`` (a tuple) gains ``settings``' new entries. The
    table's settings, written."""
    if (out / "settings.json").exists():
        held = read_table_settings(out, type(settings), what, missing)
        for name in measurement:
            if getattr(held, name) != getattr(settings, name):
                raise UserError(f"{out} holds a table with {name}={getattr(held, name)!r}, not "
                                f"{getattr(settings, name)!r}: use another --out, or the same settings to resume it")
        settings = dataclasses.replace(settings, **{
            name: tuple(dict.fromkeys(getattr(held, name) + getattr(settings, name))) for name in grows})
    elif out.exists() and any(out.iterdir()):
        raise UserError(f"{out} exists and is not a {what}: use another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "settings.json", settings.to_json())
    return settings


def check_counts(demos: int, noise: float, episodes: int, steps: int) -> None:
    """One line for a table's demos, their noise, its evaluation episodes or training steps out of range."""
    for name, value in (("demos", demos), ("episodes", episodes)):
        if value < 1:
            raise UserError(f"--{name} must be at least 1, got {value}")
    if not 0 <= noise < math.inf:
        raise UserError(f"--noise must be >= 0 and finite, got {noise}")
    if steps < 0:
        raise UserError(f"--steps must be >= 0 (0: each policy's default), got {steps}")


def check_names(table: str, tasks: tuple[str, ...], policies: tuple[str, ...], variants: Iterable[str]) -> None:
    """One line for a table (``bench TABLE``) given no task or policy, or one it does not know."""
    from protege.sim.tasks import TASKS

    unknown = [t for t in tasks if t not in TASKS] + [p for p in policies if p not in variants]
    if unknown or not tasks or not policies:
        raise UserError(f"bench {table}: unknown task or policy {unknown[0] if unknown else '(none given)'} "
                        f"(tasks: {', '.join(TASKS)}; policies: {', '.join(variants)})")


def _collect_demos(settings: LearnSettings, out: Path, workers: int) -> None:
    """Each task's demos (with cameras for the cnn's tasks), seeds 0.. : collected once, kept."""
    from protege.sim import EnvSpec
    from protege.sim.experts import check_expert

    specs = {demos: EnvSpec.make(demos.removesuffix("-cameras"), cameras=CAMERAS if demos.endswith("-cameras") else (),
                                 image_size=settings.image_size)
             for demos in dict.fromkeys(cell.demos for cell in settings.cells)}
    for spec in specs.values():  # an arm a task or its expert cannot use is refused before any episode
        check_expert(spec)
    for demos, spec in specs.items():
        collect_demos(out / "demos" / f"{demos}.zarr", spec, settings.demos, settings.noise, settings.seed, workers)


def collect_demos(path: Path, spec: EnvSpec, episodes: int, noise: float, seed: int, workers: int,
                  randomize: tuple[Disturbance, ...] = (), dart: bool = True) -> None:
    """A table's demos at ``path``: ``episodes`` scripted ones from seed ``seed`` on, the expert driven with
    ``noise`` and labelled noise-free (DART; with ``dart`` false, the executed actions), each episode's look
    drawn with ``randomize``, on ``workers`` processes; kept when they are there, and a stopped collection
    starts again."""
    import shutil

    from protege.datasets import Dataset, DatasetError
    from protege.teleop.runtime.collect import collect

    try:
        if Dataset(str(path)).num_episodes == episodes:
            return
    except DatasetError:
        pass
    shutil.rmtree(path, ignore_errors=True)
    collect(spec, str(path), episodes, noise=noise, workers=workers, seed=seed, progress=False, dart=dart,
            randomize=randomize)


def percent(figures: dict[str, Any]) -> str:
    """A success rate with its 95% interval: "93% (86-97)"."""
    low, high = figures["ci95"]
    return f"{100 * figures['success_rate']:.0f}% ({100 * low:.0f}-{100 * high:.0f})"


def table_rows(settings: LearnSettings, results: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """The table's header and rows: a row per task, a column per policy; each entry is the clean and
    the disturbed success with their 95% intervals; the best state policy of a row is marked ``*``."""
    by_cell = {(r["task"], r["policy"]): r for r in results}
    policies = [p for p in settings.policies if any(c.policy == p for c in settings.cells)]
    header = ["task", *(f"{p} (cameras)" if p == CAMERA_POLICY else p for p in policies)]
    rows = []
    for task in settings.tasks:
        state = [by_cell[(task, p)]["clean"]["success_rate"] for p in STATE_POLICIES if (task, p) in by_cell]
        best = max(state, default=None)
        row = [task]
        for policy in policies:
            result = by_cell.get((task, policy))
            if result is None:
                row.append("" if Cell(task, policy) not in settings.cells else "pending")
                continue
            mark = "*" if policy in STATE_POLICIES and result["clean"]["success_rate"] == best else ""
            row.append(f"{percent(result['clean'])}{mark} / {percent(result['disturbed'])}")
        rows.append(row)
    return header, rows


def is_table(path: Path) -> bool:
    """Whether ``path`` holds a learning table (its settings and results folder)."""
    return (path / "settings.json").is_file() and (path / "results").is_dir()


def rewrite_table(out: Path, html_path: Path | None = None) -> tuple[Path, Path]:
    """The table at ``out`` written again from the cells done so far (the HTML to ``html_path`` if given)."""
    settings = read_settings(out)
    return write_table(settings, done_results(out, settings), out, html_path)


def done_results(out: Path, settings: LearnSettings) -> list[dict[str, Any]]:
    """The results of the cells done so far, in table order."""
    return [read_result(out, c) for c in settings.cells if (out / "results" / f"{c.name}.json").exists()]


def write_table(settings: LearnSettings, results: list[dict[str, Any]], out: Path,
                html_path: Path | None = None) -> tuple[Path, Path]:
    """The table as OUT/table.html (or ``html_path``) and OUT/table.md; their paths."""
    header, rows = table_rows(settings, results)
    caption = (f"Success from {settings.demos} scripted demos (expert noise {settings.noise:g}, DART labels) over "
               f"{settings.episodes} unseen seeds (from {EVAL_SEED}), clean / under `--disturb {settings.disturb}`, "
               f"with 95% Wilson intervals; * the best state policy of the task. The cnn sees the front and wrist "
               f"cameras at {settings.image_size} px.")
    markdown = "\n".join([caption, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                          *("| " + " | ".join(row) + " |" for row in rows)]) + "\n"
    (out / "table.md").write_text(markdown)
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    page = (f"<!doctype html><meta charset='utf-8'><title>protege learning table</title>"
            "<style>body{font:14px sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>"
            f"<h1>Learning table</h1><p>{html.escape(caption)}</p><table><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in header) + f"</tr>{cells}</table>")
    html_path = html_path or out / "table.html"
    html_path.write_text(page)
    return html_path, out / "table.md"
