"""The direct chunk reader returns exactly what zarr returns, for both formats and any frame order."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from protege.datasets import Dataset, EpisodeWriter, Source
from protege.datasets.chunks import ChunkReader


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("chunk_frames", [None, 1, 3])
def test_reader_matches_zarr(small_dataset, zarr_format, chunk_frames):
    ds = Dataset(small_dataset((5, 9, 4), zarr_format, chunk_frames=chunk_frames))
    rng = np.random.default_rng(0)
    picks = np.concatenate([rng.integers(0, ds.num_frames, 40), [0, ds.num_frames - 1, 3, 3]])
    for key in ds.keys:
        array = zarr.open_group(str(ds.path), mode="r")["data"][key]
        reader = ChunkReader.for_array(array)
        assert reader is not None, key
        np.testing.assert_array_equal(reader.read(picks), array[:][picks], err_msg=key)
        np.testing.assert_array_equal(ds[key][picks.reshape(4, 11)], array[:][picks].reshape(4, 11, *array.shape[1:]))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_unwritten_chunks_read_as_fill_value(tmp_path, attrs, zarr_format):
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path, {**attrs, "cameras": []}, format=zarr_format, chunk_frames=2) as writer:
        for t in range(6):
            writer.add_frame({"action": np.full(3, 0.0 if t < 4 else 1.0, np.float32)})  # zarr skips all-zero chunks
        writer.save_episode(seed=0, success=True, source=Source.HUMAN)
    ds = Dataset(path)
    np.testing.assert_array_equal(ds["action"][np.array([5, 0, 2, 4])][:, 0], [1.0, 0.0, 0.0, 1.0])


def test_other_layouts_fall_back_to_zarr(tmp_path):
    root = zarr.open_group(str(tmp_path / "plain.zarr"), mode="w", zarr_format=3)
    unsharded = root.create_array("x", shape=(10, 2), chunks=(4, 2), dtype="f4")
    unsharded[:] = np.arange(20, dtype=np.float32).reshape(10, 2)
    assert ChunkReader.for_array(unsharded) is None
