"""Checksums per episode and array, every chunk stored, and damage named: validate, --quick and readers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from protege.datasets import Dataset, DatasetError, EpisodeWriter, SequenceSampler
from protege.datasets.schema import checksum
from protege.datasets.validate import validate_dataset
from protege.launch.cli import main


def chunk_files(path: Path, key: str) -> list[Path]:
    return sorted(p for p in (path / "data" / key).rglob("*") if p.is_file() and not p.name.startswith((".", "zarr")))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_every_episode_carries_a_checksum_per_array(small_dataset, expected_episode, zarr_format):
    path = small_dataset((5, 3, 7), zarr_format=zarr_format, chunk_frames=4)
    table = zarr.open_group(str(path), mode="r")["meta/checksums"]
    keys = table.attrs["keys"]
    assert keys == sorted(expected_episode(0, 5)) and table.shape == (3, len(keys))
    for episode, length in enumerate((5, 3, 7)):
        values = expected_episode(episode, length)
        assert [int(c) for c in table[episode]] == [checksum(values[k].astype(Dataset(path).dtype(k))) for k in keys]
    report = validate_dataset(path)
    assert report.valid and not report.notes, report.errors + report.notes


def test_chunks_of_zeros_are_stored(tmp_path, attrs, frame):
    path = tmp_path / "z.zarr"
    with EpisodeWriter(path, attrs, chunk_frames=2) as writer:
        for t in range(4):
            writer.add_frame({**frame(0, t), "intervention": 0})
        writer.save_episode(seed=0, success=True, source=0)
    assert len(chunk_files(path, "intervention")) == 2


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_missing_chunk_is_named_with_its_episodes_and_never_read_as_zeros(small_dataset, capsys, zarr_format):
    path = small_dataset((5, 3, 7), zarr_format=zarr_format, chunk_frames=4)
    victim = chunk_files(path, "joint_pos")[-1]  # the last stored object: frames of episodes 1-2 (or all, sharded)
    victim.unlink()
    name = str(victim.relative_to(path))
    for quick in ([], ["--quick"]):
        assert main(["dataset", "validate", str(path), *quick]) == 1
        out = capsys.readouterr().out
        (error,) = [line for line in out.splitlines() if line.startswith("error:")]
        assert error.startswith(f"error: chunk {name} is missing (episode") and "checksum" not in out, out
    ds = Dataset(path)
    with pytest.raises(DatasetError, match=rf"chunk .*{name} is missing \(episodes? "):
        ds["joint_pos"][:]
    with pytest.raises(DatasetError, match="is missing"):
        ds.load("joint_pos")
    with pytest.raises(DatasetError, match="is missing"):
        ds["joint_pos"][np.array([14])]
    with pytest.raises(DatasetError, match="is missing"):
        SequenceSampler(ds, ["joint_pos"])  # the cache loads every frame
    sampler = SequenceSampler(ds, ["joint_pos"], cache=False)
    with pytest.raises(DatasetError, match="is missing"):
        sampler.sample(np.arange(len(sampler)))


def test_altered_values_are_named_by_validate_only_in_full(small_dataset, capsys):
    path = small_dataset((5, 3, 7), chunk_frames=4)
    array = zarr.open_array(str(path / "data/action"), mode="r+")
    values = array[:]
    values[6] += 1.0  # episode 1, chunk 1
    array[:] = values
    assert main(["dataset", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "error: data/action does not match its checksum in episode(s) 1 (altered data in data/action/1.0)" in out
    assert main(["dataset", "validate", str(path), "--quick"]) == 0
    capsys.readouterr()


def test_datasets_without_checksums_still_validate_and_gain_them_when_appended_to(small_dataset, attrs, frame):
    path = small_dataset((5, 3))
    shutil.rmtree(path / "meta" / "checksums")  # as written before checksums were kept
    report = validate_dataset(path)
    assert report.valid and report.notes == [
        "2 of 2 episodes carry no checksums (written before protege kept them): their values are only checked to "
        "decode, and a chunk missing there reads as zeros"
    ]
    with EpisodeWriter(path, attrs) as writer:
        for t in range(4):
            writer.add_frame(frame(2, t))
        writer.save_episode(seed=102, success=True, source=0)
    table = zarr.open_group(str(path), mode="r")["meta/checksums"][:]
    assert (table[:2] == -1).all() and (table[2] != -1).all()
    report = validate_dataset(path)
    assert report.valid and report.notes[0].startswith("2 of 3 episodes carry no checksums"), report.errors
