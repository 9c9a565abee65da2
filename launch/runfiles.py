"""The files commands leave in a run directory, with their one writer and one reader each.

    config.json, tb/      a training run (protege train; written by protege.policies.checkpoint)
    evals.jsonl           evaluations (protege rollout), one JSON object per line: append_eval, read_evals
    dagger.json           a DAgger run (protege dagger): write_dagger, read_dagger; round_K/ are training runs
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protege.launch.errors import UserError

Series = tuple[list[int], list[float], list[float]]  # steps, values, wall times


@dataclass
class RunData:
    """What a run directory holds, read once."""

    path: Path
    config: dict[str, Any] | None = None
    scalars: dict[str, Series] = field(default_factory=dict)
    evals: list[dict[str, Any]] = field(default_factory=list)
    dagger: dict[str, Any] | None = None
    round_scalars: dict[int, dict[str, Series]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def append_eval(run_dir: Path, result: dict[str, Any]) -> None:
    """Append an evaluation (a rollout summary) to RUN/evals.jsonl, stamped with the time."""
    line = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **result}
    with open(run_dir / "evals.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")


def write_dagger(run_dir: Path, log: dict[str, Any]) -> None:
    """Replace RUN/dagger.json atomically (task, policy, expert, rounds and bc lists of points)."""
    path = run_dir / "dagger.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(log, indent=2) + "\n")
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


def read_evals(path: Path) -> list[dict[str, Any]]:
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
        if not (isinstance(record, dict) and isinstance(record.get("success_rate"), (int, float))):
            raise UserError(f"{path} line {number} is not an evaluation (a JSON object with success_rate): "
                            "fix or delete that line")
        evals.append(record)
    return evals


def read_run(path: str | os.PathLike[str]) -> RunData:
    """A training run (config.json) or a DAgger run (dagger.json); anything else is a UserError."""
    run = Path(path)
    if not run.is_dir():
        raise UserError(f"{run} is not a directory")
    has_config, has_dagger = (run / "config.json").is_file(), (run / "dagger.json").is_file()
    if not (has_config or has_dagger):
        raise UserError(f"{run} is not a protege run: no config.json (protege train) or dagger.json (protege dagger)")
    data = RunData(run)
    if has_config:
        data.config = _read_config(run / "config.json")
        data.scalars = read_scalars(run / "tb")
    if has_dagger:
        data.dagger = _read_dagger(run / "dagger.json")
        for index, entry in enumerate(data.dagger["rounds"]):
            number = entry["round"] if isinstance(entry.get("round"), int) else index
            data.round_scalars[number] = read_scalars(run / str(entry.get("run", f"round_{number}")) / "tb")
        last_dir = run / str(data.dagger["rounds"][-1].get("run", "")) if data.dagger["rounds"] else run
        if data.config is None and last_dir != run and (last_dir / "config.json").is_file():
            data.config = _read_config(last_dir / "config.json")
            data.evals = read_evals(last_dir / "evals.jsonl")
    data.evals = read_evals(run / "evals.jsonl") or data.evals
    return data


def _read_config(path: Path) -> dict[str, Any]:
    config = _read_json(path)
    if not isinstance(config, dict):
        raise UserError(f"{path} is not a run configuration (expected a JSON object)")
    return config


def _read_dagger(path: Path) -> dict[str, Any]:
    """dagger.json with its rounds checked: each a mapping with a numeric success_rate."""
    log = _read_json(path)
    if not isinstance(log, dict) or not isinstance(log.get("rounds"), list):
        raise UserError(f"{path} has no list of rounds")
    for key in ("rounds", "bc"):
        for i, entry in enumerate(log.get(key) or []):
            if not isinstance(entry, dict) or not isinstance(entry.get("success_rate"), (int, float)):
                raise UserError(f"{path}: {key}[{i}] lacks a numeric success_rate")
    return log
