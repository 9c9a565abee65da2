"""Check every invariant of a dataset and report what is wrong (errors) or merely odd (notes)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import sync

from protege.datasets import schema
from protege.datasets.errors import DatasetError
from protege.datasets.layout import Layout, damage, inspect_layout, open_root
from protege.datasets.lock import lock_holder
from protege.datasets.stats import CACHE_ATTR, fingerprint
from protege.datasets.storage import normalize_path, partial_files

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


def _chunk_name(array: zarr.Array, index: int) -> str:
    """The stored object holding chunk (format 3: shard) ``index`` along time, e.g. ``data/action/0.0``."""
    return f"{array.path}/{array.metadata.encode_chunk_key((index,) + (0,) * (array.ndim - 1))}"


def _stored_frames(array: zarr.Array) -> int:
    return int(array.shards[0] if array.shards else array.chunks[0])


def _check_chunks(layout: Layout, report: ValidationReport) -> set[str]:
    """Every stored chunk from ``complete_from`` on must exist; return the keys with a missing one."""
    store, frames, broken = layout.root.store, layout.num_frames, set()
    for key, array in sorted(layout.data.items()):
        per = _stored_frames(array)
        missing = [i for i in range(layout.complete_from() // per, -(-frames // per))
                   if not sync(store.exists(_chunk_name(array, i)))]
        if missing:
            first = missing[0] * per
            more = f" (and {len(missing) - 1} more chunks of data/{key})" if len(missing) > 1 else ""
            report.errors.append(f"chunk {_chunk_name(array, missing[0])} is missing "
                                 f"({layout.episodes_of(first, min(first + per, frames) - 1)}){more}")
            broken.add(key)
    return broken


def _read_all(layout: Layout, key: str, report: ValidationReport, expected: np.ndarray | None) -> np.ndarray | None:
    """Decode every committed chunk of ``key``, whole episodes at a time, comparing each episode with its
    checksum in ``expected`` (-1: none); return the values of the keys whose values are checked."""
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
        if expected is not None:
            altered += [e for e in range(first, last + 1) if expected[e] != schema.NO_CHECKSUM
                        and schema.checksum(values[starts[e] - begin : ends[e] - begin]) != expected[e]]
        if keep:
            parts.append(values)
        first = last + 1
    if altered:
        per = _stored_frames(array)
        lo, hi = int(starts[altered[0]]) // per, (int(ends[altered[-1]]) - 1) // per
        chunks = _chunk_name(array, lo) + (f" to {_chunk_name(array, hi).rsplit('/', 1)[1]}" if hi > lo else "")
        episodes = ", ".join(map(str, altered[:10])) + (" ..." if len(altered) > 10 else "")
        report.errors.append(f"data/{key} does not match its checksum in episode(s) {episodes} "
                             f"(altered data in {chunks})")
    return np.concatenate(parts) if keep and parts else None


def _check_values(layout: Layout, report: ValidationReport, missing: set[str]) -> None:
    starts = np.concatenate([[0], layout.episode_ends[:-1]]).astype(np.int64)
    columns, table = layout.checksum_table()
    for key in sorted(layout.data):
        # a key with a missing chunk reads zeros there: already named, not also called altered
        expected = table[:, columns.index(key)] if key in columns and key not in missing else None
        values = _read_all(layout, key, report, expected)
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
        try:
            values = np.asarray(array[:count])
        except Exception as exc:
            report.errors.append(f"meta/episode_{name} is unreadable: {exc}")
            continue
        if name == "source":
            unknown = sorted(set(values.tolist()) - set(schema.SOURCE_CODES.values()))
            if unknown:
                report.errors.append(f"meta/episode_source holds unknown codes {unknown}")


def _check_checksums_kept(layout: Layout, report: ValidationReport) -> None:
    _, table = layout.checksum_table()
    without = np.flatnonzero(~np.any(table != schema.NO_CHECKSUM, axis=1)) if table.shape[1] else \
        np.arange(layout.num_episodes)
    if len(without):
        report.notes.append(
            f"{len(without)} of {layout.num_episodes} episodes carry no checksums (written before protege kept "
            "them): their values are only checked to decode, and a chunk missing there reads as zeros"
        )


def _check_stats_cache(layout: Layout, report: ValidationReport) -> None:
    entry = layout.attrs.get(CACHE_ATTR)
    if isinstance(entry, dict) and entry.get("fingerprint") != fingerprint(layout.episode_ends):
        report.notes.append("cached normalisation stats predate the last episodes (recomputed on next use)")
