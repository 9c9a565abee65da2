"""The files commands leave in a run directory, each a typed record with its one writer and one reader.

    config.json, tb/      a training run (protege train; written and read by protege.policies.checkpoint)
    evals.jsonl           evaluations (protege rollout), one :class:`EvalRecord` per line: append_eval, read_evals
    dagger.json           a DAgger run (protege dagger), a :class:`DaggerLog`: write_dagger, read_run;
                          round_K/ and bc_K/ are training runs
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protege.launch.errors import UserError
from protege.launch.records import Record

if TYPE_CHECKING:
    from protege.policies.checkpoint import RunMeta
    from protege.teleop.runtime.rollout import RolloutSummary

Series = tuple[list[int], list[float], list[float]]  # steps, values, wall times


@dataclass(frozen=True)
class EvalRecord(Record):
    """One evaluation of a checkpoint (protege rollout): the rollout summary, per episode and overall."""

    success_rate: float
    episodes: int = 0
    successes: int = 0
    ci95: tuple[float, float] | None = None  # Wilson 95% interval of the success rate
    mean_length: float = 0.0
    mean_return: float = 0.0
    disturb: str = ""  # the --disturb specification the episodes ran under, "" for none
    strikes: int = 0  # disturbances that moved the object or the arm, over all episodes
    seed: int | None = None  # the first episode's; episode k ran with seed + k
    envs: int = 1
    seconds: float = 0.0
    episodes_per_min: float = 0.0
    lengths: tuple[int, ...] = ()
    success: tuple[bool, ...] = ()
    returns: tuple[float, ...] = ()
    videos: tuple[str, ...] = ()
    checkpoint: str = ""
    step: int | None = None  # the checkpoint's training step
    time: str = ""  # when it was logged, ISO 8601 in UTC

    @classmethod
    def from_summary(cls, summary: RolloutSummary, checkpoint: str, step: int) -> EvalRecord:
        """The record of a rollout's ``summary``, stamped with the time."""
        time = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        return cls(**dataclasses.asdict(summary), checkpoint=checkpoint, step=step, time=time)

    @property
    def condition(self) -> str:
        """What the episodes ran under, to tell evaluations of one checkpoint apart: clean, or the --disturb spec."""
        return self.disturb or "clean"


@dataclass(frozen=True)
class DaggerPoint(Record):
    """A policy trained in a DAgger run, with its evaluation: after a round, or the BC baseline at its budget."""

    round: int
    labelled_frames: int  # expert-labelled frames it was trained on
    episodes: int  # episodes in its training set
    run: str  # its training run, relative to the DAgger run
    success_rate: float
    ci95: tuple[float, float] | None = None
    mean_length: float = 0.0
    strikes: int = 0  # disturbances that moved the object or the arm in its evaluation
    train_loss: float | None = None


@dataclass(frozen=True)
class DaggerRound(DaggerPoint):
    """A DAgger round's policy, with how its labels were gathered."""

    added_frames: int = 0  # frames this round labelled
    beta: float | None = 1.0  # the expert's per-tick share of control; None: it took over at a random tick
    takeovers: float | None = None  # the gated operator's take-overs per labelled episode (expert gated)


@dataclass(frozen=True)
class DaggerLog(Record):
    """RUN/dagger.json: the run's settings and a point per round (and per point of each baseline)."""

    task: str
    policy: str
    expert: str
    rounds: tuple[DaggerRound, ...]
    bc: tuple[DaggerPoint, ...] = ()  # the BC baseline (--compare-bc)
    dart: tuple[DaggerPoint, ...] = ()  # the DART-style BC baseline (--compare-dart)
    full: tuple[DaggerPoint, ...] = ()  # full-labelling DAgger beside the gated operator (--compare-dagger)
    disturb: str = ""  # the disturbances of the labelled rollouts and every evaluation, "" for none
    robot: str | None = None  # None in older runs that kept the default arm
    config: dict[str, Any] = field(default_factory=dict)  # the DaggerConfig, as given


@dataclass
class RunData:
    """What a run directory holds, read once."""

    path: Path
    meta: RunMeta | None = None  # config.json of a training run (or of a DAgger run's last round)
    scalars: dict[str, Series] = field(default_factory=dict)
    evals: list[EvalRecord] = field(default_factory=list)
    dagger: DaggerLog | None = None
    round_scalars: dict[int, dict[str, Series]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def append_eval(run_dir: Path, record: EvalRecord) -> None:
    """Append an evaluation to RUN/evals.jsonl."""
    with open(run_dir / "evals.jsonl", "a") as f:
        f.write(json.dumps(record.to_json()) + "\n")


def write_dagger(run_dir: Path, log: DaggerLog) -> None:
    """Replace RUN/dagger.json atomically."""
    write_json(run_dir / "dagger.json", log.to_json())


def write_json(path: Path, value: Any) -> None:
    """Replace ``path`` with ``value`` as indented JSON, atomically (its folder made if missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None


def read_scalars(tb_dir: Path) -> dict[str, Series]:
    """Every scalar series in a TensorBoard log directory (all points, none sampled away)."""
    if not tb_dir.is_dir():
        return {}
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    accumulator = EventAccumulator(str(tb_dir), size_guidance={SCALARS: 0})
    accumulator.Reload()
    series: dict[str, Series] = {}
    for tag in accumulator.Tags().get("scalars", []):
        events = accumulator.Scalars(tag)
        series[tag] = ([e.step for e in events], [e.value for e in events], [e.wall_time for e in events])
    return series


def read_evals(path: Path) -> list[EvalRecord]:
    """Evaluations logged one JSON object per line; a line that is not one is refused, naming it."""
    if not path.is_file():
        return []
    evals = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            raise UserError(f"{path} line {number} is not an evaluation (a JSON object): fix or delete that line")
        evals.append(EvalRecord.from_json(record, f"{path} line {number}"))
    return evals


def read_run(path: str | os.PathLike[str]) -> RunData:
    """A training run (config.json) or a DAgger run (dagger.json); anything else is a UserError."""
    from protege.policies.checkpoint import read_meta

    run = Path(path)
    if not run.is_dir():
        raise UserError(f"{run} is not a directory")
    has_config, has_dagger = (run / "config.json").is_file(), (run / "dagger.json").is_file()
    if not (has_config or has_dagger):
        raise UserError(f"{run} is not a protege run: no config.json (protege train) or dagger.json (protege dagger)")
    data = RunData(run)
    if has_config:
        data.meta = read_meta(run)
        data.scalars = read_scalars(run / "tb")
    if has_dagger:
        data.dagger = DaggerLog.from_json(_read_json(run / "dagger.json"), str(run / "dagger.json"))
        for point in data.dagger.rounds:
            data.round_scalars[point.round] = read_scalars(run / point.run / "tb")
        last_dir = run / data.dagger.rounds[-1].run if data.dagger.rounds else run
        if data.meta is None and last_dir != run and (last_dir / "config.json").is_file():
            data.meta = read_meta(last_dir)
            data.evals = read_evals(last_dir / "evals.jsonl")
    data.evals = read_evals(run / "evals.jsonl") or data.evals
    return data
