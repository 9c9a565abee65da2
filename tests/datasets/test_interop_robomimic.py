"""protege dataset export --to robomimic / import --from robomimic, checked against robomimic's HDF5 layout.

Restated from robomimic's docs (datasets/overview.md) and SequenceDataset (robomimic/utils/dataset.py),
not imported: ``data`` with attrs ``total`` (samples) and ``env_args`` (JSON with env_name, env_type,
env_kwargs); ``data/demo_<i>`` with attr ``num_samples`` and datasets ``actions`` (N, A), ``states``
(N, D), ``rewards`` (N,), ``dones`` (N,), groups ``obs`` and ``next_obs`` holding one dataset per key
(images uint8 (N, H, W, C)); ``mask/<filter>`` holding demo names as bytes (``train``, ``valid``).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py", reason="the interop extra (h5py) is not installed")

from helpers import assert_same_dataset  # noqa: E402

from protege.datasets import Dataset  # noqa: E402
from protege.launch.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "lift.zarr"
    assert main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "3", "--cameras", "front,wrist",
                 "--image-size", "64", "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def exported(recorded, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("robomimic") / "lift.hdf5"
    assert main(["dataset", "export", str(recorded), "--to", "robomimic", str(out)]) == 0
    return out


def test_layout_follows_robomimic(exported, recorded):
    ds = Dataset(recorded)
    with h5py.File(exported, "r") as f:
        data = f["data"]
        assert data.attrs["total"] == ds.num_frames
        env_args = json.loads(data.attrs["env_args"])
        assert set(env_args) == {"env_name", "env_type", "env_kwargs"} and env_args["env_name"] == "protege/Lift-v0"
        assert sorted(data, key=lambda n: int(n[5:])) == ["demo_0", "demo_1", "demo_2"]
        obs_keys = {"joint_pos", "joint_vel", "ee_pos", "ee_quat", "gripper", "object_pos", "object_quat",
                    "image_front", "image_wrist"}
        for e in range(3):
            demo, frames = data[f"demo_{e}"], ds.episode_slice(e)
            n = frames.stop - frames.start
            assert demo.attrs["num_samples"] == n
            assert set(demo["obs"]) == set(demo["next_obs"]) == obs_keys
            assert demo["actions"].shape == (n, 7) and demo["states"].shape == (n, ds.shape("sim_state")[1])
            assert demo["rewards"].shape == demo["dones"].shape == (n,)
            assert demo["dones"][-1] == 1 and demo["dones"][:-1].sum() == 0
            image = demo["obs/image_front"]
            assert image.dtype == np.uint8 and image.shape == (n, 64, 64, 3)
            assert np.array_equal(demo["next_obs/joint_pos"][:-1], demo["obs/joint_pos"][1:])
            assert np.array_equal(demo["obs/joint_pos"][()], ds["joint_pos"][frames])
            assert np.array_equal(demo["states"][()], ds["sim_state"][frames])
        train = [name.decode() for name in f["mask/train"][()]]
        valid = [name.decode() for name in f["mask/valid"][()]]
        assert sorted(train + valid) == ["demo_0", "demo_1", "demo_2"] and valid and not set(train) & set(valid)


def test_round_trip_is_exact(exported, recorded, tmp_path):
    back = tmp_path / "back.zarr"
    assert main(["dataset", "import", str(exported), "--from", "robomimic", "--out", str(back)]) == 0
    assert_same_dataset(recorded, back)


def test_foreign_file_imports_with_robomimic_names(tmp_path, capsys):
    src = tmp_path / "other.hdf5"
    rng = np.random.default_rng(0)
    with h5py.File(src, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "env_type": 1,
                                             "env_kwargs": {"robots": ["Panda"], "control_freq": 20}})
        for i, n in enumerate((5, 4)):
            demo = data.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = n
            demo.create_dataset("obs/robot0_eef_pos", data=rng.standard_normal((n, 3)))
            demo.create_dataset("obs/agentview_image", data=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8))
            demo.create_dataset("actions", data=rng.standard_normal((n, 7)))
            demo.create_dataset("states", data=rng.standard_normal((n, 9)))
            demo.create_dataset("rewards", data=np.eye(n)[-1])
            demo.create_dataset("dones", data=np.eye(n, dtype=np.int64)[-1])
    out = tmp_path / "other.zarr"
    assert main(["dataset", "import", str(src), "--from", "robomimic", "--out", str(out)]) == 0
    assert "no simulator state" in capsys.readouterr().out
    ds = Dataset(out)
    assert set(ds.keys) == {"robot0_eef_pos", "image_agentview", "action", "states", "reward", "timestamp"}
    assert ds.attrs["robot"] == "Panda" and ds.attrs["task"] == "Lift" and ds.attrs["cameras"] == ["agentview"]
    assert list(ds.episode_ends) == [5, 9] and ds.meta("success").all()


def test_bad_input_gets_one_line_and_writes_nothing(exported, recorded, tmp_path, capsys):
    no_data = tmp_path / "empty.hdf5"
    with h5py.File(no_data, "w") as f:
        f.create_group("mask")
    before = sorted(tmp_path.iterdir())
    cases = [
        (["dataset", "import", str(no_data), "--from", "robomimic", "--out", str(tmp_path / "a.zarr")], "no data/"),
        (["dataset", "import", str(recorded), "--from", "robomimic", "--out", str(tmp_path / "b.zarr")], "not an HDF5"),
        (["dataset", "export", str(recorded), "--to", "robomimic", str(exported)], "already exists"),
        (["dataset", "export", str(recorded), "--to", "robomimic", str(tmp_path / "c.hdf5"), "--repo-id", "x"],
         "only with --to lerobot"),
    ]
    for argv, words in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert sorted(tmp_path.iterdir()) == before


def test_robomimic_sequence_dataset_loads_the_export(exported):
    """Optional: robomimic's own SequenceDataset, where robomimic imports."""
    dataset_module = pytest.importorskip("robomimic.utils.dataset", reason="robomimic is not installed")
    obs_utils = pytest.importorskip("robomimic.utils.obs_utils", reason="robomimic is not installed")
    obs_utils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": ["joint_pos", "ee_pos"], "rgb": ["image_front"]}})
    newer = {"action_keys": ("actions",), "action_config": {"actions": {"normalization": None}}}  # robomimic >= 0.4
    accepted = inspect.signature(dataset_module.SequenceDataset).parameters
    loaded = dataset_module.SequenceDataset(
        hdf5_path=str(exported), obs_keys=("joint_pos", "ee_pos", "image_front"),
        dataset_keys=("actions", "rewards", "dones"), seq_length=4, filter_by_attribute="train",
        **{name: value for name, value in newer.items() if name in accepted},
    )
    item = loaded[0]
    # robomimic 0.3 returns observations for the whole sequence, later versions the stacked frame only
    assert item["actions"].shape == (4, 7) and item["obs"]["joint_pos"].shape in ((1, 6), (4, 6))
