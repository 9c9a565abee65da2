"""Check every invariant of a dataset and report what is wrong (errors) or merely odd (notes)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protege.datasets import schema
from protege.datasets.errors import DatasetError
from protege.datasets.layout import Layout, altered_problem, damage, inspect_layout, open_root
from protege.datasets.lock import lock_holder
from protege.datasets.stats import CACHE_ATTR, fingerprint
from protege.datasets.storage import normalize_path, object_names, partial_files, rows_per_object

_READ_BLOCK_BYTES = 32 * 1024 * 1024
_VALUE_CHECKED = ("timestamp", "intervention", "action")


@dataclass
class ValidationReport:
    path: str
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    episodes: int = 0
    frames: int = 0

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "valid": self.valid,
            "episodes": self.episodes,
            "frames": self.frames,
            "errors": self.errors,
            "notes": self.notes,
        }


def validate_dataset(path: str | os.PathLike[str], deep: bool = True) -> ValidationReport:
    """Structure, dtypes and lengths always; with ``deep`` also decode every chunk and check values."""
    path = normalize_path(path)
    report = ValidationReport(path)
    try:
        layout = inspect_layout(path, open_root(path))
    except DatasetError as exc:
        report.errors.append(str(exc))
        return report
    report.errors += layout.errors
    report.notes += layout.notes
    report.episodes, report.frames = layout.num_episodes, layout.num_frames
    if not layout.errors:
        try:
            _check_checksums_kept(layout, report)
            missing = _check_chunks(layout, report)
            if deep:
                _check_values(layout, report, missing)
        except DatasetError as exc:
            report.errors.append(str(exc))
        _check_stats_cache(layout, report)
    leftovers = partial_files(path)
    if leftovers:
        report.notes.append(
            f"{len(leftovers)} temp files left by a killed writer "
            "(`protege dataset repair` or the next writer removes them)"
        )
    holder = lock_holder(path)
    if holder:
        report.notes.append(f"a writer (pid {holder.get('pid')} on {holder.get('host')}) is appending right now")
    if layout.ends_read and not layout.num_episodes:
        report.notes.append("the dataset has no episodes")
    return report


def _check_chunks(layout: Layout, report: ValidationReport) -> set[str]:
    """Every stored chunk of what was committed with checksums must exist; return the nodes with one missing."""
    missing = layout.missing_chunks()
    report.errors += missing.values()
    return set(missing)


def _read_all(layout: Layout, key: str, report: ValidationReport, checked: bool) -> np.ndarray | None:
    """Decode every committed chunk of ``key``, whole episodes at a time, comparing each episode with its
    checksum when ``checked``; return the values of the keys whose values are checked."""
    array = layout.data[key]
    ends, starts = layout.episode_ends, np.concatenate([[0], layout.episode_ends[:-1]]).astype(np.int64)
    frame_bytes = max(1, int(np.prod(array.shape[1:])) * array.dtype.itemsize)
    block = max(1, _READ_BLOCK_BYTES // frame_bytes)
    keep = key in _VALUE_CHECKED
    parts, altered = [], []
    first = 0
    while first < layout.num_episodes:
        last = max(first, int(np.searchsorted(ends, starts[first] + block, side="right")) - 1)
        begin, stop = int(starts[first]), int(ends[last])
        try:
            values = array[begin:stop]
        except Exception as exc:  # a corrupt chunk surfaces as any codec or JSON error
            report.errors.append(f"data/{key} is unreadable near frame {begin} "
                                 f"({layout.episodes_of(begin, stop - 1)}): {damage(exc)}")
            return None
        if checked:
            altered += layout.altered(f"data/{key}", begin, values)
        if keep:
            parts.append(values)
        first = last + 1
    if altered:
        per = rows_per_object(array)
        lo, hi = int(starts[altered[0]]) // per, (int(ends[altered[-1]]) - 1) // per
        (first_name,), (last_name,) = object_names(array, lo), object_names(array, hi)
        chunks = first_name + (f" to {last_name.rsplit('/', 1)[1]}" if hi > lo else "")
        report.errors.append(f"{altered_problem(f'data/{key}', altered)} (altered data in {chunks})")
    return np.concatenate(parts) if keep and parts else None


def _check_values(layout: Layout, report: ValidationReport, missing: set[str]) -> None:
    starts = np.concatenate([[0], layout.episode_ends[:-1]]).astype(np.int64)
    for key in sorted(layout.data):
        # a node with a missing chunk reads fill values there: already named, not also called altered
        values = _read_all(layout, key, report, f"data/{key}" not in missing)
        if values is None or not len(values):
            continue
        if key == "timestamp":
            backwards = np.flatnonzero(np.diff(values) < 0) + 1
            backwards = np.setdiff1d(backwards, starts)
            if len(backwards):
                episode = int(np.searchsorted(layout.episode_ends, backwards[0], side="right"))
                report.errors.append(f"data/timestamp goes backwards in episode {episode}")
            if np.any(values[starts] < 0):
                report.errors.append("data/timestamp is negative at an episode start")
        elif key == "intervention" and np.any(values > 1):
            report.errors.append("data/intervention holds values other than 0 and 1")
        elif key == "action" and not np.all(np.isfinite(values)):
            report.errors.append("data/action holds NaN or infinite values")
    count = layout.num_episodes
    for name, array in sorted(layout.meta.items()):
        node = f"meta/{schema.META_PREFIX}{name}"
        try:
            values = np.asarray(array[:count])
        except Exception as exc:
            report.errors.append(f"{node} is unreadable: {damage(exc)}")
            continue
        altered = layout.altered(node, 0, values) if node not in missing else []
        if altered:
            report.errors.append(altered_problem(node, altered))
        if name == "source":
            unknown = sorted(set(values.tolist()) - set(schema.SOURCE_CODES.values()))
            if unknown:
                report.errors.append(f"meta/episode_source holds unknown codes {unknown}")


def _check_checksums_kept(layout: Layout, report: ValidationReport) -> None:
    columns = [sums for node, sums in layout.sums.items() if node.startswith("data/")]
    kept = np.any(np.stack(columns) != schema.NO_CHECKSUM, axis=0) if columns else np.zeros(layout.num_episodes, bool)
    without = int(np.count_nonzero(~kept))
    if without:
        report.notes.append(
            f"{without} of {layout.num_episodes} episodes carry no checksums (written before protege kept "
            "them): their values are only checked to decode, and a chunk missing there reads as zeros"
        )


def _check_stats_cache(layout: Layout, report: ValidationReport) -> None:
    entry = layout.attrs.get(CACHE_ATTR)
    if isinstance(entry, dict) and entry.get("fingerprint") != fingerprint(layout.episode_ends):
        report.notes.append("cached normalisation stats predate the last episodes (recomputed on next use)")
