"""Trainer mechanics: resume, schedule, device-resident batches, run layout, config overrides."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from protege.datasets import Dataset, Episode, EpisodeWriter, SequenceSampler, Source
from protege.policies.cnn.config import CNNConfig
from protege.policies.config import PolicyConfig, TrainConfig, apply_overrides
from protege.policies.data import DeviceLoader, PrefetchLoader, correction_weights
from protege.policies.errors import PolicyError
from protege.policies.mlp.config import MLPConfig
from protege.policies.synthetic import ATTRS
from protege.policies.trainer import lr_factor, train


def test_resume_continues_from_the_saved_step(lowdim_dataset, tmp_path, tiny_config, train_config):
    run = tmp_path / "run"
    train(train_config(lowdim_dataset, run, "mlp", steps=60, save_every=40), tiny_config("mlp"))
    assert json.loads((run / "config.json").read_text())["step"] == 60
    assert sorted(p.name for p in run.iterdir()) == [
        "config.json", "ema.safetensors", "model.safetensors", "optim.safetensors", "stats.json", "tb"]
    assert any((run / "tb").iterdir())

    summary = train(train_config(lowdim_dataset, run, "mlp", steps=100), tiny_config("mlp"), resume=True)
    assert summary.steps == 100
    assert json.loads((run / "config.json").read_text())["step"] == 100


def test_an_interrupted_run_saves_and_resumes(lowdim_dataset, tmp_path, tiny_config, train_config, monkeypatch):
    from protege.policies.data import PrefetchLoader

    real_next, calls = PrefetchLoader.next, []

    def next_until_interrupted(self):
        calls.append(1)
        if len(calls) > 25:
            raise KeyboardInterrupt
        return real_next(self)

    monkeypatch.setattr(PrefetchLoader, "next", next_until_interrupted)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(train_config(lowdim_dataset, run, "mlp", steps=100), tiny_config("mlp"))
    assert json.loads((run / "config.json").read_text())["step"] == 25
    monkeypatch.setattr(PrefetchLoader, "next", real_next)
    assert train(train_config(lowdim_dataset, run, "mlp", steps=40), tiny_config("mlp"), resume=True).steps == 40


def test_a_new_run_refuses_an_existing_run_dir(lowdim_dataset, tmp_path, tiny_config, train_config):
    train(train_config(lowdim_dataset, tmp_path / "run", "mlp", steps=5), tiny_config("mlp"))
    with pytest.raises(PolicyError, match="already holds a run"):
        train(train_config(lowdim_dataset, tmp_path / "run", "mlp", steps=5), tiny_config("mlp"))


def test_warmup_then_cosine():
    assert lr_factor(0, 10, 110, 0.0) == pytest.approx(0.1)
    assert lr_factor(9, 10, 110, 0.0) == pytest.approx(1.0)
    assert lr_factor(60, 10, 110, 0.0) == pytest.approx(0.5)
    assert lr_factor(110, 10, 110, 0.1) == pytest.approx(0.1)


def test_device_loader_matches_the_sampler(lowdim_dataset):
    ds = Dataset(lowdim_dataset)
    keys, episodes = ["ee_pos", "gripper"], np.array([1, 3, 4])
    sampler = SequenceSampler(ds, keys, "action", n_obs_steps=3, horizon=6, episodes=episodes)
    loader = DeviceLoader(ds, keys, 3, 6, episodes, batch_size=4, seed=0, device=torch.device("cpu"))
    assert len(loader) == len(sampler)
    idx = np.array([0, 1, 39, 40, 75, len(sampler) - 1])
    expected, got = sampler.sample(idx), loader.sample(torch.from_numpy(idx))
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key].numpy(), value, err_msg=key)


@pytest.fixture(scope="module")
def mixed_sources(tmp_path_factory) -> Dataset:
    """Demos (60 frames) and on-policy episodes (an intervention of 10 frames, a rollout of 20): the
    ``episode`` key holds each frame's episode id."""
    path = tmp_path_factory.mktemp("mixed") / "mixed.zarr"
    with EpisodeWriter(str(path), attrs=ATTRS) as writer:
        for i, (length, source) in enumerate(((30, Source.EXPERT), (10, Source.INTERVENTION), (20, Source.POLICY),
                                              (30, Source.HUMAN))):
            data = {"episode": np.full((length, 1), i, np.float32), "action": np.zeros((length, 2), np.float32)}
            writer.add_episode(Episode(data, seed=i, success=True, source=source))
    return Dataset(str(path))


