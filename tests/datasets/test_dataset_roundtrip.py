"""Writing and reading back: every key, per-episode meta, attrs, both zarr formats, fsspec stores."""

from __future__ import annotations

import json
import shutil
import uuid

import numpy as np
import pytest
import zarr

from protege.datasets import SCHEMA_VERSION, Dataset, DatasetError, Episode, EpisodeWriter, Source
from protege.datasets.lock import lock_holder
from protege.datasets.storage import time_chunk_frames
from protege.launch.cli import main

VALID_ATTRS = {"fps": 20, "robot": "r", "task": "t", "action_space": "joint"}


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_every_key_round_trips(tmp_path, small_dataset, expected_episode, zarr_format):
    lengths = (5, 1, 7)
    ds = Dataset(small_dataset(lengths, zarr_format))
    assert ds.zarr_format == zarr_format
    assert ds.num_episodes == 3 and ds.num_frames == 13
    np.testing.assert_array_equal(ds.episode_ends, [5, 6, 13])
    assert ds.episode_ends.dtype == np.int64
    expected_keys = sorted(expected_episode(0, 1))
    assert ds.keys == expected_keys
    for i, length in enumerate(lengths):
        expected = expected_episode(i, length)
        episode = ds.episode(i)
        assert isinstance(episode, Episode) and len(episode) == length
        assert (episode.seed, episode.success, episode.source, episode.meta) == (100 + i, i % 2 == 0, Source(i), {})
        got = episode.data
        for key in expected_keys:
            assert got[key].dtype == ds.dtype(key)
            np.testing.assert_array_equal(got[key], expected[key].astype(ds.dtype(key)), err_msg=key)
    assert ds.dtype("timestamp") == np.float64 and ds.dtype("intervention") == np.uint8
    assert ds.dtype("sim_state") == np.float64 and ds.dtype("image_front") == np.uint8
    assert ds.shape("image_wrist") == (13, 8, 8, 3)
    np.testing.assert_array_equal(ds.meta("seed"), [100, 101, 102])
    np.testing.assert_array_equal(ds.meta("success"), [True, False, True])
    np.testing.assert_array_equal(ds.meta("source"), [Source.HUMAN, Source.EXPERT, Source.POLICY])
    timestamps = [expected_episode(i, n)["timestamp"] for i, n in enumerate(lengths)]
    durations = [ts[-1] - ts[0] for ts in timestamps]
    np.testing.assert_allclose(ds.meta("duration"), durations)
    assert ds.attrs["schema_version"] == SCHEMA_VERSION and ds.attrs["fps"] == 20
    assert ds.attrs["source_codes"] == {"human": 0, "expert": 1, "policy": 2, "intervention": 3}
    assert ds.attrs["cameras"] == ["front", "wrist"] and ds.attrs["action_scale"][3] == 0.05


def test_frame_array_slicing_stays_within_committed_frames(small_dataset):
    ds = Dataset(small_dataset((5, 3)))
    action = ds["action"]
    assert action.shape == (8, 7) and len(action) == 8
    np.testing.assert_array_equal(action[-1], ds.episode(1).data["action"][-1])
    np.testing.assert_array_equal(action[[7, 0, 7]][:, 0], [1002.0, 0.0, 1002.0])
    np.testing.assert_array_equal(action[2:4, 1], [3.0, 4.0])
    np.testing.assert_array_equal(np.asarray(action), action[:])
    assert ds.episode_slice(1) == slice(5, 8) and ds.episode_slice(-1) == slice(5, 8)
    with pytest.raises(IndexError):
        action[8]
    with pytest.raises(DatasetError, match="out of range"):
        ds.episode(2)
    with pytest.raises(DatasetError, match="no data key 'nope'"):
        ds["nope"]


