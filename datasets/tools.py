"""Dataset tools behind ``protege dataset``: info, repair, merge and filter (copying episodes into a new dataset)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from protege.datasets import schema
from protege.datasets.episode import Episode
from protege.datasets.errors import CorruptDatasetError, DatasetError, IncompatibleDatasetError
from protege.datasets.layout import inspect_layout, open_root
from protege.datasets.lock import WriterLock
from protege.datasets.reader import Dataset
from protege.datasets.storage import is_local, normalize_path, partial_files, size_on_disk
from protege.datasets.writer import EpisodeWriter, trim_uncommitted

# Attributes that change what the stored numbers mean: datasets must agree on them to be merged.
_COMPATIBILITY_ATTRS = (*schema.REQUIRED_ATTRS, "action_scale")


def dataset_info(ds: Dataset) -> dict[str, Any]:
    """Summary of a dataset: counts, recording setup, keys with shapes and dtypes, sources, size.

    CorruptDatasetError if a committed chunk is missing (found from a listing of each array's chunks, nothing
    decoded), as every reader refuses those frames: a summary would hide it.
    """
    missing = list(ds._layout.missing_chunks().values())  # the reader's own snapshot of the layout
    if missing:
        more = f" (and {len(missing) - 1} more arrays)" if len(missing) > 1 else ""
        raise CorruptDatasetError(f"{ds.path}: {missing[0]}{more}; `protege dataset validate` names every problem, "
                                  "`protege dataset filter --episodes` copies the intact episodes")
    sources = Counter(schema.source_name(code) for code in ds.meta("source").tolist())
    success = ds.meta("success")
    attrs = ds.attrs
    return {
        "path": ds.path,
        "zarr_format": ds.zarr_format,
        "schema_version": attrs["schema_version"],
        "episodes": ds.num_episodes,
        "frames": ds.num_frames,
        "fps": ds.fps,
        "duration_s": ds.num_frames / ds.fps,
        "robot": attrs["robot"],
        "task": attrs["task"],
        "action_space": attrs["action_space"],
        "cameras": attrs.get("cameras", []),
        "sources": dict(sorted(sources.items())),
        "success_rate": float(success.mean()) if len(success) else None,
        "keys": {
            key: {"shape": list(ds.shape(key)[1:]), "dtype": str(ds.dtype(key)), "chunk_frames": ds.chunks(key)[0]}
            for key in ds.keys
        },
        "episode_meta": ds.meta_names,
        "size_bytes": size_on_disk(ds.path),
        "notes": ds.notes,
    }


def episode_rows(ds: Dataset) -> list[dict[str, Any]]:
    """One row per episode: index, length in frames, seed, source name, success, duration in seconds."""
    lengths = np.diff(ds.episode_ends, prepend=0)
    seeds, sources, successes, durations = (ds.meta(name) for name in ("seed", "source", "success", "duration"))
    return [
        {
            "episode": i,
            "length": int(lengths[i]),
            "seed": int(seeds[i]),
            "source": schema.source_name(int(sources[i])),
            "success": bool(successes[i]),
            "duration_s": float(durations[i]),
        }
        for i in range(ds.num_episodes)
    ]


def repair_dataset(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Trim what a killed writer left past the last committed episode (arrays' tails, temp files).

    Takes the writer lock, so a dataset that a live writer is appending to is refused.
    """
    path = normalize_path(path)
    root = open_root(path, read_only=False)
    lock = WriterLock.acquire(path)
    try:
        layout = inspect_layout(path, root)
        layout.raise_if_broken()
        frames, temp_files = layout.uncommitted_frames, len(partial_files(path))
        trim_uncommitted(layout)
    finally:
        lock.release()
    return {
        "path": path,
        "episodes": layout.num_episodes,
        "frames": layout.num_frames,
        "trimmed_frames": frames,
        "removed_temp_files": temp_files,
    }


def parse_episode_list(spec: str, num_episodes: int) -> np.ndarray:
    """``"0,3,5-9"`` -> sorted unique episode ids, each checked against ``num_episodes``."""
    ids: set[int] = set()
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            lo = int(first)
            hi = int(last) if dash else lo
        except ValueError:
            raise DatasetError(f"invalid episode list {spec!r}: use e.g. 0,3,5-9") from None
        if lo < 0 or hi < lo:
            raise DatasetError(f"invalid episode range {part.strip()!r} in {spec!r}")
        if hi >= num_episodes:
            raise DatasetError(f"episode {hi} out of range: the dataset has {num_episodes} episodes")
        ids.update(range(lo, hi + 1))
    return np.array(sorted(ids), dtype=np.int64)


def _frame_specs(ds: Dataset) -> dict[str, tuple[tuple[int, ...], str]]:
    return {key: (ds.shape(key)[1:], str(ds.dtype(key))) for key in ds.keys}


def _extra_meta_dtypes(ds: Dataset) -> dict[str, str]:
    return {name: str(ds.meta(name).dtype) for name in ds.meta_names if name not in schema.BUILTIN_META}