def test_correction_share_sets_the_on_policy_part_of_every_batch(mixed_sources):
    episodes = np.arange(4)
    weights = correction_weights(mixed_sources, episodes, 0.8)
    on_policy = np.repeat([False, True, True, False], [30, 10, 20, 30])
    assert weights.sum() == pytest.approx(1.0) and weights[on_policy].sum() == pytest.approx(0.8)
    sampler = SequenceSampler(mixed_sources, ["episode"], episodes=episodes)
    prefetch = PrefetchLoader(sampler, 4096, seed=0, device=torch.device("cpu"), weights=weights)
    device = DeviceLoader(mixed_sources, ["episode"], 1, 1, episodes, 4096, seed=0, device=torch.device("cpu"),
                          weights=weights)
    for loader in (prefetch, device):
        drawn = loader.next()["episode"][:, -1, 0].numpy()
        loader.close()
        assert np.isin(drawn, (1, 2)).mean() == pytest.approx(0.8, abs=0.03)  # a third of the frames, 80% of draws
        assert (drawn == 1).mean() == pytest.approx(0.8 / 3, abs=0.03)  # alike within the on-policy part
    assert correction_weights(mixed_sources, episodes, None) is None


def test_correction_share_needs_both_kinds_of_episode(mixed_sources):
    with pytest.raises(PolicyError, match="has 60 and 0 frames"):
        correction_weights(mixed_sources, np.array([0, 3]), 0.5)
    with pytest.raises(PolicyError, match=r"correction_share must be in \(0, 1\)"):
        correction_weights(mixed_sources, np.arange(4), 1.0)


def test_overrides_are_typed():
    train_cfg, policy_cfg = TrainConfig(), MLPConfig()
    overrides = ["lr=3e-4", "hidden=64,32", "amp=false", "steps=7", "obs_keys=ee_pos,gripper"]
    apply_overrides([train_cfg, policy_cfg], overrides)
    assert (policy_cfg.lr, policy_cfg.hidden, train_cfg.amp, train_cfg.steps) == (3e-4, [64, 32], False, 7)
    assert policy_cfg.obs_keys == ["ee_pos", "gripper"]
    with pytest.raises(PolicyError, match="unknown config key 'nope'"):
        apply_overrides([train_cfg, policy_cfg], ["nope=1"])
    with pytest.raises(PolicyError, match="expected int"):
        apply_overrides([train_cfg, policy_cfg], ["steps=many"])


def test_default_inputs_follow_the_datasets_observation_kinds(lowdim_dataset, tmp_path):
    old = Dataset(lowdim_dataset)  # written without the observations attribute: the old rule
    assert PolicyConfig().input_keys(old.observation_kinds) == ["joint_pos", "ee_pos", "gripper", "object_pos"]
    observations = [{"key": "state", "kind": "lowdim", "shape": [2]},
                    {"key": "joint_vel", "kind": "lowdim", "shape": [2]},
                    {"key": "env", "kind": "privileged", "shape": [3]},
                    {"key": "image_top", "kind": "image", "shape": [8, 8, 3]}]
    attrs = {"fps": 20, "robot": "arm", "task": "lift", "action_space": "ee_delta", "observations": observations}
    with EpisodeWriter(tmp_path / "new.zarr", attrs=attrs) as writer:
        data = {"action": np.zeros((3, 7)), "state": np.zeros((3, 2)), "joint_vel": np.zeros((3, 2)),
                "env": np.zeros((3, 3)), "image_top": np.zeros((3, 8, 8, 3), np.uint8)}
        writer.add_episode(Episode(data, seed=0, success=True, source=Source.EXPERT))
    kinds = Dataset(tmp_path / "new.zarr").observation_kinds
    assert PolicyConfig().input_keys(kinds) == ["state", "joint_vel", "env"]
    assert CNNConfig().input_keys(kinds) == ["image_top", "state"]
    assert PolicyConfig(inputs="vision").input_keys(kinds) == ["image_top", "state"]  # never "env"
    assert PolicyConfig(inputs="vision", obs_keys=["env"]).input_keys(kinds) == ["env"]  # obs_keys say it all
    with pytest.raises(PolicyError, match="inputs=vision needs a dataset with cameras"):
        PolicyConfig(inputs="vision").input_keys(old.observation_kinds)