def test_extra_meta_is_filled_for_episodes_without_it(tmp_path, attrs, frame):
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path, attrs) as writer:
        for i in range(3):
            writer.add_frame(frame(i, 0))
            extra = {"parent_episode": 0, "parent_frame": 57, "score": 0.5} if i == 1 else {}
            assert writer.save_episode(seed=i, success=True, source=Source.INTERVENTION, **extra) == i
    ds = Dataset(path)
    np.testing.assert_array_equal(ds.meta("parent_episode"), [-1, 0, -1])
    np.testing.assert_array_equal(ds.meta("episode_parent_frame"), [-1, 57, -1])
    np.testing.assert_array_equal(ds.meta("score"), [np.nan, 0.5, np.nan])
    assert ds.meta("duration")[0] == 0.0
    assert ds.meta_names == ["duration", "parent_episode", "parent_frame", "score", "seed", "source", "success"]


def test_read_episodes_append_back_unchanged(tmp_path, attrs, frame):
    """The reader returns the Episode the writer takes: copied through it, every array and value stays."""
    source, copy = tmp_path / "a.zarr", tmp_path / "b.zarr"
    with EpisodeWriter(source, attrs) as writer:
        for i in range(3):
            writer.add_frame(frame(i, 0))
            writer.add_frame(frame(i, 1))
            extra = {"parent_episode": 4, "score": 0.25} if i == 1 else {}
            writer.save_episode(seed=7 + i, success=i == 1, source=Source.INTERVENTION, **extra)
    ds = Dataset(source)
    episode = ds.episode(1)
    assert episode.meta == {"parent_episode": 4, "score": 0.25} and ds.episode(0).meta == {}
    assert episode.source is Source.INTERVENTION and episode.duration == ds.meta("duration")[1]
    with EpisodeWriter(copy, attrs) as writer:
        for i in range(ds.num_episodes):
            writer.add_episode(ds.episode(i))
    back = Dataset(copy)
    assert back.meta_names == ds.meta_names
    for name in ds.meta_names:
        np.testing.assert_array_equal(back.meta(name), ds.meta(name), err_msg=name)
    for key in ds.keys:
        np.testing.assert_array_equal(back[key][:], ds[key][:], err_msg=key)
    only_action = ds.episode(2, ["action"])
    assert list(only_action.data) == ["action"] and len(only_action) == 2


def test_duration_falls_back_to_frames_over_fps(tmp_path, attrs):
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path, {**attrs, "cameras": []}) as writer:
        for _ in range(10):
            writer.add_frame({"action": np.zeros(2, np.float32)})
        writer.save_episode(seed=0, success=False, source=Source.POLICY)
    assert Dataset(path).meta("duration")[0] == pytest.approx(0.5)


def test_appending_reopens_and_checks_attrs(tmp_path, attrs, small_dataset, write, snapshot):
    path = small_dataset((4, 4))
    write(path, (6,), first_episode=2)
    ds = Dataset(path)
    assert ds.num_episodes == 3 and ds.num_frames == 14
    assert ds.episode(2).data["action"][0, 0] == 2000.0
    before = snapshot(path)
    for change in ({"fps": 30}, {"task": "push"}, {"robot": "panda"}, {"action_space": "joint"}):
        with pytest.raises(DatasetError, match=f"{next(iter(change))} .* != "):
            EpisodeWriter(path, {**attrs, **change})
    assert snapshot(path) == before


def test_background_writer_commits_in_order(tmp_path, attrs, frame, expected_episode):
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path, attrs, background=True) as writer:
        for i in range(5):
            for t in range(3 + i):
                writer.add_frame(frame(i, t))
            assert writer.save_episode(seed=i, success=True, source=Source.EXPERT) == i
        writer.flush()
        assert Dataset(path).num_episodes == 5
    ds = Dataset(path)
    for i in range(5):
        np.testing.assert_array_equal(ds.episode(i).data["image_front"], expected_episode(i, 3 + i)["image_front"])


