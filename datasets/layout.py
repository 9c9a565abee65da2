"""Open a dataset's zarr hierarchy and check its structure from metadata and episode_ends alone."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import collect_aiterator

from protege.datasets import schema
from protege.datasets.errors import DatasetError
from protege.datasets.storage import is_local, open_store

# What zarr raises on a damaged metadata file (not JSON, a shape of strings, a missing field).
METADATA_ERRORS = (ValueError, TypeError, KeyError)


def damage(exc: BaseException) -> str:
    """The first line of a parser's or codec's message, to quote in a one-line error."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def open_root(path: str, read_only: bool = True) -> zarr.Group:
    """The root group of the dataset at ``path`` (format 2 or 3), or DatasetError."""
    if is_local(path) and not os.path.isdir(path):
        raise DatasetError(f"{path} is a file, not a dataset" if os.path.exists(path) else f"no dataset at {path}")
    try:
        return zarr.open_group(open_store(path, read_only=read_only), mode="r" if read_only else "r+")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        raise DatasetError(f"no zarr dataset at {path}") from None
    except METADATA_ERRORS as exc:
        raise DatasetError(f"{path}: the root metadata is damaged ({damage(exc)})") from None


@dataclass
class Layout:
    """What a dataset holds, with every structural problem found (errors) and harmless oddities (notes)."""

    path: str
    root: zarr.Group
    attrs: dict[str, Any]
    data: dict[str, zarr.Array] = field(default_factory=dict)
    meta: dict[str, zarr.Array] = field(default_factory=dict)  # "seed" -> meta/episode_seed, ...
    episode_ends: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    uncommitted_frames: int = 0  # the longest data array's frames past episode_ends[-1]
    checksums: zarr.Array | None = None  # meta/checksums, when the dataset keeps them
    ends_read: bool = False  # episode_ends was read and is valid: the frames past it are uncommitted
    damaged: set[str] = field(default_factory=set)  # "data/action", ...: nodes whose metadata is unreadable

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def num_frames(self) -> int:
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    @property
    def zarr_format(self) -> int:
        return int(self.root.metadata.zarr_format)

    def checksum_table(self) -> tuple[list[str], np.ndarray]:
        """Column keys and the committed episodes' checksums (-1: none); no columns without meta/checksums."""
        if self.checksums is None:
            return [], np.zeros((self.num_episodes, 0), np.int64)
        try:
            return list(self.checksums.attrs["keys"]), np.asarray(self.checksums[: self.num_episodes])
        except Exception as exc:  # codecs raise anything on damaged bytes
            raise DatasetError(f"{self.path}: meta/{schema.CHECKSUMS} is damaged ({damage(exc)})") from None

    def complete_from(self) -> int:
        """The first frame of the episodes written with checksums: from there on every chunk exists.

        (Writers before checksums skipped chunks holding only zeros, so an older missing chunk may be zeros.)
        """
        _, table = self.checksum_table()
        kept = np.flatnonzero(np.any(table != schema.NO_CHECKSUM, axis=1)) if table.shape[1] else []
        if not len(kept):
            return self.num_frames
        return int(self.episode_ends[kept[0] - 1]) if kept[0] else 0

    def episodes_of(self, first: int, last: int) -> str:
        """``episodes 3-5`` (or ``episode 3``): the episodes holding frames ``first``..``last``."""
        lo, hi = np.searchsorted(self.episode_ends, [first, last], side="right")
        hi = min(int(hi), self.num_episodes - 1)
        return f"episode {lo}" if lo == hi else f"episodes {lo}-{hi}"

    def raise_if_broken(self) -> None:
        if self.errors:
            more = f" (and {len(self.errors) - 1} more problems)" if len(self.errors) > 1 else ""
            raise DatasetError(f"{self.path}: {self.errors[0]}{more}")


def _members(layout: Layout, group: zarr.Group) -> dict[str, Any]:
    """The arrays and groups in ``group``; one whose metadata is damaged is an error and left out."""
    try:
        return dict(group.members())
    except METADATA_ERRORS:
        pass
    members = {}
    for name in sorted(collect_aiterator(group.store.list_dir(group.path))):
        if name.startswith("."):
            continue
        try:
            members[name] = group[name]
        except METADATA_ERRORS as exc:
            layout.damaged.add(f"{group.path}/{name}")
            layout.errors.append(f"{group.path}/{name} has damaged metadata ({damage(exc)})")
    return members


def _missing(layout: Layout, node: str) -> None:
    if node not in layout.damaged:  # already reported
        layout.errors.append(f"{node} is missing")


def _child(layout: Layout, group: zarr.Group, name: str) -> Any:
    """A named child, looked up directly (listing the root would trip over the writer's lock file);
    None when it is missing, or (an error) when its metadata is damaged."""
    try:
        return group[name]
    except KeyError:
        return None
    except METADATA_ERRORS as exc:  # json and utf-8 errors are ValueErrors
        layout.damaged.add(f"{name}/ group")
        layout.errors.append(f"{name}/ group has damaged metadata ({damage(exc)})")
        return None


