"""Bad input ends in one-line errors naming the problem."""

from __future__ import annotations

import json
import re

import pytest

from protege.launch import cli
from protege.policies.checkpoint import load_policy, read_meta
from protege.policies.errors import CorruptCheckpointError, IncompatiblePolicyError, PolicyError, RunNotFoundError
from protege.policies.trainer import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, lowdim_dataset):
    from protege.policies.config import TrainConfig
    from protege.policies.mlp.config import MLPConfig

    out = tmp_path_factory.mktemp("runs") / "mlp"
    train(TrainConfig(dataset=lowdim_dataset, out=str(out), steps=3, progress=False), MLPConfig(hidden=[16]))
    return out


def _protege(monkeypatch, *argv: str) -> int:
    monkeypatch.setitem(cli.COMMANDS, "train", ("protege.launch.cmd_train", "train a policy"))
    return cli.main(["train", *argv])


def test_dataset_without_the_keys_a_policy_needs(lowdim_dataset, tmp_path, tiny_config, train_config):
    with pytest.raises(PolicyError, match="inputs=vision needs a dataset with cameras"):
        train(train_config(lowdim_dataset, tmp_path / "a", "cnn"), tiny_config("cnn"))
    with pytest.raises(PolicyError, match="cnn needs an image_<camera> observation"):
        train(train_config(lowdim_dataset, tmp_path / "a", "cnn"), tiny_config("cnn", obs_keys=["ee_pos"]))
    with pytest.raises(PolicyError, match="lacks key\\(s\\) goal_pos needed by policy mlp"):
        train(train_config(lowdim_dataset, tmp_path / "b", "mlp"), tiny_config("mlp", obs_keys=["ee_pos", "goal_pos"]))


def test_checkpoint_that_does_not_fit_the_env(run_dir):
    meta = read_meta(run_dir)
    shapes = meta.spec.obs_shapes
    meta.check_fits(shapes, 7)
    with pytest.raises(IncompatiblePolicyError, match="checkpoint predicts 7-D actions, the env takes 8-D"):
        meta.check_fits(shapes, 8)
    expected = r"observation 'ee_pos': checkpoint expects shape \(3,\), the env gives \(4,\)"
    with pytest.raises(IncompatiblePolicyError, match=expected):
        meta.check_fits({**shapes, "ee_pos": (4,)}, 7)
    with pytest.raises(IncompatiblePolicyError, match="needs observation 'object_pos'"):
        meta.check_fits({k: v for k, v in shapes.items() if k != "object_pos"}, 7)


def test_corrupt_or_missing_checkpoint_files(run_dir, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    weights = broken / "ema.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CorruptCheckpointError, match="corrupt checkpoint .*ema.safetensors") as info:
        load_policy(broken)
    assert "\n" not in str(info.value)
    (broken / "ema.safetensors").unlink()
    with pytest.raises(CorruptCheckpointError, match="ema.safetensors is missing"):
        load_policy(broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(CorruptCheckpointError, match="corrupt .*config.json"):
        load_policy(broken)
    with pytest.raises(RunNotFoundError, match="not a protege run: no config.json"):
        load_policy(tmp_path / "nowhere")


def test_weights_of_another_shape(run_dir, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    meta = json.loads((other / "config.json").read_text())
    meta["policy_config"]["hidden"] = [32]
    (other / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptCheckpointError, match="has shape \\(16, .*\\), expected \\(32, "):
        load_policy(other)


def test_command_line_errors_are_one_line(monkeypatch, capsys, lowdim_dataset, run_dir, tmp_path):
    assert _protege(monkeypatch, "--dataset", lowdim_dataset, "--out", str(tmp_path / "r"), "--set", "bogus=1") == 2
    err = capsys.readouterr().err
    assert err.startswith("protege train: error: unknown config key 'bogus'") and err.count("\n") == 1
    assert _protege(monkeypatch, "--dataset", lowdim_dataset, "--policy", "cnn", "--out", str(tmp_path / "r")) == 2
    assert "inputs=vision needs a dataset with cameras" in capsys.readouterr().err
    assert _protege(monkeypatch, "--resume", str(tmp_path / "missing")) == 2
    assert "not a protege run" in capsys.readouterr().err


def test_command_line_trains_and_resumes(monkeypatch, capsys, lowdim_dataset, tmp_path):
    out = str(tmp_path / "r")
    common = ["--no-progress", "--json", "--set", "hidden=16", "--set", "val_every=5"]
    first = ["--dataset", lowdim_dataset, "--policy", "mlp", "--out", out, "--steps", "10"]
    assert _protege(monkeypatch, *first, *common) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["steps"] == 10
    assert _protege(monkeypatch, "--resume", out, "--steps", "15", "--json") == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["steps"] == 15 and result["policy"] == "mlp"


@pytest.mark.parametrize("policy,setting,message", [
    ("mlp", "lr=nan", "lr must be a positive number, got nan"),
    ("mlp", "lr=-1", "lr must be a positive number, got -1"),
    ("mlp", "dropout=2", r"dropout must be in \[0, 1\), got 2"),
    ("mlp", "hidden=0", "hidden must list widths of at least 1"),
    ("mlp", "hidden=64,0", "hidden must list widths of at least 1"),
    ("mlp", "weight_decay=-0.1", "weight_decay must be >= 0"),
    ("mlp", "color_jitter=-0.1", r"color_jitter must be in \[0, 1\), got -0.1"),
    ("mlp", "color_jitter=1", r"color_jitter must be in \[0, 1\), got 1"),
    ("diffusion", "kernel_size=0", "kernel_size must be at least 1, got 0"),
    ("diffusion", "kernel_size=4", "kernel_size=4 must be odd"),
    ("diffusion", "n_groups=7", r"n_groups=7 must divide every width of down_dims=\[64, 128, 256\]"),
    ("diffusion", "train_timesteps=0", "train_timesteps must be at least 1"),
    ("diffusion", "inference_steps=0", "inference_steps must be at least 1"),
    ("diffusion", "inference_steps=101", "inference_steps=101 must be at most train_timesteps=100"),
    ("diffusion", "step_embed_dim=3", "step_embed_dim=3 must be even and at least 4"),
    ("act", "dim_model=0", "dim_model must be at least 1"),
    ("act", "n_heads=3", "dim_model=256 must be divisible by n_heads=3"),
    ("act", "n_encoder_layers=0", "n_encoder_layers must be at least 1"),
    ("act", "kl_weight=-1", "kl_weight must be a number >= 0"),
    ("act", "temporal_ensemble_coeff=-1", "temporal_ensemble_coeff must be a number >= 0"),
    ("act", "image_grid=0", r"image_grid must be a whole number >= 1 \(tokens per side\), got 0"),
])
def test_settings_no_training_can_use_are_one_line(policy, setting, message, monkeypatch, capsys, lowdim_dataset,
                                                   tmp_path):
    assert _protege(monkeypatch, "--dataset", lowdim_dataset, "--policy", policy, "--out", str(tmp_path / "r"),
                    "--set", setting) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err) and not (tmp_path / "r").exists()
