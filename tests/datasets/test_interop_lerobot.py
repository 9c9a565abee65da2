"""protege dataset export --to lerobot / import --from lerobot, checked against LeRobotDataset v3.0.

The layout below is restated from LeRobot's own definition (lerobot/datasets/lerobot_dataset.py,
utils.py, compute_stats.py, video_utils.py at v0.4.4), not imported from it:

- meta/info.json: codebase_version "v3.0", robot_type, total_episodes, total_frames, total_tasks,
  chunks_size, data_files_size_in_mb, video_files_size_in_mb, fps (int), splits {"train": "0:N"},
  data_path "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
  video_path "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4", and features
  {name: {dtype, shape, names}}; timestamp float32 (1,), frame_index, episode_index, index and
  task_index int64 (1,); videos dtype "video", shape (H, W, 3), names [height, width, channels] and
  an info block (video.height, video.width, video.codec, video.pix_fmt, video.is_depth_map,
  video.fps, video.channels, has_audio); no "/" in a feature name.
- data parquet: one column per non-video feature; shape (1,) is a scalar column, (n,) a list of n.
- meta/episodes parquet: episode_index, tasks, length, data/chunk_index, data/file_index,
  dataset_from_index, dataset_to_index, videos/<key>/{chunk_index, file_index, from_timestamp,
  to_timestamp}, meta/episodes/{chunk_index, file_index}, stats/<feature>/<stat>.
- meta/stats.json: per feature min, max, mean, std, count, q01, q10, q50, q90, q99; images per
  channel, shape (3, 1, 1), scaled to [0, 1]; count is [frames].
- A video frame is found at from_timestamp + timestamp within tolerance_s = 1e-4.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="the interop extra (pyarrow) is not installed")
pq = pytest.importorskip("pyarrow.parquet", reason="the interop extra (pyarrow) is not installed")
av = pytest.importorskip("av", reason="the interop extra (PyAV) is not installed")

from helpers import assert_same_dataset, psnr  # noqa: E402

from protege.datasets import Dataset  # noqa: E402
from protege.datasets.interop import export_dataset, import_dataset  # noqa: E402
from protege.launch.cli import main  # noqa: E402

STATS = {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
EPISODE_COLUMNS = {"episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
                   "dataset_to_index", "meta/episodes/chunk_index", "meta/episodes/file_index"}
CAMERAS = ("front", "wrist")
PSNR_FLOOR_DB = 28.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "lift.zarr"
    assert main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "3", "--cameras", ",".join(CAMERAS),
                 "--image-size", "64", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def exported(recorded, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lerobot") / "lift_lerobot"
    assert main(["dataset", "export", str(recorded), "--to", "lerobot", str(out), "--task-text", "lift the cube"]) == 0
    return out


def _info(root: Path) -> dict:
    return json.loads((root / "meta/info.json").read_text())


def _episodes(root: Path) -> list[dict]:
    return [row for p in sorted((root / "meta/episodes").glob("chunk-*/file-*.parquet"))
            for row in pq.read_table(p).to_pylist()]


def test_info_json_follows_v30(exported, recorded):
    ds, info = Dataset(recorded), _info(exported)
    assert info["codebase_version"] == "v3.0"
    assert info["robot_type"] == "protege_arm"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, ds.num_frames, 1)
    assert isinstance(info["fps"], int) and info["fps"] == 20
    assert info["splits"] == {"train": "0:3"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert (info["chunks_size"], info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (1000, 100, 200)
    features = info["features"]
    for name in ("timestamp",):
        assert (features[name]["dtype"], features[name]["shape"]) == ("float32", [1])
    for name in ("frame_index", "episode_index", "index", "task_index"):
        assert (features[name]["dtype"], features[name]["shape"]) == ("int64", [1])
    state, env = features["observation.state"], features["observation.environment_state"]
    assert state["dtype"] == env["dtype"] == features["action"]["dtype"] == "float32"
    assert state["names"][:7] == [f"joint_pos.{i}" for i in range(6)] + ["joint_vel.0"]
    assert state["shape"] == [len(state["names"])] == [6 + 6 + 3 + 4 + 1]
    assert env["names"] == [f"object_pos.{i}" for i in range(3)] + [f"object_quat.{i}" for i in range(4)]
    for camera in CAMERAS:
        video = features[f"observation.images.{camera}"]
        assert (video["dtype"], video["shape"], video["names"]) == ("video", [64, 64, 3],
                                                                    ["height", "width", "channels"])
        assert video["info"]["video.codec"] in ("av1", "h264")
        assert video["info"]["video.pix_fmt"] == "yuv420p"
        assert (video["info"]["video.height"], video["info"]["video.width"], video["info"]["video.fps"]) == (64, 64, 20)
        assert video["info"]["video.channels"] == 3 and video["info"]["has_audio"] is False
    # protege's own keys, exact, under their own names (protege.<key> where LeRobot owns the name)
    assert (features["sim_state"]["dtype"], features["intervention"]["dtype"]) == ("float64", "uint8")
    assert features["protege.timestamp"]["dtype"] == features["protege.action"]["dtype"] == "float64"
    assert all("/" not in name and {"dtype", "shape", "names"} <= set(ft) for name, ft in features.items())


def test_data_parquet_columns_and_indices(exported, recorded):
    ds, info = Dataset(recorded), _info(exported)
    table = pq.read_table(exported / "data/chunk-000/file-000.parquet")
    expected = {name for name, ft in info["features"].items() if ft["dtype"] != "video"}
    assert set(table.column_names) == expected
    for name in expected:
        shape, kind = info["features"][name]["shape"], table.schema.field(name).type
        if shape == [1]:
            assert not pa.types.is_list(kind) and not pa.types.is_fixed_size_list(kind), name
        else:
            assert pa.types.is_fixed_size_list(kind) and kind.list_size == shape[0], name
    column = {name: table.column(name).to_numpy() for name in ("index", "episode_index", "frame_index", "timestamp")}
    assert np.array_equal(column["index"], np.arange(ds.num_frames))
    starts = ds.episode_starts
    for e, end in enumerate(ds.episode_ends):
        rows = slice(starts[e], end)
        assert np.all(column["episode_index"][rows] == e)
        assert np.array_equal(column["frame_index"][rows], np.arange(end - starts[e]))
    assert np.allclose(column["timestamp"], column["frame_index"] / 20, atol=1e-6)
    state = np.stack(table.column("observation.state").to_numpy(zero_copy_only=False))
    assert np.array_equal(state[:, :6], ds["joint_pos"][:].astype(np.float32))
    assert np.array_equal(table.column("sim_state").to_pylist(), ds["sim_state"][:].tolist())


def test_episodes_tasks_and_stats(exported, recorded):
    ds, info = Dataset(recorded), _info(exported)
    rows = _episodes(exported)
    assert [row["episode_index"] for row in rows] == [0, 1, 2]
    for row, start, end in zip(rows, ds.episode_starts, ds.episode_ends, strict=True):
        assert EPISODE_COLUMNS <= set(row)
        assert (row["dataset_from_index"], row["dataset_to_index"], row["length"]) == (start, end, end - start)
        assert row["tasks"] == ["lift the cube"]
        for camera in CAMERAS:
            prefix = f"videos/observation.images.{camera}/"
            assert row[prefix + "to_timestamp"] - row[prefix + "from_timestamp"] == pytest.approx((end - start) / 20)
            assert row[prefix + "from_timestamp"] == pytest.approx(start / 20)  # one file: episodes back to back
        for feature in info["features"]:
            assert {f"stats/{feature}/{name}" for name in STATS} <= set(row), feature
    tasks = pq.read_table(exported / "meta/tasks.parquet")
    assert tasks.column("task_index").to_pylist() == [0]
    assert tasks.column("__index_level_0__").to_pylist() == ["lift the cube"]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]

    stats = json.loads((exported / "meta/stats.json").read_text())
    assert set(stats) == set(info["features"])
    for feature, values in stats.items():
        assert set(values) == STATS and values["count"] == [ds.num_frames], feature
        q = [np.asarray(values[name]) for name in ("min", "q01", "q10", "q50", "q90", "q99", "max")]
        assert all(np.all(a <= b + 1e-12) for a, b in zip(q, q[1:])), feature
    state = ds["joint_pos"][:]
    assert np.allclose(stats["observation.state"]["mean"][:6], state.astype(np.float32).mean(0), atol=1e-6)
    assert np.allclose(stats["observation.state"]["q50"][:6], np.quantile(state.astype(np.float32), 0.5, axis=0))
    for camera in CAMERAS:
        image = stats[f"observation.images.{camera}"]
        assert np.asarray(image["mean"]).shape == (3, 1, 1)
        pixels = ds[f"image_{camera}"][:].reshape(-1, 3) / 255.0
        assert np.allclose(np.asarray(image["mean"]).ravel(), pixels.mean(0))
        assert 0.0 <= np.min(image["min"]) and np.max(image["max"]) <= 1.0


def test_videos_decode_with_pyav_at_their_timestamps(exported, recorded):
    ds = Dataset(recorded)
    rows = _episodes(exported)
    for camera in CAMERAS:
        key = f"observation.images.{camera}"
        with av.open(str(exported / f"videos/{key}/chunk-000/file-000.mp4")) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.name in ("libdav1d", "av1", "h264", "libaom-av1"))
            assert (stream.width, stream.height, stream.pix_fmt) == (64, 64, "yuv420p")
            frames = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        assert len(frames) == ds.num_frames
        times = np.array([t for t, _ in frames])
        for row in rows:
            query = row[f"videos/{key}/from_timestamp"] + np.arange(row["length"]) / 20
            nearest = np.abs(times[None, :] - query[:, None]).min(1)
            assert nearest.max() < 1e-4  # LeRobot's tolerance_s
        decoded = np.stack([image for _, image in frames])
        assert psnr(ds[f"image_{camera}"][:], decoded) > PSNR_FLOOR_DB


def test_round_trip_keeps_low_dim_exactly_and_images_within_codec_tolerance(exported, recorded, tmp_path):
    back = tmp_path / "back.zarr"
    assert main(["dataset", "import", str(exported), "--from", "lerobot", "--out", str(back)]) == 0
    assert_same_dataset(recorded, back, psnr_floor_db=PSNR_FLOOR_DB)


def test_files_roll_at_the_size_limits_and_chunks(recorded, tmp_path):
    out = tmp_path / "rolled"
    result = export_dataset(recorded, "lerobot", out, data_file_mb=0.01, video_file_mb=0.005, chunks_size=2,
                            progress=False)
    assert result["data_files"] == 3 and min(result["video_files"].values()) >= 2
    assert (out / "data/chunk-001/file-000.parquet").is_file()
    rows = _episodes(out)
    for row in rows:  # every episode lies whole in the file its row names
        path = out / _info(out)["data_path"].format(chunk_index=row["data/chunk_index"],
                                                    file_index=row["data/file_index"])
        episode = pq.read_table(path).column("episode_index").to_numpy()
        assert int(np.sum(episode == row["episode_index"])) == row["length"]
    back = tmp_path / "back.zarr"
    import_dataset(out, "lerobot", back, progress=False)
    assert_same_dataset(recorded, back, psnr_floor_db=PSNR_FLOOR_DB)


def test_state_keys_are_chosen_on_the_command_line(recorded, tmp_path):
    out = tmp_path / "chosen"
    assert main(["dataset", "export", str(recorded), "--to", "lerobot", str(out), "--state-keys", "ee_pos,gripper",
                 "--env-state-keys", ""]) == 0
    features = _info(out)["features"]
    assert features["observation.state"]["names"] == ["ee_pos.0", "ee_pos.1", "ee_pos.2", "gripper"]
    assert "observation.environment_state" not in features
    assert "object_pos" in features  # kept, under its own name


def test_foreign_dataset_imports_and_states_mode_says_what_is_missing(exported, tmp_path, capsys):
    foreign = tmp_path / "foreign"
    shutil.copytree(exported, foreign)
    (foreign / "meta/protege.json").unlink()  # as if LeRobot had written it: no protege keys, no sim state
    info = _info(foreign)
    lerobot = {"action", "timestamp", "frame_index", "episode_index", "index", "task_index"}
    info["features"] = {k: v for k, v in info["features"].items() if k in lerobot or k.startswith("observation.")}
    (foreign / "meta/info.json").write_text(json.dumps(info))
    data = foreign / "data/chunk-000/file-000.parquet"
    table = pq.read_table(data)
    pq.write_table(table.select([name for name in table.column_names if name in info["features"]]), data)
    out = tmp_path / "foreign.zarr"
    assert main(["dataset", "import", str(foreign), "--from", "lerobot", "--out", str(out)]) == 0
    assert "no simulator state" in capsys.readouterr().out
    ds = Dataset(out)
    assert {"state", "environment_state", "action", "timestamp", "image_front", "image_wrist"} <= set(ds.keys)
    assert ds.dtype("state") == np.float32 and ds.shape("state")[1:] == (20,)
    assert ds.attrs["task"] == "lift the cube" and ds.attrs["cameras"] == list(CAMERAS)
    assert main(["replay", str(out), "--episode", "0", "--mode", "states"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sim_state" in err[0]


def test_bad_input_gets_one_line_and_writes_nothing(exported, recorded, tmp_path, capsys):
    before = sorted(tmp_path.iterdir())
    not_lerobot = tmp_path / "plain"
    not_lerobot.mkdir()
    old = tmp_path / "old"
    (old / "meta").mkdir(parents=True)
    (old / "meta/info.json").write_text(json.dumps({"codebase_version": "v2.1", "fps": 30, "features": {}}))
    cases = [
        (["dataset", "import", str(not_lerobot), "--from", "lerobot", "--out", str(tmp_path / "a.zarr")],
         "no meta/info.json"),
        (["dataset", "import", str(old), "--from", "lerobot", "--out", str(tmp_path / "b.zarr")],
         "convert_dataset_v21_to_v30"),
        (["dataset", "export", str(recorded), "--to", "lerobot", str(exported)], "already exists"),
        (["dataset", "import", str(exported), "--from", "lerobot", "--out", str(recorded)], "already exists"),
        (["dataset", "export", str(recorded), "--to", "lerobot", str(tmp_path / "c"), "--state-keys", "nope"], "nope"),
    ]
    for argv, words in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert sorted(tmp_path.iterdir()) == sorted([*before, not_lerobot, old])


def test_missing_extra_names_the_install(recorded, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main(["dataset", "export", str(recorded), "--to", "lerobot", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'protege[interop]'" in err[0]
    assert not (tmp_path / "x").exists()


def test_lerobot_loads_the_export(exported, recorded):
    """Optional: LeRobot's own loader (needs lerobot 0.4.4 in its own venv; see the README)."""
    lerobot_dataset = pytest.importorskip("lerobot.datasets.lerobot_dataset", reason="lerobot is not installed")
    ds = Dataset(recorded)
    loaded = lerobot_dataset.LeRobotDataset(
        "protege/lift", root=exported, video_backend="pyav",  # torchcodec needs a system FFmpeg
        delta_timestamps={"action": [0.0, 0.05, 0.1], "observation.images.front": [-0.05, 0.0]},
    )
    assert len(loaded) == ds.num_frames and loaded.num_episodes == 3
    item = loaded[5]
    assert {"observation.state", "observation.environment_state", "action", "observation.images.front",
            "observation.images.wrist", "timestamp", "task", "sim_state"} <= set(item)
    assert tuple(item["observation.state"].shape) == (20,)
    assert tuple(item["observation.images.wrist"].shape) == (3, 64, 64)
    assert tuple(item["action"].shape) == (3, 7) and tuple(item["observation.images.front"].shape) == (2, 3, 64, 64)
    assert np.allclose(item["action"].numpy(), ds["action"][5:8].astype(np.float32))
    last = loaded[int(ds.episode_ends[0]) - 1]  # the window runs past the episode: padded
    assert last["action_is_pad"].tolist() == [False, True, True]
    assert item["task"] == "lift the cube"


def test_svt_av1_logs_errors_only_and_leaves_the_environment_alone(tmp_path, monkeypatch, capfd):
    from protege.datasets.errors import DatasetError
    from protege.datasets.interop.video import VideoFile, pick_encoder

    try:
        pick_encoder("libsvtav1")
    except DatasetError:
        pytest.skip("PyAV's FFmpeg has no SVT-AV1 encoder")
    monkeypatch.delenv("SVT_LOG", raising=False)
    video = VideoFile(tmp_path / "av1.mp4", 20, 64, 64, "libsvtav1")
    video.write(np.zeros((3, 64, 64, 3), np.uint8))
    video.close()
    assert "SVT_LOG" not in os.environ
    assert "Svt[info]" not in capfd.readouterr().err  # the encoder's configuration, printed when it logs info
