"""Fast scattered frame reads: decode just the chunks that hold the wanted frames, with numcodecs.

zarr spends about half a millisecond of Python per chunk it reads (several for chunks inside
shards), and training from disk reads hundreds of scattered one-frame chunks per batch. For the
layouts protege writes on local disks (one Blosc compressor; format 2 chunks, or format 3 shards
with the index at the end) frames are read straight from the files. ``ChunkReader.for_array``
returns None for any other layout, which zarr then reads. A chunk missing from the frames
``Layout.checked_from`` on (episodes written with checksums, whose every chunk is stored) is damage:
it raises CorruptDatasetError rather than reading as the fill value.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.storage import LocalStore

from protege.datasets.errors import CorruptDatasetError
from protege.datasets.layout import Layout, damage

_EMPTY_CHUNK = 2**64 - 1
_CHECKSUM_BYTES = 4


def _little_endian_bytes(codec: object) -> bool:
    return isinstance(codec, BytesCodec) and (codec.endian is None or codec.endian.value == "little")


def _shard_chunks(array: zarr.Array) -> int | None:
    """Chunks per shard if ``array`` is sharded the way protege writes it, else None."""
    codecs: tuple[Any, ...] = getattr(array.metadata, "codecs", ())  # format 3 only
    if len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec) or array.shards is None:
        return None
    sharding = codecs[0]
    index_ok = (
        sharding.index_location == ShardingCodecIndexLocation.end
        and len(sharding.index_codecs) == 2
        and _little_endian_bytes(sharding.index_codecs[0])
        and isinstance(sharding.index_codecs[1], Crc32cCodec)
    )
    inner_ok = (
        len(sharding.codecs) == 2
        and _little_endian_bytes(sharding.codecs[0])
        and isinstance(sharding.codecs[1], BloscCodec)
    )
    if not (index_ok and inner_ok) or tuple(sharding.chunk_shape[1:]) != tuple(array.shape[1:]):
        return None
    return array.shards[0] // array.chunks[0]


class ChunkReader:
    """Reads any set of frames of one array by decoding the chunks that hold them."""

    def __init__(
        self, directory: Path, array: zarr.Array, codec: numcodecs.abc.Codec, shard_chunks: int | None,
        layout: Layout | None = None,
    ) -> None:
        self._layout = layout
        self._checked_from = layout.checked_from(array.path) if layout is not None else None
        self._directory = directory
        self._metadata = array.metadata
        self._chunk_shape = tuple(array.chunks)
        self._dtype = array.dtype
        self._fill = array.fill_value
        self._codec = codec
        self._shard_chunks = shard_chunks

    @classmethod
    def for_array(cls, array: zarr.Array, layout: Layout | None = None) -> ChunkReader | None:
        """A reader for ``array``, or None; with the dataset's ``layout`` a missing committed chunk raises."""
        store = array.store_path.store
        if not isinstance(store, LocalStore) or array.filters or len(array.compressors) != 1:
            return None
        if array.dtype.itemsize > 1 and (sys.byteorder != "little" or array.dtype.byteorder == ">"):
            return None
        directory = Path(store.root) / array.store_path.path
        if array.metadata.zarr_format == 2:
            compressor = array.compressors[0]
            if array.order != "C" or not isinstance(compressor, numcodecs.Blosc):
                return None
            return cls(directory, array, compressor, None, layout)
        shard_chunks = _shard_chunks(array)
        return None if shard_chunks is None else cls(directory, array, numcodecs.Blosc(), shard_chunks, layout)

    def read(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` (any order, repeats allowed, all within the array) -> (len(frames), *frame_shape)."""
        frames = np.asarray(frames, dtype=np.int64).ravel()
        out = np.empty((len(frames), *self._chunk_shape[1:]), dtype=self._dtype)
        chunk_frames = self._chunk_shape[0]
        chunk_ids = frames // chunk_frames
        order = np.argsort(chunk_ids, kind="stable")
        sorted_ids = chunk_ids[order]
        starts = np.flatnonzero(np.diff(sorted_ids, prepend=-1))
        shards: dict[int, tuple[int, np.ndarray]] = {}
        try:
            for begin, end in zip(starts, [*starts[1:], len(order)], strict=True):
                rows = order[begin:end]
                chunk = int(sorted_ids[begin])
                out[rows] = self._chunk(chunk, shards)[frames[rows] - chunk * chunk_frames]
        finally:
            for fd, _ in shards.values():
                os.close(fd)
        return out

    def _decode(self, data: bytes | None, key: Path, chunk: int) -> np.ndarray:
        if data is None:
            self._check_missing(key, chunk)
            return np.full(self._chunk_shape, self._fill, dtype=self._dtype)
        try:
            return np.frombuffer(self._codec.decode(data), dtype=self._dtype).reshape(self._chunk_shape)
        except Exception as exc:  # blosc reports damage as RuntimeError, a wrong size as ValueError
            raise CorruptDatasetError(f"chunk {key} is damaged ({damage(exc)})") from None

    def _check_missing(self, key: Path, chunk: int) -> None:
        if self._layout is None or self._checked_from is None:
            return
        first, frames = chunk * self._chunk_shape[0], self._layout.num_frames
        if first + self._chunk_shape[0] > self._checked_from and first < frames:
            where = self._layout.episodes_of(first, min(first + self._chunk_shape[0], frames) - 1)
            raise CorruptDatasetError(
                f"chunk {key} is missing ({where}); `protege dataset validate` checks them all"
            )

    def _key(self, coordinate: int) -> Path:
        return self._directory / self._metadata.encode_chunk_key((coordinate,) + (0,) * (len(self._chunk_shape) - 1))

    def _chunk(self, chunk: int, shards: dict[int, tuple[int, np.ndarray]]) -> np.ndarray:
        if self._shard_chunks is None:
            key = self._key(chunk)
            try:
                data: bytes | None = key.read_bytes()
            except FileNotFoundError:
                data = None
            return self._decode(data, key, chunk)
        shard, inner = divmod(chunk, self._shard_chunks)
        key = self._key(shard)
        if shard not in shards:
            try:
                fd = os.open(key, os.O_RDONLY)
            except FileNotFoundError:
                return self._decode(None, key, chunk)
            index_bytes = 16 * self._shard_chunks + _CHECKSUM_BYTES
            try:
                tail = os.pread(fd, index_bytes, os.fstat(fd).st_size - index_bytes)
                index = np.frombuffer(tail[:-_CHECKSUM_BYTES], dtype="<u8").reshape(-1, 2)
            except (OSError, ValueError) as exc:  # a shard shorter than its index
                os.close(fd)
                raise CorruptDatasetError(f"shard {key} is damaged ({damage(exc)})") from None
            shards[shard] = (fd, index)
        fd, index = shards[shard]
        offset, nbytes = (int(v) for v in index[inner])
        return self._decode(None if offset == _EMPTY_CHUNK else os.pread(fd, nbytes, offset), key, chunk)
