"""Typed dataset errors: each failure raises its DatasetError subclass; the command line reports it in one line."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import zarr

from protege.datasets import (
    CorruptDatasetError,
    Dataset,
    DatasetError,
    DatasetLockedError,
    DatasetNotFoundError,
    EpisodeWriter,
    IncompatibleDatasetError,
    MissingExtraError,
    Source,
)
from protege.datasets.interop import export_dataset, import_dataset
from protege.datasets.tools import merge_datasets
from protege.launch.cli import main

SUBCLASSES = (CorruptDatasetError, DatasetLockedError, DatasetNotFoundError, IncompatibleDatasetError,
              MissingExtraError)


def test_every_subclass_is_a_dataset_error():
    assert all(issubclass(cls, DatasetError) for cls in SUBCLASSES)


def test_a_missing_path_is_not_found(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="no dataset at"):
        Dataset(tmp_path / "nope.zarr")
    (tmp_path / "empty").mkdir()
    file = tmp_path / "file.zarr"
    file.write_text("not a dataset")
    for path in (tmp_path / "empty", file):
        with pytest.raises(DatasetNotFoundError):
            Dataset(path)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        import_dataset(tmp_path / "nope.hdf5", "robomimic", tmp_path / "out.zarr")


def test_damaged_root_metadata_is_corrupt(small_dataset):
    path = small_dataset((3,))
    (path / ".zattrs").write_text("{ not json")
    with pytest.raises(CorruptDatasetError, match="root metadata is damaged"):
        Dataset(path)


def test_a_broken_layout_is_corrupt(small_dataset):
    path = small_dataset((3, 2))
    root = zarr.open_group(str(path), mode="r+")
    root["meta/episode_ends"][:] = [3, 2]  # not increasing
    with pytest.raises(CorruptDatasetError, match="episode_ends"):
        Dataset(path)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_missing_chunk_is_corrupt(small_dataset, zarr_format):
    path = small_dataset((5, 3, 7), zarr_format=zarr_format, chunk_frames=4)
    stored = sorted(p for p in (path / "data" / "joint_pos").rglob("*") if p.is_file() and p.name[0].isdigit())
    stored[-1].unlink()  # the last chunk (or shard): frames of episode 2
    ds = Dataset(path)
    with pytest.raises(CorruptDatasetError, match="is missing"):
        ds["joint_pos"][:]
    with pytest.raises(CorruptDatasetError, match="is missing"):
        ds.episode(2)


def test_a_checksum_mismatch_is_corrupt(small_dataset):
    path = small_dataset((5, 3, 7), chunk_frames=4)
    array = zarr.open_array(str(path / "data" / "action"), mode="r+")
    values = array[:]
    values[6] = -1.0  # episode 1, behind the writer's back: its checksum stays
    array[:] = values
    ds = Dataset(path)
    for read in (lambda: ds.episode(1), lambda: ds["action"][5:8], lambda: ds.load("action")):
        with pytest.raises(CorruptDatasetError, match="does not match its checksum in episode 1"):
            read()
    seeds = zarr.open_array(str(path / "meta" / "episode_seed"), mode="r+")
    seeds[0] = 7
    with pytest.raises(CorruptDatasetError, match="episode_seed"):
        Dataset(path).meta("seed")


def test_a_second_writer_is_locked_out(small_dataset, attrs):
    path = small_dataset((3,))
    with EpisodeWriter(path, attrs), pytest.raises(DatasetLockedError, match="locked by another writer"):
        EpisodeWriter(path, attrs)


def test_an_incompatible_append_is_refused(small_dataset, attrs, frame):
    path = small_dataset((3,))
    with pytest.raises(IncompatibleDatasetError, match=r"fps 30 \(given\) != 20 \(stored\)"):
        EpisodeWriter(path, {**attrs, "fps": 30})
    with EpisodeWriter(path, attrs) as writer:
        with pytest.raises(IncompatibleDatasetError, match="frame keys disagree"):
            writer.add_frame({key: value for key, value in frame(1, 0).items() if key != "gripper"})
        with pytest.raises(IncompatibleDatasetError, match="'action' is float64 of shape \\(3,\\)"):
            writer.add_frame({**frame(1, 0), "action": np.zeros(3)})
        writer.add_frame(frame(1, 0))
        writer.save_episode(seed=1, success=True, source=Source.HUMAN, score=1)
        writer.add_frame(frame(2, 0))
        with pytest.raises(IncompatibleDatasetError, match="episode meta 'score' is stored as int64"):
            writer.save_episode(seed=2, success=True, source=Source.HUMAN, score=0.5)
    assert Dataset(path).num_episodes == 2


def test_merging_disagreeing_datasets_is_incompatible(small_dataset, tmp_path, attrs, frame):
    a = small_dataset((3,), name="a.zarr")
    b = tmp_path / "b.zarr"
    with EpisodeWriter(b, {**attrs, "task": "push"}) as writer:
        writer.add_frame(frame(0, 0))
        writer.save_episode(seed=0, success=True, source=Source.EXPERT)
    with pytest.raises(IncompatibleDatasetError, match="cannot merge"):
        merge_datasets([str(a), str(b)], str(tmp_path / "m.zarr"))


@pytest.mark.parametrize("to, module", [("robomimic", "h5py"), ("lerobot", "pyarrow")])
def test_an_export_without_its_dependency_names_the_extra(small_dataset, tmp_path, monkeypatch, capsys, to, module):
    path = small_dataset((3,))
    monkeypatch.setitem(sys.modules, module, None)  # the import fails as if it were not installed
    monkeypatch.setitem(sys.modules, f"{module}.parquet", None)
    with pytest.raises(MissingExtraError) as caught:
        export_dataset(path, to, tmp_path / "out")
    assert caught.value.extra == "interop"
    assert str(caught.value) == f"{module} is missing: exchanging datasets needs pip install 'protege[interop]'"
    copy = pickle.loads(pickle.dumps(caught.value))  # crosses process pools intact
    assert (type(copy), str(copy), copy.extra) == (MissingExtraError, str(caught.value), "interop")
    assert main(["dataset", "export", str(path), "--to", to, str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'protege[interop]'" in err[0], err
    assert not (tmp_path / "out").exists()


def test_the_command_line_reports_each_in_one_line(small_dataset, tmp_path, attrs, capsys):
    missing = tmp_path / "nope.zarr"
    assert main(["dataset", "info", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no dataset at {missing}" in err and "Traceback" not in err, err
    path = small_dataset((3,))
    with EpisodeWriter(path, attrs):
        assert main(["dataset", "repair", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "locked by another writer" in err, err