def check_mergeable(datasets: Sequence[Dataset]) -> None:
    """IncompatibleDatasetError naming every difference that makes the datasets' episodes incomparable."""
    first = datasets[0]
    for other in datasets[1:]:
        problems = [
            f"{name} {first.attrs.get(name)!r} != {other.attrs.get(name)!r}"
            for name in _COMPATIBILITY_ATTRS
            if first.attrs.get(name) != other.attrs.get(name)
        ]
        a, b = _frame_specs(first), _frame_specs(other)
        if a.keys() != b.keys():
            only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
            problems.append(f"keys differ (only in first: {only_a}, only in second: {only_b})")
        problems += [f"{key} is {a[key]} vs {b[key]}" for key in sorted(a.keys() & b.keys()) if a[key] != b[key]]
        ma, mb = _extra_meta_dtypes(first), _extra_meta_dtypes(other)
        problems += [f"meta episode_{n} is {ma[n]} vs {mb[n]}" for n in sorted(ma.keys() & mb.keys()) if ma[n] != mb[n]]
        if problems:
            raise IncompatibleDatasetError(f"cannot merge {first.path} and {other.path}: {'; '.join(problems)}")


def _output_exists(path: str) -> bool:
    if is_local(path):
        return os.path.exists(path)
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(path)
    except (ImportError, ValueError) as exc:  # an unknown protocol, or its backend's package missing
        raise DatasetError(f"{path}: {exc}") from None
    return bool(fs.exists(root))


def copy_episodes(
    selections: Sequence[tuple[Dataset, np.ndarray]], out: str, operation: str, zarr_format: int | None = None
) -> dict[str, Any]:
    """Write the selected episodes of each dataset, in order, into the new dataset ``out``."""
    if sum(len(ids) for _, ids in selections) == 0:
        raise DatasetError("no episodes selected; nothing to write")
    first = selections[0][0]
    inputs = [ds.path for ds, _ in selections]
    attrs = {**schema.user_attrs(first.attrs), "derived_from": {"operation": operation, "inputs": inputs}}
    episodes = (ds.episode(index) for ds, ids in selections for index in ids.tolist())
    return {**write_dataset(out, attrs, episodes, zarr_format or first.zarr_format), "inputs": inputs}


def write_dataset(out: str, attrs: dict[str, Any], episodes: Iterable[Episode], zarr_format: int) -> dict[str, Any]:
    """Write ``episodes`` into the new dataset ``out``: nothing is left at ``out`` unless every one was written
    (a local output is built in a sibling temp directory and renamed into place when complete)."""
    out = normalize_path(out)
    if _output_exists(out):
        raise DatasetError(f"output {out} already exists; choose a new path")
    target = out
    if is_local(out):
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        target = str(Path(out).parent / f".{Path(out).name}.{uuid.uuid4().hex}.writing")
    try:
        with EpisodeWriter(target, attrs, format=zarr_format, background=True) as writer:
            for episode in episodes:
                writer.add_episode(episode)
            count = writer.num_episodes
        if target != out:
            os.rename(target, out)
    finally:
        if target != out:
            shutil.rmtree(target, ignore_errors=True)
    return {"output": out, "episodes": count, "frames": Dataset(out).num_frames}


def merge_datasets(inputs: Sequence[str], out: str, zarr_format: int | None = None) -> dict[str, Any]:
    """Concatenate the episodes of compatible datasets into ``out``."""
    if len(inputs) < 2:
        raise DatasetError("merge needs at least two datasets")
    seen: dict[str, str] = {}
    for path in inputs:
        real = normalize_path(path)
        real = os.path.realpath(real) if is_local(real) else real
        if real in seen:
            raise DatasetError(f"{path} is given twice (as {seen[real]}): merging it would repeat every episode")
        seen[real] = path
    datasets = [Dataset(path) for path in inputs]
    check_mergeable(datasets)
    return copy_episodes([(ds, np.arange(ds.num_episodes)) for ds in datasets], out, "merge", zarr_format)


def select_episodes(
    ds: Dataset, episodes: str | None = None, success_only: bool = False, sources: Sequence[str] = ()
) -> np.ndarray:
    """Episode ids matching every given condition (an episode list, success, source names)."""
    keep = np.ones(ds.num_episodes, dtype=bool)
    if episodes:
        listed = np.zeros_like(keep)
        listed[parse_episode_list(episodes, ds.num_episodes)] = True
        keep &= listed
    if success_only:
        keep &= ds.meta("success")
    if sources:
        unknown = sorted(set(sources) - set(schema.SOURCE_CODES))
        if unknown:
            raise DatasetError(f"unknown source {unknown}; use {', '.join(schema.SOURCE_CODES)}")
        keep &= np.isin(ds.meta("source"), [schema.SOURCE_CODES[name] for name in sources])
    return np.flatnonzero(keep)


def filter_dataset(
    path: str,
    out: str,
    episodes: str | None = None,
    success_only: bool = False,
    sources: Sequence[str] = (),
    zarr_format: int | None = None,
) -> dict[str, Any]:
    """Copy the matching episodes of ``path`` into ``out`` (``zarr_format`` converts between 2 and 3)."""
    ds = Dataset(path)
    ids = select_episodes(ds, episodes, success_only, sources)
    result = copy_episodes([(ds, ids)], out, "filter", zarr_format)
    return {**result, "selected": ids.tolist()}
