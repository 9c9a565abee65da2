"""Open a dataset's zarr hierarchy and check its structure from metadata and episode_ends alone."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr
from zarr.core.sync import collect_aiterator
from zarr.errors import ZarrUserWarning

from protege.datasets import schema
from protege.datasets.errors import CorruptDatasetError, DatasetError, DatasetNotFoundError
from protege.datasets.storage import is_local, object_names, open_store, rows_per_object, stored_objects

# What zarr raises on a damaged metadata file (not JSON, a shape of strings, a missing field).
METADATA_ERRORS = (ValueError, TypeError, KeyError)


def damage(exc: BaseException) -> str:
    """The first line of a parser's or codec's message, to quote in a one-line error."""
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def open_root(path: str, read_only: bool = True) -> zarr.Group:
    """The root group of the dataset at ``path`` (format 2 or 3); DatasetNotFoundError if there is none,
    CorruptDatasetError if its root metadata is damaged."""
    if is_local(path) and not os.path.isdir(path):
        problem = f"{path} is a file, not a dataset" if os.path.exists(path) else f"no dataset at {path}"
        raise DatasetNotFoundError(problem)
    try:
        store = open_store(path, read_only=read_only)
    except (ImportError, ValueError) as exc:  # fsspec: an unknown protocol, or its backend's package missing
        raise DatasetError(f"{path}: {exc}") from None
    try:
        return zarr.open_group(store, mode="r" if read_only else "r+")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError):
        raise DatasetNotFoundError(f"no zarr dataset at {path}") from None
    except METADATA_ERRORS as exc:
        raise CorruptDatasetError(f"{path}: the root metadata is damaged ({damage(exc)})") from None


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
    meta_checksums: zarr.Array | None = None  # meta/meta_checksums, likewise
    # "data/action", "meta/episode_seed", ... -> each committed episode's checksum (-1: none), from the tables
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    ends_read: bool = False  # episode_ends was read and is valid: the frames past it are uncommitted
    damaged: set[str] = field(default_factory=set)  # "data/action", ...: nodes whose metadata is unreadable
    _stored: dict[str, set[str]] = field(default_factory=dict, repr=False)  # array path -> its stored objects

    @property
    def num_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def num_frames(self) -> int:
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    @property
    def zarr_format(self) -> int:
        return int(self.root.metadata.zarr_format)

    def _bounds(self, node: str) -> tuple[np.ndarray, np.ndarray]:
        """Each episode's first and past-the-end row of ``node``: frames for data/, one row for meta/."""
        if node.startswith("data/"):
            return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64), self.episode_ends
        episodes = np.arange(self.num_episodes)
        return episodes, episodes + 1

    def checked_from(self, node: str) -> int:
        """The first row of ``node`` committed with a checksum: from there on the writer stored every chunk.

        (Writers before checksums skipped chunks holding only fill values, so an older missing chunk may be them.)
        """
        starts, ends = self._bounds(node)
        sums = self.sums.get(node, np.zeros(0, np.int64))
        kept = np.flatnonzero(sums != schema.NO_CHECKSUM)
        return int(starts[kept[0]]) if len(kept) else int(ends[-1]) if len(ends) else 0

    def altered(self, node: str, first: int, values: np.ndarray) -> list[int]:
        """The episodes lying wholly within ``values`` (rows ``first``.. of ``node``) that do not match the
        checksum computed when they were committed."""
        sums = self.sums.get(node)
        if sums is None:
            return []
        starts, ends = self._bounds(node)
        lo, hi = np.searchsorted(starts, first), np.searchsorted(ends, first + len(values), side="right")
        return [
            e for e in range(int(lo), int(hi))
            if sums[e] != schema.NO_CHECKSUM and schema.checksum(values[starts[e] - first : ends[e] - first]) != sums[e]
        ]

    def missing_chunk(self, array: zarr.Array, first: int, stop: int) -> str | None:
        """The problem if a stored object holding rows ``first``..``stop - 1`` of ``array`` is missing (naming
        the first and the episodes it holds), else None; each array's objects are listed once."""
        if first >= stop:
            return None
        if array.path not in self._stored:
            self._stored[array.path] = stored_objects(array)
        stored, per = self._stored[array.path], rows_per_object(array)
        missing = [(block, name) for block in range(first // per, -(-stop // per))
                   for name in object_names(array, block) if name not in stored]
        if not missing:
            return None
        block, name = missing[0]
        lo, hi = max(first, block * per), min(stop, (block + 1) * per) - 1
        where = self.episodes_of(lo, hi) if array.path.startswith("data/") else episode_list(list(range(lo, hi + 1)))
        more = f" (and {len(missing) - 1} more chunks of {array.path})" if len(missing) > 1 else ""
        return f"chunk {name} is missing ({where}){more}"

    def missing_chunks(self) -> dict[str, str]:
        """Each committed array (data/ and per-episode values) with a stored chunk missing -> the problem
        (:meth:`missing_chunk`): a listing of each array's objects, nothing decoded."""
        arrays = {**{f"data/{key}": array for key, array in self.data.items()},
                  **{f"meta/{schema.META_PREFIX}{name}": array for name, array in self.meta.items()}}
        problems = {}
        for node, array in sorted(arrays.items()):
            stop = self.num_frames if node.startswith("data/") else self.num_episodes
            problem = self.missing_chunk(array, self.checked_from(node), stop)
            if problem:
                problems[node] = problem
        return problems

    def episodes_of(self, first: int, last: int) -> str:
        """``episodes 3-5`` (or ``episode 3``): the episodes holding frames ``first``..``last``."""
        lo, hi = np.searchsorted(self.episode_ends, [first, last], side="right")
        hi = min(int(hi), self.num_episodes - 1)
        return f"episode {lo}" if lo == hi else f"episodes {lo}-{hi}"

    def raise_if_broken(self) -> None:
        """CorruptDatasetError naming the first problem found, if any."""
        if self.errors:
            more = f" (and {len(self.errors) - 1} more problems)" if len(self.errors) > 1 else ""
            raise CorruptDatasetError(f"{self.path}: {self.errors[0]}{more}")


def episode_list(episodes: list[int]) -> str:
    """``episode 3``, ``episodes 3-5`` (a run) or ``episodes 1, 4, 9 ...`` (at most ten named)."""
    if len(episodes) == 1:
        return f"episode {episodes[0]}"
    if episodes == list(range(episodes[0], episodes[-1] + 1)):
        return f"episodes {episodes[0]}-{episodes[-1]}"
    return "episodes " + ", ".join(map(str, episodes[:10])) + (" ..." if len(episodes) > 10 else "")


def altered_problem(node: str, episodes: list[int]) -> str:
    return f"{node} does not match its checksum in {episode_list(episodes)}"


def _members(layout: Layout, group: zarr.Group) -> dict[str, Any]:
    """The arrays and groups in ``group``; one whose metadata is damaged is an error and left out, a folder
    without metadata (the chunks of arrays whose creation a killed commit held back) is ignored."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Object at .* is not recognized", ZarrUserWarning)
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
    tables = {name: members.pop(name, None) for name in (schema.CHECKSUMS, schema.META_CHECKSUMS)}
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
    for name, table in tables.items():
        if table is not None:
            _inspect_table(layout, name, table)
    if tables[schema.META_CHECKSUMS] is not None and tables[schema.CHECKSUMS] is None and layout.num_episodes:
        _missing(layout, f"meta/{schema.CHECKSUMS}")  # the writer creates both tables in one commit
    altered = layout.altered(f"meta/{schema.EPISODE_ENDS}", 0, layout.episode_ends)
    if altered:
        layout.errors.append(altered_problem(f"meta/{schema.EPISODE_ENDS}", altered))
    count = layout.num_episodes
    expected_names = {schema.META_PREFIX + key for key in schema.BUILTIN_META}
    expected_names |= {node[len("meta/") :] for node in layout.sums if node.startswith("meta/")}
    for name, node in sorted(members.items()):
        if name in expected_names and not isinstance(node, zarr.Array):
            layout.errors.append(f"meta/{name} is not an array (its metadata is damaged or missing)")
            continue
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
    for name in sorted(expected_names - set(members) - {schema.EPISODE_ENDS}):
        _missing(layout, f"meta/{name}")


def _inspect_table(layout: Layout, name: str, table: Any) -> None:
    """Check a checksum table and read its committed rows into ``layout.sums``.

    Its attrs may name more columns than it has: a writer adding columns names them first.
    """
    keys = table.attrs.get("keys") if isinstance(table, zarr.Array) else None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys) or table.ndim != 2 \
            or table.shape[1] > len(keys):
        layout.errors.append(f"meta/{name} must be an (episodes, keys) array naming its keys")
        return
    count = layout.num_episodes
    if table.dtype != np.int64 or table.shape[0] < count:
        layout.errors.append(f"meta/{name} must be int64 with a row per episode, got "
                             f"{table.dtype} of shape {table.shape} for {count} episodes")
        return
    problem = layout.missing_chunk(table, 0, count)
    if problem:
        layout.errors.append(problem)
        return
    try:
        rows = np.asarray(table[:count])
    except Exception as exc:  # codecs raise anything on damaged bytes
        layout.errors.append(f"meta/{name} is damaged ({damage(exc)})")
        return
    prefix = "data/" if name == schema.CHECKSUMS else "meta/"
    layout.sums.update({prefix + key: rows[:, column] for column, key in enumerate(keys[: table.shape[1]])})
    if name == schema.CHECKSUMS:
        layout.checksums = table
    else:
        layout.meta_checksums = table


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
    elif layout.data and layout.ends_read and not layout.num_episodes:
        layout.notes.append("empty data arrays but no episode (a writer killed in its first save), which "
                            "ReplayBuffer loaders refuse; `protege dataset repair` removes them")
    covered = sorted(node[len("data/") :] for node in layout.sums if node.startswith("data/"))
    if layout.checksums is not None and covered != sorted(members):
        layout.errors.append(f"meta/{schema.CHECKSUMS} covers keys {covered}, data/ holds {sorted(members)}")
    if layout.num_episodes and "action" not in members:
        _missing(layout, "data/action")
    cameras = layout.attrs.get("cameras", [])
    if not layout.num_episodes or not isinstance(cameras, list):
        return
    for camera in cameras:
        if f"{schema.IMAGE_PREFIX}{camera}" not in members:
            layout.errors.append(f"attrs list camera {camera!r} but data/{schema.IMAGE_PREFIX}{camera} is missing")