def test_background_errors_surface_on_the_next_call(tmp_path, attrs, frame):
    path = tmp_path / "d.zarr"
    writer = EpisodeWriter(path, attrs, background=True)
    shutil.rmtree(path / "data")
    (path / "data").write_text("not a directory")  # every chunk write now fails
    writer.add_frame(frame(0, 0))
    writer.save_episode(seed=0, success=True, source=Source.HUMAN)
    with pytest.raises(DatasetError, match=r"saving an episode .* failed"):
        writer.flush()
    with pytest.raises(DatasetError, match="failed earlier"):
        writer.add_frame(frame(0, 1))
    writer.close()  # raised once already: closing (as a `with` block does on the error) does not raise another
    assert lock_holder(str(path)) is None  # the lock was released


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f: f.pop("joint_pos"), r"missing \['joint_pos'\]"),
        (lambda f: f.update(extra=1.0), r"unexpected \['extra'\]"),
        (lambda f: f.update(joint_pos=np.zeros(5, np.float32)), "joint_pos.*shape"),
        (lambda f: f.update(joint_pos=np.zeros(6, np.float64)), "joint_pos.*float64"),
        (lambda f: f.update(image_front=np.zeros((8, 8, 3), np.float32)), "image_front"),
    ],
)
def test_frames_that_disagree_with_the_first_are_refused(tmp_path, attrs, frame, change, message):
    with EpisodeWriter(tmp_path / "d.zarr", attrs) as writer:
        writer.add_frame(frame(0, 0))
        bad = frame(0, 1)
        change(bad)
        with pytest.raises(DatasetError, match=message):
            writer.add_frame(bad)
        writer.add_frame(frame(0, 1))
        writer.save_episode(seed=0, success=True, source=Source.HUMAN)
    assert Dataset(tmp_path / "d.zarr").num_frames == 2


@pytest.mark.parametrize(
    "first, message",
    [
        ({"joint_pos": np.zeros(3, np.float32)}, "'action'"),
        ({"action": np.zeros(2), "image_front": np.zeros((4, 4), np.uint8)}, "HxWx3"),
        ({"action": np.zeros(2), "image_front": np.zeros((4, 4, 3), np.uint16)}, "uint8"),
        ({"action": np.zeros(2), "bad/key": 1.0}, "invalid data key"),
    ],
)
def test_first_frame_must_follow_the_contract(tmp_path, attrs, first, message):
    writer = EpisodeWriter(tmp_path / "d.zarr", {**attrs, "cameras": []})
    with writer, pytest.raises(DatasetError, match=message):
        writer.add_frame(first)


def test_listed_cameras_need_image_keys(tmp_path, attrs):
    with EpisodeWriter(tmp_path / "d.zarr", attrs) as writer, pytest.raises(DatasetError, match="wrist"):
        writer.add_frame({"action": np.zeros(2), "image_front": np.zeros((4, 4, 3), np.uint8)})


@pytest.mark.parametrize(
    "bad_attrs, message",
    [
        ({"fps": 20, "robot": "r", "task": "t"}, "lack action_space"),
        ({"fps": 0, "robot": "r", "task": "t", "action_space": "joint"}, "fps must be a positive number"),
        ({**VALID_ATTRS, "schema_version": 9}, "may not set schema_version"),
        ({**VALID_ATTRS, "x": object()}, "not JSON"),
    ],
)
def test_bad_attrs_write_nothing(tmp_path, bad_attrs, message):
    with pytest.raises(DatasetError, match=message):
        EpisodeWriter(tmp_path / "d.zarr", bad_attrs)
    assert list(tmp_path.iterdir()) == []


def test_save_needs_frames_and_a_known_source(tmp_path, attrs, frame):
    with EpisodeWriter(tmp_path / "d.zarr", attrs) as writer:
        with pytest.raises(DatasetError, match="no frames"):
            writer.save_episode(seed=0, success=True, source=Source.HUMAN)
        writer.add_frame(frame(0, 0))
        with pytest.raises(DatasetError, match="unknown source"):
            writer.save_episode(seed=0, success=True, source=9)
        assert writer.save_episode(seed=0, success=True, source=Source.HUMAN, parent_episode=3) == 0  # frames kept
        writer.add_frame(frame(1, 0))
        with pytest.raises(DatasetError, match="parent_episode' is stored as int64"):
            writer.save_episode(seed=1, success=True, source=Source.HUMAN, parent_episode=2.5)
        writer.discard_episode()
    assert Dataset(tmp_path / "d.zarr").num_frames == 1


