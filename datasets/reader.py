"""Dataset: read-only access to the committed episodes of a dataset, format 2 or 3, local or fsspec."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import zarr

from protege.datasets import schema
from protege.datasets.chunks import ChunkReader
from protege.datasets.episode import Episode
from protege.datasets.errors import CorruptDatasetError, DatasetError
from protege.datasets.layout import Layout, altered_problem, damage, inspect_layout, open_root
from protege.datasets.schema import Source
from protege.datasets.storage import normalize_path, rows_per_object

Selection = int | slice | Sequence[int] | np.ndarray
# Whole-array loads go through the decode pool in pieces of about this many bytes, whole episodes each.
_LOAD_PIECE_BYTES = 8 * 1024 * 1024
DECODE_WORKERS = max(2, os.cpu_count() or 2)
_DECODE_POOLS: dict[tuple[int, bool], concurrent.futures.ThreadPoolExecutor] = {}  # by process id, background


def decode_pool(background: bool = False) -> concurrent.futures.ThreadPoolExecutor:
    """This process's chunk-decoding threads, one per CPU (Blosc decodes outside the GIL in threads other than
    the main one; a forked child gets pools of its own); large batches are gathered on them too
    (:func:`~protege.datasets.gather.take_rows`). ``background``: the pool of work nobody waits for yet
    (caches warming), half as many threads, so that it never queues ahead of reads a caller is waiting on."""
    key = (os.getpid(), background)
    if key not in _DECODE_POOLS:
        workers = max(1, DECODE_WORKERS // 2) if background else DECODE_WORKERS
        _DECODE_POOLS[key] = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="protege-decode")
    return _DECODE_POOLS[key]


def _is_fill(value: float) -> bool:
    """Whether an extra per-episode value is the fill value of episodes saved without it (-1, NaN)."""
    return value == -1 if isinstance(value, int) else bool(np.isnan(value))


class FrameArray:
    """One data key limited to the committed frames: supports ints, slices and integer arrays on axis 0.

    With the dataset's ``layout``, a chunk missing among the committed frames raises CorruptDatasetError instead
    of reading as fill values, and so does a slice that holds whole episodes not matching their checksums.
    """

    def __init__(self, array: zarr.Array, num_frames: int, layout: Layout | None = None) -> None:
        self._array = array
        self._layout = layout
        self._reader = ChunkReader.for_array(array, layout)
        self.shape: tuple[int, ...] = (num_frames, *array.shape[1:])
        self.dtype: np.dtype = array.dtype
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def direct(self) -> bool:
        """Whether frames are read straight from the chunk files (local stores in protege's layouts), which
        threads may do side by side."""
        return self._reader is not None

    def __getitem__(self, selection: Selection | tuple[Any, ...]) -> np.ndarray:
        first, rest = (selection[0], selection[1:]) if isinstance(selection, tuple) else (selection, ())
        if first is Ellipsis:
            first, rest = slice(None), (Ellipsis, *rest)
        n = self.shape[0]
        if isinstance(first, slice):
            start, stop, step = first.indices(n)
            if step == 1 and all(part is Ellipsis for part in rest):
                return self._checked(start, max(start, stop))
            if self._reader is None:
                return self._zarr(self._array, (slice(start, stop, step), *rest), np.arange(start, stop, step))
            first = np.arange(start, stop, step)
        elif isinstance(first, (int, np.integer)):
            if not -n <= first < n:
                raise IndexError(f"frame {first} out of range for {n} frames")
            if self._reader is None:
                frame = int(first) % n
                return self._zarr(self._array, (frame, *rest), np.array([frame]))
            return np.asarray(self._reader.read(np.array([int(first) % n]))[(0, *rest)])
        indices = np.asarray(first)
        if indices.dtype.kind not in "iu":
            raise TypeError(f"unsupported selection {selection!r}")
        if indices.size and (indices.min() < -n or indices.max() >= n):
            raise IndexError(f"frame index out of range for {n} frames")
        frames = indices % max(n, 1)
        if self._reader is None:
            unique, inverse = np.unique(frames, return_inverse=True)
            return self._zarr(self._array.oindex, (unique, *rest), unique)[inverse.reshape(indices.shape)]
        values = self._reader.read(frames).reshape(*indices.shape, *self.shape[1:])
        return values[(*(slice(None),) * indices.ndim, *rest)] if rest else values

    def _checked(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start``..``stop - 1``, each whole episode among them compared with its checksum."""
        if self._reader is None:
            values = self._zarr(self._array, (slice(start, stop),), np.arange(start, stop))
        else:
            values = self._reader.read(np.arange(start, stop))
        if self._layout is not None:
            altered = self._layout.altered(self._array.path, start, values)
            if altered:
                raise CorruptDatasetError(f"{self._layout.path}: {altered_problem(self._array.path, altered)}; "
                                          "`protege dataset validate` names the damaged chunks")
        return values

    def _zarr(self, array: Any, selection: tuple[Any, ...], frames: np.ndarray) -> np.ndarray:
        """Read ``frames`` through zarr (layouts ChunkReader does not handle), refusing a missing committed chunk
        and naming a damaged one."""
        layout = self._layout
        if layout is not None and len(frames):
            checked_from, per = layout.checked_from(self._array.path), rows_per_object(self._array)
            for block in np.unique(frames[frames >= checked_from] // per).tolist():
                first, stop = max(block * per, checked_from), min((block + 1) * per, len(self))
                problem = layout.missing_chunk(self._array, first, stop)
                if problem:
                    raise CorruptDatasetError(f"{layout.path}: {problem}; `protege dataset validate` checks them all")
        try:
            return np.asarray(array[selection])
        except Exception as exc:  # codecs and stores raise anything on damaged bytes
            raise CorruptDatasetError(f"{self._array.store_path} is damaged ({damage(exc)})") from None

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        data = self[:]
        return data if dtype is None else data.astype(dtype)

    def __repr__(self) -> str:
        return f"FrameArray(shape={self.shape}, dtype={self.dtype})"


class Dataset:
    """The committed episodes of the dataset at ``path`` (a snapshot taken when it is opened)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = normalize_path(path)
        self._layout: Layout = inspect_layout(self.path, open_root(self.path))
        self._layout.raise_if_broken()
        self._memory: dict[str, np.ndarray] = {}
        self._meta: dict[str, np.ndarray] = {}
        self._frame_arrays: dict[str, FrameArray] = {}

    @property
    def attrs(self) -> dict[str, Any]:
        """Root attributes (schema version, fps, robot, task, cameras, ...) without the stats cache."""
        return {k: v for k, v in self._layout.attrs.items() if k != "stats"}

    @property
    def zarr_format(self) -> int:
        return self._layout.zarr_format

    @property
    def fps(self) -> float:
        return float(self._layout.attrs["fps"])

    @property
    def num_episodes(self) -> int:
        return self._layout.num_episodes

    @property
    def num_frames(self) -> int:
        return self._layout.num_frames

    @property
    def episode_ends(self) -> np.ndarray:
        return self._layout.episode_ends.copy()

    @property
    def episode_starts(self) -> np.ndarray:
        return np.concatenate([[0], self._layout.episode_ends[:-1]]).astype(np.int64)

    @property
    def keys(self) -> list[str]:
        return sorted(self._layout.data)

    @property
    def observation_kinds(self) -> dict[str, str]:
        """Observation key -> kind (``schema.OBS_KINDS``), in recorded order (:func:`schema.observation_kinds`)."""
        return schema.observation_kinds(self._layout.attrs, self.keys)

    @property
    def meta_names(self) -> list[str]:
        """Per-episode values: seed, success, source, duration, and any extra ones."""
        return sorted(self._layout.meta)

    @property
    def notes(self) -> list[str]:
        """Harmless oddities found when opening (an uncommitted tail, unknown meta arrays)."""
        return list(self._layout.notes)

    def _episode_index(self, index: int) -> int:
        n = self.num_episodes
        if not isinstance(index, (int, np.integer)) or not -n <= index < n:
            raise DatasetError(f"episode {index} out of range: {self.path} has {n or 'no'} episodes")
        return int(index) % n

    def episode_slice(self, index: int) -> slice:
        i = self._episode_index(index)
        ends = self._layout.episode_ends
        return slice(int(ends[i - 1]) if i else 0, int(ends[i]))

    def episode(self, index: int, keys: Sequence[str] | None = None) -> Episode:
        """Episode ``index`` as the writer takes it: its frames (all keys, or ``keys``), seed, success, source,
        duration and extra per-episode values (those it has: fill values -1 and NaN left out)."""
        i = self._episode_index(index)
        frames = self.episode_slice(i)
        data = {key: self[key][frames] for key in (self.keys if keys is None else keys)}
        meta = {name: self._meta_values(name)[i].item() for name in self.meta_names if name not in schema.BUILTIN_META}
        code = int(self._meta_values("source")[i])
        return Episode(
            data,
            seed=int(self._meta_values("seed")[i]),
            success=bool(self._meta_values("success")[i]),
            source=Source(code) if code in schema.SOURCE_CODES.values() else code,
            meta={name: value for name, value in meta.items() if not _is_fill(value)},
            duration=float(self._meta_values("duration")[i]),
        )

    def _array(self, key: str) -> zarr.Array:
        try:
            return self._layout.data[key]
        except KeyError:
            raise DatasetError(f"{self.path} has no data key {key!r}; keys: {', '.join(self.keys)}") from None

    def __getitem__(self, key: str) -> FrameArray:
        if key not in self._frame_arrays:
            self._frame_arrays[key] = FrameArray(self._array(key), self.num_frames, self._layout)
        return self._frame_arrays[key]

    def __contains__(self, key: str) -> bool:
        return key in self._layout.data

    def shape(self, key: str) -> tuple[int, ...]:
        return (self.num_frames, *self._array(key).shape[1:])

    def dtype(self, key: str) -> np.dtype:
        return self._array(key).dtype

    def chunks(self, key: str) -> tuple[int, ...]:
        return tuple(self._array(key).chunks)

    def meta(self, name: str) -> np.ndarray:
        """One value per episode, e.g. ``meta("success")`` (or ``meta("episode_success")``)."""
        key = name[len(schema.META_PREFIX) :] if name.startswith(schema.META_PREFIX) else name
        if key == "ends":
            return self.episode_ends
        if key not in self._layout.meta:
            raise DatasetError(f"{self.path} has no meta/episode_{key}; it has {', '.join(self.meta_names)}")
        return self._meta_values(key).copy()

    def _meta_values(self, key: str) -> np.ndarray:
        """meta/episode_<key>'s committed values, read once (callers must not change them)."""
        if key not in self._meta:
            self._meta[key] = self._read_meta(key)
        return self._meta[key]

    def _read_meta(self, key: str) -> np.ndarray:
        """meta/episode_<key>'s committed values, every chunk present and each value matching its checksum."""
        layout, node, array = self._layout, f"meta/{schema.META_PREFIX}{key}", self._layout.meta[key]
        problem = layout.missing_chunk(array, layout.checked_from(node), self.num_episodes)
        if problem:
            raise CorruptDatasetError(f"{self.path}: {problem}")
        try:
            values = np.asarray(array[: self.num_episodes])
        except Exception as exc:  # codecs raise anything on damaged bytes
            raise CorruptDatasetError(f"{self.path}: {node} is damaged ({damage(exc)})") from None
        altered = layout.altered(node, 0, values)
        if altered:
            raise CorruptDatasetError(f"{self.path}: {altered_problem(node, altered)}")
        return values

    def load(self, key: str) -> np.ndarray:
        """All committed frames of ``key`` in memory, read once and shared by every caller.

        Large arrays are read in pieces of whole episodes by the decode pool (each piece checked against the
        episodes' checksums, as a whole-array read is)."""
        if key not in self._memory:
            self._memory[key] = self._read_whole(key)
        return self._memory[key]

    def _read_whole(self, key: str) -> np.ndarray:
        array = self[key]
        frame_bytes = max(1, int(np.prod(array.shape[1:], dtype=np.int64)) * array.dtype.itemsize)
        pieces = self.episode_pieces(max(1, _LOAD_PIECE_BYTES // frame_bytes)) if array.direct else []
        if len(pieces) < 2:
            return array[:]
        out = np.empty(array.shape, array.dtype)

        def read(start: int, stop: int) -> None:
            out[start:stop] = array[start:stop]

        futures = [decode_pool().submit(read, start, stop) for start, stop in pieces]
        for future in futures:
            future.result()  # the first failure (a damaged chunk, a checksum) is raised here
        return out

    def episode_pieces(self, frames: int) -> list[tuple[int, int]]:
        """The committed frames cut into runs of whole episodes of at least ``frames`` frames each (the last
        one may be shorter)."""
        pieces, start = [], 0
        for end in self._layout.episode_ends.tolist():
            if end - start >= frames:
                pieces.append((start, int(end)))
                start = int(end)
        if start < self.num_frames:
            pieces.append((start, self.num_frames))
        return pieces

    def cached_attr(self, name: str) -> Any:
        """A cache entry kept in root attrs (see ``cache_attr``), or None."""
        return self._layout.attrs.get(name)

    def cache_attr(self, name: str, value: Any) -> bool:
        """Persist a JSON cache entry (normalisation stats) in root attrs; False if the store is read-only."""
        try:
            open_root(self.path, read_only=False).attrs[name] = value
        except (OSError, ValueError):
            return False
        self._layout.attrs[name] = value
        return True

    def __repr__(self) -> str:
        return f"Dataset({self.path!r}, episodes={self.num_episodes}, frames={self.num_frames})"
