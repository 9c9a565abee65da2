"""EpisodeWriter: append whole episodes to a dataset, each committed in one atomic step.

Commit order: write the new chunks of every per-episode array, checksum table, data array and
``meta/episode_ends`` while their new shapes are held back (``metadata_last``), then rename the
staged shapes into place all at once, ``meta/episode_ends``'s last. Until that last metadata file
is replaced, readers see the previous episode count, so a kill at any moment loses at most the
episode being saved; only a kill among those renames (a few milliseconds) leaves data arrays
longer than ``episode_ends[-1]``, a tail that the next writer or ``protege dataset repair`` trims.
Every chunk is stored, even one of fill values, so a missing chunk is damage that readers refuse.
"""

from __future__ import annotations

import atexit
import datetime
import importlib.metadata
import json
import os
import queue
import shutil
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import zarr
from zarr.core.sync import collect_aiterator, sync

from protege.datasets import schema
from protege.datasets.episode import Episode, EpisodeBuffer
from protege.datasets.errors import CorruptDatasetError, DatasetError, DatasetNotFoundError, IncompatibleDatasetError
from protege.datasets.layout import Layout, damage, inspect_layout, open_root
from protege.datasets.lock import WriterLock
from protege.datasets.schema import Source
from protege.datasets.storage import (
    EVERY_CHUNK,
    METADATA_FILES,
    create_checksum_table,
    create_meta_array,
    create_time_array,
    is_local,
    metadata_last,
    normalize_path,
    open_store,
    partial_files,
    time_chunk_frames,
)

FrameSpec = tuple[tuple[int, ...], np.dtype]
_PENDING_EPISODES = 2
_COMMIT_NICENESS = 10  # of the background commit thread (and its compressors): below a control loop


def _software_version() -> str:
    try:
        return f"protege {importlib.metadata.version('protege')}"
    except importlib.metadata.PackageNotFoundError:
        return "protege (unknown version)"