def test_format2_layout_is_what_replaybuffer_reads(small_dataset):
    path = small_dataset((5, 3))
    root = zarr.open_group(str(path), mode="r")
    ends = root["meta"]["episode_ends"][:]
    for _, array in root["data"].arrays():
        assert array.shape[0] == ends[-1]
        assert array.chunks[1:] == array.shape[1:]
    low_dim = json.loads((path / "data" / "action" / ".zarray").read_text())
    image = json.loads((path / "data" / "image_front" / ".zarray").read_text())
    assert low_dim["zarr_format"] == 2 and low_dim["dimension_separator"] == "."
    assert low_dim["compressor"] == {"id": "blosc", "cname": "zstd", "clevel": 5, "shuffle": 2, "blocksize": 0}
    assert image["compressor"]["shuffle"] == 1
    assert json.loads((path / "meta" / "episode_ends" / ".zarray").read_text())["dtype"] == "<i8"


def test_default_chunks_give_images_one_frame_and_low_dim_keys_about_256_kib():
    assert time_chunk_frames((128, 128, 3), np.dtype(np.uint8), None) == 1
    assert time_chunk_frames((10,), np.dtype(np.float32), None) == 6553
    assert time_chunk_frames((), np.dtype(np.float64), None) == 8192
    assert time_chunk_frames((128, 128, 3), np.dtype(np.uint8), 50) == 50


def test_format3_uses_sharding(small_dataset):
    path = small_dataset((5, 3), zarr_format=3)
    meta = json.loads((path / "data" / "image_front" / "zarr.json").read_text())
    assert meta["zarr_format"] == 3
    assert meta["codecs"][0]["name"] == "sharding_indexed"
    inner = [c["name"] for c in meta["codecs"][0]["configuration"]["codecs"]]
    assert "blosc" in inner


def test_fsspec_memory_store_round_trip(attrs, frame, expected_episode):
    url = f"memory://protege-tests/{uuid.uuid4().hex}.zarr"
    with EpisodeWriter(url, attrs) as writer:
        for t in range(4):
            writer.add_frame(frame(0, t))
        writer.save_episode(seed=1, success=True, source=Source.HUMAN)
        with pytest.raises(DatasetError, match=r"locked by another writer \(pid \d+"):
            EpisodeWriter(url, attrs)
    with EpisodeWriter(url, attrs) as writer:  # released on close
        writer.add_frame(frame(1, 0))
        writer.save_episode(seed=2, success=False, source=Source.POLICY)
    ds = Dataset(url)
    assert ds.num_episodes == 2
    np.testing.assert_array_equal(ds.episode(0).data["image_wrist"], expected_episode(0, 4)["image_wrist"])
    assert main(["dataset", "validate", url]) == 0
    assert main(["dataset", "info", url]) == 0


def test_missing_dataset_is_a_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="no dataset at"):
        Dataset(tmp_path / "absent.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DatasetError, match="no zarr dataset"):
        Dataset(tmp_path / "plain")


def test_add_episode_commits_whole_arrays_and_checks_them(tmp_path, attrs, frame, expected_episode):
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path, attrs) as writer:
        assert writer.add_episode(Episode(expected_episode(0, 4), 5, True, Source.EXPERT, {"score": 1.5})) == 0
        short = {**expected_episode(1, 3), "action": np.zeros((2, 7), np.float32)}
        with pytest.raises(DatasetError, match="same, non-zero number of frames"):
            writer.add_episode(Episode(short, seed=6, success=True, source=Source.EXPERT))
        with pytest.raises(DatasetError, match="intervention"):
            writer.add_frame({**frame(1, 0), "intervention": 300})
        writer.add_frame(frame(1, 0))
        with pytest.raises(DatasetError, match="save or discard"):
            writer.add_episode(Episode(expected_episode(1, 3), seed=6, success=True, source=Source.EXPERT))
    ds = Dataset(path)
    assert ds.num_episodes == 1 and ds.meta("score").tolist() == [1.5]
    np.testing.assert_array_equal(ds.episode(0).data["sim_state"], expected_episode(0, 4)["sim_state"])