def inspect_layout(path: str, root: zarr.Group) -> Layout:
    """Check attrs, groups, episode_ends, and each array's dtype, length and chunking."""
    layout = Layout(path=path, root=root, attrs=dict(root.attrs))
    for problem in (schema.version_problem(layout.attrs), schema.attrs_problem(layout.attrs)):
        if problem:
            layout.errors.append(problem)
    data_group, meta_group = _child(layout, root, "data"), _child(layout, root, "meta")
    if not isinstance(data_group, zarr.Group):
        _missing(layout, "data/ group")
    if not isinstance(meta_group, zarr.Group):
        _missing(layout, "meta/ group")
        return layout
    _inspect_meta(layout, _members(layout, meta_group))
    if isinstance(data_group, zarr.Group):
        _inspect_data(layout, _members(layout, data_group))
    return layout


def _inspect_meta(layout: Layout, members: dict[str, Any]) -> None:
    ends_array = members.pop(schema.EPISODE_ENDS, None)
    checksums = members.pop(schema.CHECKSUMS, None)
    if not isinstance(ends_array, zarr.Array):
        _missing(layout, f"meta/{schema.EPISODE_ENDS}")
    elif ends_array.ndim != 1 or ends_array.dtype != np.int64:
        layout.errors.append(f"meta/episode_ends must be 1-D int64, got {ends_array.dtype} of shape {ends_array.shape}")
    else:
        try:
            ends = np.asarray(ends_array[:], dtype=np.int64)
        except Exception as exc:  # a corrupt chunk surfaces as any codec error
            layout.errors.append(f"meta/episode_ends is unreadable: {exc}")
        else:
            bad = np.flatnonzero(np.diff(np.concatenate([[0], ends])) <= 0)
            if len(bad):
                layout.errors.append(f"meta/episode_ends is not strictly increasing from 0 (episode {bad[0]} is empty)")
            else:
                layout.episode_ends, layout.ends_read = ends, True
    count = layout.num_episodes
    if checksums is not None:
        keys = checksums.attrs.get("keys") if isinstance(checksums, zarr.Array) else None
        if not isinstance(keys, list) or checksums.ndim != 2 or checksums.shape[1] != len(keys):
            layout.errors.append(f"meta/{schema.CHECKSUMS} must be an (episodes, keys) array naming its keys")
        elif checksums.dtype != np.int64 or checksums.shape[0] < count:
            layout.errors.append(f"meta/{schema.CHECKSUMS} must be int64 with a row per episode, got "
                                 f"{checksums.dtype} of shape {checksums.shape} for {count} episodes")
        else:
            layout.checksums = checksums
    for name, node in sorted(members.items()):
        if not name.startswith(schema.META_PREFIX) or not isinstance(node, zarr.Array):
            layout.notes.append(f"meta/{name} is not a per-episode array; ignored")
            continue
        key = name[len(schema.META_PREFIX) :]
        expected = schema.BUILTIN_META.get(key)
        if node.ndim != 1:
            layout.errors.append(f"meta/{name} must be 1-D, got shape {node.shape}")
        elif expected is not None and node.dtype != expected:
            layout.errors.append(f"meta/{name} has dtype {node.dtype}, expected {expected}")
        elif node.shape[0] < count:
            layout.errors.append(f"meta/{name} has {node.shape[0]} entries but there are {count} episodes")
        else:
            if node.shape[0] > count and layout.ends_read:
                layout.notes.append(f"meta/{name} has {node.shape[0] - count} uncommitted entries (a killed writer)")
            layout.meta[key] = node
    present = {name[len(schema.META_PREFIX) :] for name in members if name.startswith(schema.META_PREFIX)}
    for key in sorted(set(schema.BUILTIN_META) - present):
        _missing(layout, f"meta/{schema.META_PREFIX}{key}")


def _inspect_data(layout: Layout, members: dict[str, Any]) -> None:
    frames = layout.num_frames
    for name, node in sorted(members.items()):
        if not isinstance(node, zarr.Array):
            layout.errors.append(f"data/{name} is a group; data/ must hold flat arrays only")
            continue
        problem = schema.key_problem(name, node.shape[1:], node.dtype) if node.ndim else f"data/{name} is 0-D"
        if problem:
            layout.errors.append(problem)
            continue
        if tuple(node.chunks[1:]) != tuple(node.shape[1:]):
            layout.errors.append(f"data/{name} is chunked {node.chunks}; arrays must be chunked along time only")
            continue
        if node.shape[0] < frames:
            layout.errors.append(f"data/{name} has {node.shape[0]} frames but meta/episode_ends ends at {frames}")
            continue
        layout.uncommitted_frames = max(layout.uncommitted_frames, node.shape[0] - frames)
        layout.data[name] = node
    if layout.uncommitted_frames and layout.ends_read:
        layout.notes.append(
            f"{layout.uncommitted_frames} uncommitted frames after the last episode (a killed writer); "
            "`protege dataset repair` trims them"
        )
    if layout.checksums is not None and sorted(layout.checksums.attrs["keys"]) != sorted(members):
        layout.errors.append(f"meta/{schema.CHECKSUMS} covers keys {sorted(layout.checksums.attrs['keys'])}, "
                             f"data/ holds {sorted(members)}")
    if layout.num_episodes and "action" not in members:
        _missing(layout, "data/action")
    cameras = layout.attrs.get("cameras", [])
    if not layout.num_episodes or not isinstance(cameras, list):
        return
    for camera in cameras:
        if f"{schema.IMAGE_PREFIX}{camera}" not in members:
            layout.errors.append(f"attrs list camera {camera!r} but data/{schema.IMAGE_PREFIX}{camera} is missing")
