"""Where a dataset lives: zarr stores with atomic, ordered writes, and the on-disk array layout."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import math
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numcodecs
import numpy as np
import zarr
from zarr.abc.store import Store
from zarr.codecs import BloscCodec
from zarr.core.buffer import Buffer
from zarr.core.sync import collect_aiterator, sync
from zarr.storage import FsspecStore, LocalStore

PARTIAL_SUFFIX = ".partial"
_PARTIAL_FILE = re.compile(r"\.[0-9a-f]{32}\.partial$")
METADATA_FILES = frozenset({".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json"})
# Every chunk is written, even one holding only the fill value: a missing chunk is then damage, not fill values.
EVERY_CHUNK = {"write_empty_chunks": True}
_RENAME_POOLS: dict[int, concurrent.futures.ThreadPoolExecutor] = {}  # by process id

# Frames at least this big (a 128x128 RGB image is 48 KiB) get one frame per chunk, for random access.
_LARGE_FRAME_BYTES = 16 * 1024
_SMALL_FRAME_CHUNK_BYTES = 256 * 1024
_MAX_CHUNK_FRAMES = 8192
_SHARD_BYTES = 8 * 1024 * 1024
_MAX_CHUNKS_PER_SHARD = 1024  # the shard index costs 16 bytes per chunk, read on every access
_META_CHUNK = 4096
_CLEVEL = 5


def normalize_path(path: str | os.PathLike[str]) -> str:
    """A local path (``~`` expanded, ``file://`` stripped) or an fsspec URL, as a string."""
    text = os.fspath(path)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if "://" in text:
        return text.rstrip("/")
    return str(Path(text).expanduser())


def is_local(path: str) -> bool:
    return "://" not in path


class _MetadataLast:
    """Store mixin: inside ``metadata_last()`` metadata writes are held back until the block ends.

    Chunks therefore land before the array shape that makes them visible: growing
    ``meta/episode_ends`` last this way is the single step that commits an episode.
    """

    _held: dict[str, Buffer] | None = None

    async def _write(self, key: str, value: Buffer) -> None:
        raise NotImplementedError

    async def set(self, key: str, value: Buffer) -> None:
        if self._held is not None and key.rsplit("/", 1)[-1] in METADATA_FILES:
            self._held[key] = value
            return
        await self._write(key, value)

    @contextlib.contextmanager
    def metadata_last(self) -> Iterator[None]:
        self._held = {}
        try:
            yield
            held = self._held
        finally:
            self._held = None
        self._publish(held)

    def _publish(self, held: dict[str, Buffer]) -> None:
        """Write the held metadata files in the order they were first held (locally: the last one last)."""
        for key, value in held.items():
            sync(self._write(key, value))


class AtomicLocalStore(_MetadataLast, LocalStore):
    """A local directory store whose every write is a temp file renamed into place."""

    async def _write(self, key: str, value: Buffer) -> None:
        if not self._is_open:
            await self._open()
        self._check_writable()
        await asyncio.to_thread(write_atomic, self.root / key, value.to_bytes())

    def _publish(self, held: dict[str, Buffer]) -> None:
        self._check_writable()
        replace_all([(self.root / key, value.to_bytes()) for key, value in held.items()])


class OrderedFsspecStore(_MetadataLast, FsspecStore):  # type: ignore[misc]  # set() drops the unused byte_range
    """An fsspec store (object stores write whole objects atomically) with metadata-last commits."""

    async def _write(self, key: str, value: Buffer) -> None:
        await FsspecStore.set(self, key, value)


def _stage(path: Path, data: bytes) -> Path:
    """``data`` in a temp file next to ``path``, to be renamed onto it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
    try:
        tmp.write_bytes(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old file or the new one."""
    tmp = _stage(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


def _rename_pool() -> concurrent.futures.ThreadPoolExecutor:
    """This process's rename threads (a forked child inherits the pool but none of its threads)."""
    pid = os.getpid()
    if pid not in _RENAME_POOLS:
        _RENAME_POOLS[pid] = concurrent.futures.ThreadPoolExecutor(16, thread_name_prefix="protege-rename")
    return _RENAME_POOLS[pid]


def replace_all(files: list[tuple[Path, bytes]]) -> None:
    """Write several files, each seen old or new, the last one after all others, within a moment.

    Every changed file is first staged as a temp file; then all but the last are renamed into place
    at once (concurrent renames overlap their filesystem waits), then the last: a kill leaves some
    replaced and others not only during those few renames.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            if not _holds(path, data):  # zarr rewrites unchanged attributes on every resize
                staged.append((_stage(path, data), path))
        if staged:
            pool = _rename_pool()
            renames = [pool.submit(os.replace, tmp, path) for tmp, path in staged[:-1]]
            concurrent.futures.wait(renames)
            for rename in renames:
                rename.result()
            os.replace(*staged[-1])
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise


def open_store(path: str, read_only: bool) -> AtomicLocalStore | OrderedFsspecStore:
    if is_local(path):
        return AtomicLocalStore(path, read_only=read_only)
    return cast(OrderedFsspecStore, OrderedFsspecStore.from_url(path, read_only=read_only))


def metadata_last(store: Store) -> contextlib.AbstractContextManager[None]:
    if not isinstance(store, _MetadataLast):
        raise TypeError(f"store {store!r} cannot order metadata writes")
    return store.metadata_last()


def partial_files(path: str) -> list[Path]:
    """Temp files left behind by a writer killed mid-write (local datasets only)."""
    if not is_local(path) or not os.path.isdir(path):
        return []
    return [p for p in Path(path).rglob(f"*{PARTIAL_SUFFIX}") if _PARTIAL_FILE.search(p.name)]


def size_on_disk(path: str) -> int:
    """Total bytes of all files under the dataset."""
    if is_local(path):
        return sum(entry.stat().st_size for entry in Path(path).rglob("*") if entry.is_file())
    import fsspec

    fs, root = fsspec.core.url_to_fs(path)
    return int(fs.du(root))


def time_chunk_frames(frame_shape: tuple[int, ...], dtype: np.dtype, chunk_frames: int | None) -> int:
    """Frames per chunk: one for images (random access), ~256 KiB for low-dim keys, or the caller's choice."""
    if chunk_frames is not None:
        return chunk_frames
    frame_bytes = max(1, math.prod(frame_shape) * dtype.itemsize)
    if frame_bytes >= _LARGE_FRAME_BYTES:
        return 1
    return int(np.clip(_SMALL_FRAME_CHUNK_BYTES // frame_bytes, 1, _MAX_CHUNK_FRAMES))


def _codec(zarr_format: int, byte_shuffle: bool) -> Any:
    if zarr_format == 2:
        shuffle = numcodecs.Blosc.SHUFFLE if byte_shuffle else numcodecs.Blosc.BITSHUFFLE
        return numcodecs.Blosc(cname="zstd", clevel=_CLEVEL, shuffle=shuffle)
    return BloscCodec(cname="zstd", clevel=_CLEVEL, shuffle="shuffle" if byte_shuffle else "bitshuffle")


def create_time_array(
    group: zarr.Group,
    name: str,
    frame_shape: tuple[int, ...],
    dtype: np.dtype,
    chunk_frames: int,
    image: bool,
) -> zarr.Array:
    """An empty array of frames, chunked along time only (format 3 adds shards of ~8 MiB, at most 1024 chunks);
    every chunk written to it is stored."""
    zarr_format = group.metadata.zarr_format
    chunks = (chunk_frames, *frame_shape)
    shards = None
    if zarr_format == 3:
        chunk_bytes = max(1, chunk_frames * math.prod(frame_shape) * dtype.itemsize)
        chunks_per_shard = int(np.clip(_SHARD_BYTES // chunk_bytes, 1, _MAX_CHUNKS_PER_SHARD))
        shards = (chunk_frames * chunks_per_shard, *frame_shape)
    return group.create_array(
        name,
        shape=(0, *frame_shape),
        chunks=chunks,
        shards=shards,
        dtype=dtype,
        compressors=_codec(zarr_format, byte_shuffle=image),
        fill_value=0,
    ).with_config(EVERY_CHUNK)


def create_checksum_table(group: zarr.Group, name: str, keys: list[str], length: int) -> zarr.Array:
    """meta/``name``: (episodes, keys) int64 checksums, ``length`` rows of -1 (none), every chunk stored;
    attrs ``keys`` names the columns."""
    array = group.create_array(
        name,
        shape=(length, len(keys)),
        chunks=(_META_CHUNK, len(keys)),
        dtype=np.int64,
        compressors=_codec(group.metadata.zarr_format, byte_shuffle=False),
        fill_value=-1,
        attributes={"keys": keys},
    ).with_config(EVERY_CHUNK)
    if length:
        array[:] = -1
    return array


def create_meta_array(group: zarr.Group, name: str, dtype: np.dtype, fill_value: Any, length: int) -> zarr.Array:
    """A one-value-per-episode array of ``length`` entries, all ``fill_value``, every chunk stored."""
    array = group.create_array(
        name,
        shape=(length,),
        chunks=(_META_CHUNK,),
        dtype=dtype,
        compressors=_codec(group.metadata.zarr_format, byte_shuffle=False),
        fill_value=fill_value,
    ).with_config(EVERY_CHUNK)
    if length:
        array[:] = fill_value
    return array


def rows_per_object(array: zarr.Array) -> int:
    """Rows (axis 0) per stored object: a chunk, or in format 3 a shard."""
    return int((array.shards or array.chunks)[0])


def object_names(array: zarr.Array, block: int) -> list[str]:
    """The stored objects holding row block ``block`` of ``array``, e.g. ``data/action/0.0`` (one per block
    of the other axes: a checksum table grown by columns has several)."""
    sizes = array.shards or array.chunks
    others = itertools.product(*(range(-(-n // size)) for n, size in zip(array.shape[1:], sizes[1:], strict=True)))
    return [f"{array.path}/{array.metadata.encode_chunk_key((block, *rest))}" for rest in others]


def stored_objects(array: zarr.Array) -> set[str]:
    """The names of every object stored under ``array`` (chunks or shards, metadata, temp files)."""
    return set(collect_aiterator(array.store.list_prefix(f"{array.path}/")))