def _json_value(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _root_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The user's attrs, checked and made plain JSON, plus the attrs the writer owns."""
    if not isinstance(attrs, Mapping):
        raise DatasetError(f"attrs must be a mapping, got {type(attrs).__name__}")
    reserved = sorted(set(attrs) & set(schema.RESERVED_ATTRS))
    if reserved:
        raise DatasetError(f"attrs may not set {', '.join(reserved)} (the writer owns them)")
    try:
        plain = json.loads(json.dumps(dict(attrs), default=_json_value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise DatasetError(f"attrs are not JSON serialisable: {exc}") from None
    problem = schema.attrs_problem(plain)
    if problem:
        raise DatasetError(problem)
    return {
        **plain,
        "schema_version": schema.SCHEMA_VERSION,
        "source_codes": schema.SOURCE_CODES,
        "software": _software_version(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _build_skeleton(path: str, attrs: dict[str, Any], zarr_format: Literal[2, 3]) -> None:
    root = zarr.create_group(open_store(path, read_only=False), zarr_format=zarr_format, attributes=attrs)
    root.create_group("data")
    meta = root.create_group("meta")
    create_meta_array(meta, schema.EPISODE_ENDS, np.dtype(np.int64), 0, 0)
    for name, dtype in schema.BUILTIN_META.items():
        create_meta_array(meta, schema.META_PREFIX + name, dtype, 0, 0)


def _create(path: str, attrs: dict[str, Any], zarr_format: Literal[2, 3]) -> WriterLock | None:
    """Create an empty dataset and lock it; None if another process created it first.

    Locally the skeleton is built in a sibling temp directory and renamed into place, so a kill
    never leaves half a dataset behind.
    """
    if not is_local(path):
        lock = WriterLock.acquire(path)
        _build_skeleton(path, attrs, zarr_format)
        return lock
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex}.creating"
    try:
        _build_skeleton(str(staging), attrs, zarr_format)
        lock = WriterLock.acquire(str(staging))
        try:
            os.rename(staging, target)
        except OSError:
            lock.release()
            return None
        lock.path = path
        return lock
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _exists(path: str) -> bool:
    if is_local(path):
        if not os.path.isdir(path):
            return os.path.exists(path)
        with os.scandir(path) as entries:
            return any(entries)
    try:
        open_root(path)
    except DatasetNotFoundError:
        return False
    return True


def _check_compatible(path: str, attrs: dict[str, Any]) -> None:
    """Refuse (before locking) a broken dataset, or one of another rate, robot, task or action space."""
    layout = inspect_layout(path, open_root(path))
    layout.raise_if_broken()
    stored = layout.attrs
    mismatches = [
        f"{name} {attrs.get(name)!r} (given) != {stored.get(name)!r} (stored)"
        for name in schema.REQUIRED_ATTRS
        if attrs.get(name) != stored.get(name)
    ]
    if mismatches:
        raise IncompatibleDatasetError(f"{path}: attrs disagree with the stored dataset: {'; '.join(mismatches)}")


def _meta_value(name: str, value: Any) -> tuple[np.dtype, Any]:
    """dtype and fill value for an extra per-episode value: ints and bools -> int64 (-1), floats -> float64 (NaN)."""
    schema.check_name(name, "episode meta")
    if isinstance(value, (bool, int, np.integer, np.bool_)):
        return np.dtype(np.int64), -1
    if isinstance(value, (float, np.floating)):
        return np.dtype(np.float64), np.nan
    raise DatasetError(f"episode meta {name!r} must be an int, bool or float, got {type(value).__name__}")


def trim_uncommitted(layout: Layout) -> None:
    """Cut every array of a dataset opened for writing back to its committed episodes; delete temp files.

    With no episode committed, data arrays, extra meta arrays and checksum tables go entirely: they
    belong to a killed first episode (data/ may hold its chunks without metadata), and the next first
    frame may choose other keys.
    """
    data_group, meta_group = cast(zarr.Group, layout.root["data"]), cast(zarr.Group, layout.root["meta"])
    if layout.num_episodes == 0:  # the data arrays, and chunks of ones whose shapes a kill held back
        for name in collect_aiterator(data_group.store.list_dir(data_group.path)):
            if name not in METADATA_FILES and not name.startswith("."):  # but the group's metadata, temp files
                sync(data_group.store.delete_dir(f"{data_group.path}/{name}"))
        layout.data.clear()
        for name in [n for n in layout.meta if n not in schema.BUILTIN_META]:
            del meta_group[schema.META_PREFIX + name]
            del layout.meta[name]
        for name in (schema.CHECKSUMS, schema.META_CHECKSUMS):
            sync(meta_group.store.delete_dir(f"{meta_group.path}/{name}"))
        layout.checksums = layout.meta_checksums = None
    for array in layout.data.values():
        if array.shape[0] > layout.num_frames:
            array.resize((layout.num_frames, *array.shape[1:]))
    for array in layout.meta.values():
        if array.shape[0] > layout.num_episodes:
            array.resize((layout.num_episodes,))
    for table in (layout.checksums, layout.meta_checksums):
        if table is not None and table.shape[0] > layout.num_episodes:
            table.resize((layout.num_episodes, table.shape[1]))
    for leftover in partial_files(layout.path):
        leftover.unlink(missing_ok=True)


class _CommitWorker:
    """One background thread that commits queued episodes in order; the first error stops it."""

    def __init__(self, commit: Any) -> None:
        self._commit = commit
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=_PENDING_EPISODES)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="protege-episode-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if sys.platform.startswith("linux"):  # threads have their own niceness there: a save yields the CPU to
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), _COMMIT_NICENESS)  # the caller's loop
        while (item := self._queue.get()) is not None:
            try:
                if self.error is None:
                    self._commit(*item)
            except BaseException as exc:  # surfaced to the caller on its next call
                self.error = exc
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def submit(self, *item: Any) -> None:
        self._queue.put(item)

    def flush(self) -> None:
        self._queue.join()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()


class EpisodeWriter:
    """Append episodes to the dataset at ``path``, creating it if needed; holds the writer lock until close().

    ``attrs`` needs fps, robot, task and action_space (plus any JSON: cameras, action_scale, ...);
    appending checks they agree with the stored ones on those four. ``format`` (2 or 3, sharded)
    and ``chunk_frames`` (frames per chunk, default one per image frame and ~256 KiB for low-dim
    keys) apply when the dataset is created. With ``background=True`` compression and writing run
    on a worker thread; episodes commit in order, errors surface on the next call, and an episode
    is on disk once ``flush()`` or ``close()`` returns (a kill loses episodes still queued).
    Commits survive SIGKILL at any moment; nothing is fsynced, so a power cut may lose recent ones.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        attrs: Mapping[str, Any],
        format: int = 2,
        chunk_frames: int | None = None,
        background: bool = False,
    ) -> None:
        if format not in (2, 3):
            raise DatasetError(f"format must be 2 or 3, got {format!r}")
        if chunk_frames is not None and (not isinstance(chunk_frames, int) or chunk_frames < 1):
            raise DatasetError(f"chunk_frames must be a positive int, got {chunk_frames!r}")
        self.path = normalize_path(path)
        self._chunk_frames = chunk_frames
        root_attrs = _root_attrs(attrs)
        lock = _create(self.path, root_attrs, cast(Literal[2, 3], format)) if not _exists(self.path) else None
        if lock is None:
            _check_compatible(self.path, root_attrs)
            lock = WriterLock.acquire(self.path)
        self._lock: WriterLock | None = lock
        try:
            self._open_for_append()
        except BaseException:
            lock.release()
            raise
        self._buffer = EpisodeBuffer()
        self._next_index = self._num_episodes
        self._failure: BaseException | None = None
        self._worker = _CommitWorker(self._commit) if background else None
        atexit.register(self.close)

    # -- opening ---------------------------------------------------------------------------------

    def _open_for_append(self) -> None:
        """Load the committed state and trim whatever a killed writer left beyond it."""
        self._root = open_root(self.path, read_only=False)
        layout = inspect_layout(self.path, self._root)
        layout.raise_if_broken()
        self._num_episodes, self._num_frames = layout.num_episodes, layout.num_frames
        self._data_group = cast(zarr.Group, self._root["data"])
        self._meta_group = cast(zarr.Group, self._root["meta"])
        self._ends = cast(zarr.Array, self._meta_group[schema.EPISODE_ENDS])
        for key, array in layout.data.items():
            self._check_open_chunk(key, array)
        trim_uncommitted(layout)
        self._data = {key: array.with_config(EVERY_CHUNK) for key, array in layout.data.items()}
        self._meta = {name: array.with_config(EVERY_CHUNK) for name, array in layout.meta.items()}
        self._ends = self._ends.with_config(EVERY_CHUNK)
        self._checksums, self._meta_checksums = (
            None if table is None else table.with_config(EVERY_CHUNK)
            for table in (layout.checksums, layout.meta_checksums)
        )
        self._cameras: list[str] = layout.attrs.get("cameras", [])
        self._meta_dtypes = {name: array.dtype for name, array in self._meta.items()}
        self._spec: dict[str, FrameSpec] | None = (
            {name: (tuple(a.shape[1:]), a.dtype) for name, a in self._data.items()} if self._data else None
        )

    def _check_open_chunk(self, key: str, array: zarr.Array) -> None:
        """The next episode rewrites the last, partly filled chunk of ``key``: refuse now if it is unreadable."""
        first = self._num_frames - self._num_frames % array.chunks[0]
        if first == self._num_frames:
            return
        try:
            array[first : self._num_frames]
        except Exception as exc:  # codecs raise anything on damaged bytes
            raise CorruptDatasetError(
                f"{self.path}: cannot append, the chunk of data/{key} holding frames {first}-{self._num_frames - 1} "
                f"is damaged ({damage(exc)})"
            ) from None

    # -- frames ----------------------------------------------------------------------------------

    def add_frame(self, frame: Mapping[str, np.ndarray | float | int]) -> None:
        """Buffer one control tick; the first frame ever written fixes keys, shapes and dtypes."""
        self._raise_failure()
        if not isinstance(frame, Mapping) or not frame:
            raise DatasetError("a frame must be a non-empty mapping of key -> value")
        values = {key: self._as_array(key, value) for key, value in frame.items()}
        self._check_spec({key: (value.shape, value.dtype) for key, value in values.items()})
        self._buffer.add_frame(values)

    @staticmethod
    def _as_array(key: str, value: Any) -> np.ndarray:
        """``value`` in the key's canonical dtype, copied only if that needs a conversion."""
        try:
            return np.asarray(value, dtype=schema.CANONICAL_DTYPES.get(key))
        except (TypeError, ValueError, OverflowError) as exc:
            raise DatasetError(f"frame key {key!r}: {exc}") from None

    def _check_spec(self, spec: dict[str, FrameSpec]) -> None:
        if self._spec is None:
            self._spec = self._first_spec(spec)
            return
        if spec.keys() != self._spec.keys():
            missing, extra = sorted(self._spec.keys() - spec.keys()), sorted(spec.keys() - self._spec.keys())
            raise IncompatibleDatasetError(
                f"frame keys disagree with the dataset: missing {missing}, unexpected {extra}"
            )
        for key, (shape, dtype) in spec.items():
            if (shape, dtype) != self._spec[key]:
                stored_shape, stored_dtype = self._spec[key]
                raise IncompatibleDatasetError(
                    f"frame key {key!r} is {dtype} of shape {shape}, "
                    f"the dataset stores {stored_dtype} of shape {stored_shape}"
                )

    def _first_spec(self, spec: dict[str, FrameSpec]) -> dict[str, FrameSpec]:
        for key, (shape, dtype) in spec.items():
            schema.check_name(key, "data key")
            problem = schema.key_problem(key, shape, dtype)
            if problem:
                raise DatasetError(problem)
        if "action" not in spec:
            raise DatasetError("frames must contain an 'action'")
        missing = [c for c in self._cameras if f"{schema.IMAGE_PREFIX}{c}" not in spec]
        if missing:
            raise DatasetError(f"attrs list cameras {missing} but the frame has no image_<camera> key for them")
        for observation in self._root.attrs.get("observations", []):
            key, shape = observation["key"], tuple(observation["shape"])
            if spec.get(key, (shape,))[0] != shape:
                raise DatasetError(f"attrs record observation {key!r} of shape {shape}, the frame has {spec[key][0]}")
        return dict(spec)

    def discard_episode(self) -> None:
        """Drop the frames buffered since the last save."""
        self._buffer.discard_episode()

    # -- episodes --------------------------------------------------------------------------------

    def save_episode(self, seed: int, success: bool, source: Source | int, **extra_meta: Any) -> int:
        """Commit the buffered frames as one :class:`Episode` (``extra_meta`` is its ``meta``); return its index."""
        self._raise_failure()
        if not self._buffer.num_frames:
            raise DatasetError("save_episode: no frames were added since the last save")
        episode = self._buffer.episode(seed, success, source, **extra_meta)
        data, meta = self._checked(episode)  # bad meta keeps the frames
        self.discard_episode()
        return self._submit(data, meta)

    def add_episode(self, episode: Episode) -> int:
        """Commit a whole episode and return its index."""
        self._raise_failure()
        if self._buffer.num_frames:
            raise DatasetError("add_episode: save or discard the frames buffered with add_frame first")
        return self._submit(*self._checked(episode))

    def _checked(self, episode: Episode) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.dtype, Any, Any]]]:
        """The one check of an episode: its arrays in canonical dtypes, and its per-episode values."""
        if not isinstance(episode, Episode) or not isinstance(episode.data, Mapping):
            raise DatasetError(f"expected an Episode of key -> (T, ...) arrays, got {type(episode).__name__}")
        data = {key: self._as_array(key, value) for key, value in episode.data.items()}
        lengths = {value.shape[0] if value.ndim else 0 for value in data.values()}
        if len(lengths) != 1 or 0 in lengths:
            raise DatasetError("an episode needs the same, non-zero number of frames for every key")
        self._check_spec({key: (value.shape[1:], value.dtype) for key, value in data.items()})
        return data, self._episode_meta(data, episode)

    def _submit(self, episode: dict[str, np.ndarray], meta: dict[str, tuple[np.dtype, Any, Any]]) -> int:
        index = self._next_index
        self._next_index += 1
        if self._worker is not None:
            self._worker.submit(episode, meta)
            return index
        try:
            self._commit(episode, meta)
        except BaseException as exc:
            self._failure = exc
            raise DatasetError(f"saving episode {index} to {self.path} failed: {exc}") from exc
        return index

    def _episode_meta(self, data: dict[str, np.ndarray], episode: Episode) -> dict[str, tuple[np.dtype, Any, Any]]:
        """name -> (dtype, fill value, this episode's value) for every per-episode array."""
        seed, source, extra = episode.seed, episode.source, episode.meta
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise DatasetError(f"seed must be an int, got {seed!r}")
        try:
            source = Source(int(source))
        except ValueError:
            raise DatasetError(f"unknown source {source!r}; use one of {list(schema.SOURCE_CODES)}") from None
        clash = sorted(set(extra) & (set(schema.BUILTIN_META) | {"ends"}))
        if clash:
            raise DatasetError(f"episode meta {clash} clash with built-in per-episode values")
        if episode.duration is not None:
            if isinstance(episode.duration, bool) or not isinstance(episode.duration, (int, float, np.number)):
                raise DatasetError(f"duration must be a number of seconds, got {episode.duration!r}")
            duration = float(episode.duration)
        elif "timestamp" in data:
            duration = float(data["timestamp"][-1] - data["timestamp"][0])
        else:
            duration = len(data["action"]) / float(cast(float, self._root.attrs["fps"]))
        meta: dict[str, tuple[np.dtype, Any, Any]] = {
            "seed": (schema.BUILTIN_META["seed"], 0, int(seed)),
            "success": (schema.BUILTIN_META["success"], False, bool(episode.success)),
            "source": (schema.BUILTIN_META["source"], 0, int(source)),
            "duration": (schema.BUILTIN_META["duration"], 0.0, duration),
        }
        for name, value in extra.items():
            dtype, fill = _meta_value(name, value)
            if self._meta_dtypes.setdefault(name, dtype) != dtype:
                raise IncompatibleDatasetError(
                    f"episode meta {name!r} is stored as {self._meta_dtypes[name]}, got {value!r}"
                )
            meta[name] = (dtype, fill, value)
        return meta

    def _commit(self, episode: dict[str, np.ndarray], meta: dict[str, tuple[np.dtype, Any, Any]]) -> None:
        start, index = self._num_frames, self._num_episodes
        end = start + len(episode["action"])
        self._add_meta_arrays(meta, index)
        values = {schema.EPISODE_ENDS: np.int64(end)} | {
            schema.META_PREFIX + name: array.dtype.type(meta[name][2] if name in meta else array.fill_value)
            for name, array in self._meta.items()
        }
        with metadata_last(self._ends.store):  # the new shapes appear at once, episode_ends' last
            checksums, meta_checksums = self._create_arrays(index)
            for name, array in self._meta.items():
                array.resize((index + 1,))
                array[index] = values[schema.META_PREFIX + name]
            for table, row in (
                (meta_checksums, [values[column] for column in meta_checksums.attrs["keys"]]),
                (checksums, [episode[key] for key in checksums.attrs["keys"]]),
            ):
                table.resize((index + 1, table.shape[1]))
                table[index] = [schema.checksum(np.asarray(value)) for value in row]
            for key, array in self._data.items():
                array.resize((end, *array.shape[1:]))
                array[start:end] = episode[key]
            self._ends.resize((index + 1,))
            self._ends[index] = end
        self._num_frames, self._num_episodes = end, index + 1
        assert self._lock is not None
        self._lock.refresh()

    def _create_arrays(self, index: int) -> tuple[zarr.Array, zarr.Array]:
        """Create the data arrays (first episode) and the checksum tables (also in a dataset written before
        checksums were kept) inside the commit, so a kill before it ends leaves none of them: diffusion_policy's
        ReplayBuffer refuses data arrays with no episode, and the tables exist together. Return the tables."""
        if not self._data:
            assert self._spec is not None
            self._data = {
                key: create_time_array(
                    self._data_group, key, shape, dtype, time_chunk_frames(shape, dtype, self._chunk_frames),
                    image=schema.is_image_key(key),
                )
                for key, (shape, dtype) in self._spec.items()
            }
        if self._checksums is None:
            self._checksums = create_checksum_table(self._meta_group, schema.CHECKSUMS, sorted(self._data), index)
        if self._meta_checksums is None:
            columns = [schema.EPISODE_ENDS, *(schema.META_PREFIX + name for name in self._meta)]
            self._meta_checksums = create_checksum_table(self._meta_group, schema.META_CHECKSUMS, columns, index)
        return self._checksums, self._meta_checksums

    def _add_meta_arrays(self, meta: dict[str, tuple[np.dtype, Any, Any]], index: int) -> None:
        """Before the commit: create the new per-episode arrays (``index`` fill values), then their checksum
        columns (-1 for the ``index`` episodes before them) in an existing table. A column is stored chunks
        first, then named, then shaped, so a kill never leaves a nameless column."""
        for name, (dtype, fill, _) in meta.items():
            if name not in self._meta:
                self._meta[name] = create_meta_array(self._meta_group, schema.META_PREFIX + name, dtype, fill, index)
        table = self._meta_checksums
        if table is None:
            return
        old = list(table.attrs["keys"][: table.shape[1]])
        new = [schema.META_PREFIX + name for name in self._meta if schema.META_PREFIX + name not in old]
        if not new:
            return
        with metadata_last(table.store):  # (unchanged files are not rewritten: here the shape)
            table.attrs["keys"] = old + new
        with metadata_last(table.store):
            table.resize((index, len(old) + len(new)))
            if index:
                table[:, len(old) :] = schema.NO_CHECKSUM  # stored, like every chunk

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def num_episodes(self) -> int:
        """Episodes saved so far, including ones still being written in the background."""
        return self._next_index

    def flush(self) -> None:
        """Wait until every saved episode is committed; raise if one failed."""
        if self._worker is not None:
            self._worker.flush()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._lock is None:
            raise DatasetError(f"the writer of {self.path} is closed")
        if self._failure is None and self._worker is not None and self._worker.error is not None:
            self._failure = self._worker.error
            raise DatasetError(f"saving an episode to {self.path} failed: {self._failure}") from self._failure
        if self._failure is not None:
            raise DatasetError(f"the writer of {self.path} failed earlier ({self._failure}); open a new one")

    def close(self) -> None:
        """Commit pending episodes, drop unsaved frames and release the lock; safe to call twice."""
        if self._lock is None:
            return
        atexit.unregister(self.close)
        try:
            if self._worker is not None:
                self._worker.flush()
                self._worker.stop()
            if self._failure is None:  # one already raised to the caller is not raised again
                self._raise_failure()
        finally:
            self._lock.release()
            self._lock = None
            self.discard_episode()

    def __enter__(self) -> EpisodeWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
