"""Every sampling path gives the same windows, bit for bit: the RAM cache, the disk path cold, warming and warm,
within and beyond its cache budget, into fresh arrays or the previous batch; Dataset.load read in pieces equals
a whole read, and damage found by a background read reaches the sampling thread."""

from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest
import zarr

from protege.datasets import Dataset, DatasetError, SequenceSampler

LENGTHS = (9, 1, 14, 6, 30, 2)
KEYS = ["joint_pos", "image_front", "image_wrist", "gripper"]


def _batches(sampler: SequenceSampler, count: int, size: int = 17):
    rng = np.random.default_rng(11)
    return [rng.integers(0, len(sampler), size) for _ in range(count)]


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for key, value in a.items():
        assert value.dtype == b[key].dtype
        np.testing.assert_array_equal(value, b[key], err_msg=key)


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("warm_bytes", [None, 0, 3000])
def test_disk_path_gives_the_ram_windows_cold_warming_and_warm(small_dataset, zarr_format, warm_bytes):
    path = small_dataset(LENGTHS, zarr_format, chunk_frames=4)
    ram = SequenceSampler(Dataset(path), KEYS, n_obs_steps=2, horizon=5)
    disk = SequenceSampler(Dataset(path), KEYS, n_obs_steps=2, horizon=5, cache=False, warm_bytes=warm_bytes)
    batches = _batches(ram, 12)
    reused: dict[str, np.ndarray] | None = None
    for i, indices in enumerate(batches):
        _assert_same(disk.sample(indices), ram.sample(indices))
        reused = disk.sample(indices, out=reused)
        _assert_same(reused, ram.sample(indices))
        if i == 3:
            disk.wait_warm()  # the rest come from a cache that holds what the budget allows
    disk.wait_warm()
    _assert_same(disk.sample(np.arange(len(ram))), ram.sample(np.arange(len(ram))))
    assert disk.warm == (warm_bytes is None)


def test_a_warm_disk_sampler_reads_nothing_more(small_dataset, monkeypatch):
    path = small_dataset(LENGTHS)
    disk = SequenceSampler(Dataset(path), KEYS, n_obs_steps=3, horizon=4, cache=False)
    everything = np.arange(len(disk))
    expected = disk.sample(everything)
    disk.wait_warm()
    assert disk.warm

    def refuse(*args: object) -> None:
        raise AssertionError("a warm cache read the store")

    for frames in disk._warming.values():
        monkeypatch.setattr(frames, "array", None)
        monkeypatch.setattr(frames, "_read", refuse)
    _assert_same(disk.sample(everything), expected)


def test_damage_found_by_a_background_read_reaches_the_sampler(small_dataset):
    path = small_dataset((5, 3, 7), chunk_frames=4)
    array = zarr.open_array(str(path / "data" / "joint_pos"), mode="r+")
    values = array[:]
    values[6, 0] = -1.0  # episode 1, behind the writer's back: its checksum stays
    array[:] = values
    disk = SequenceSampler(Dataset(path), ["joint_pos"], cache=False)
    message = "data/joint_pos does not match its checksum in episode 1"
    disk.sample(np.arange(len(disk)))  # read frame by frame (unchecked), then each episode whole (checked)
    concurrent.futures.wait(disk._warming["joint_pos"].pending)
    with pytest.raises(DatasetError, match=message):  # the next batch raises the background read's failure
        disk.sample(np.arange(len(disk)))
    with pytest.raises(DatasetError, match=message):
        disk.wait_warm()


def test_load_in_pieces_equals_a_whole_read(small_dataset, monkeypatch):
    from protege.datasets import reader

    path = small_dataset(LENGTHS, chunk_frames=3)
    monkeypatch.setattr(reader, "_LOAD_PIECE_BYTES", 8 * 8 * 3 * 5)  # a few frames per piece
    ds = Dataset(path)
    assert len(ds.episode_pieces(5)) > 2
    for key in KEYS + ["action"]:
        np.testing.assert_array_equal(ds.load(key), Dataset(path)[key][:])
