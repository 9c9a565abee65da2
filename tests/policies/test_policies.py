"""Each policy learns the synthetic task, reloads to identical actions, and keeps its history/queue right."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from protege.datasets import Dataset, SequenceSampler
from protege.policies.base import Spec
from protege.policies.checkpoint import build_from_meta, load_policy, read_run, save_checkpoint
from protege.policies.errors import PolicyError
from protege.policies.mlp.config import MLPConfig
from protege.policies.mlp.model import MLPPolicy
from protege.policies.trainer import evaluate, train

CASES = [("mlp", "lowdim_dataset", 5.0), ("cnn", "image_dataset", 3.0), ("act", "lowdim_dataset", 3.0),
         ("diffusion", "lowdim_dataset", 2.0)]


def _observations(dataset: str, keys: list[str], n: int = 12) -> list[dict[str, np.ndarray]]:
    episode = Dataset(dataset).episode(0, keys).data
    return [{k: v[t] for k, v in episode.items()} for t in range(n)]


def _rollout(policy, observations) -> np.ndarray:
    torch.manual_seed(0)
    policy.reset()
    return np.stack([policy.act(obs) for obs in observations])


@pytest.mark.parametrize(("name", "dataset_fixture", "factor"), CASES)
def test_learns_and_reloads_identically(name, dataset_fixture, factor, request, tmp_path, tiny_config, train_config):
    dataset = request.getfixturevalue(dataset_fixture)
    summary = train(train_config(dataset, tmp_path / "run", name, steps=300), tiny_config(name))
    assert summary.steps == 300

    meta, stats = read_run(tmp_path / "run")
    trained = load_policy(tmp_path / "run")
    torch.manual_seed(0)
    untrained = build_from_meta(meta, stats)
    keys = list(trained.spec.obs_shapes)
    sampler = SequenceSampler(Dataset(dataset), keys, "action", trained.config.n_obs_steps, trained.config.horizon)
    batch = {k: torch.from_numpy(v) for k, v in sampler.sample(np.arange(0, len(sampler), 3)).items()}
    before, after = evaluate(untrained, [batch], amp=False), evaluate(trained, [batch], amp=False)
    assert after * factor < before, f"{name}: loss {before:.4f} -> {after:.4f}"

    observations = _observations(dataset, keys)
    actions = _rollout(trained, observations)
    assert actions.shape == (len(observations), 7) and actions.dtype == np.float64
    save_checkpoint(tmp_path / "copy", trained, meta.train_config, stats, 300, meta.env)
    np.testing.assert_array_equal(_rollout(load_policy(tmp_path / "copy", ema=False), observations), actions)


def test_mlp_imitates_the_expert(lowdim_dataset, tmp_path, tiny_config, train_config):
    train(train_config(lowdim_dataset, tmp_path / "run", "mlp", steps=400, val_ratio=0.0), tiny_config("mlp"))
    policy = load_policy(tmp_path / "run")
    keys = list(policy.spec.obs_shapes)
    episode = Dataset(lowdim_dataset).episode(0, [*keys, "action"]).data
    policy.reset()
    predicted = np.stack([policy.act({k: episode[k][t] for k in keys}) for t in range(20)])
    assert np.abs(predicted - episode["action"][:20]).mean() < 0.1


def test_an_ensemble_doubts_more_off_the_data_and_one_member_has_no_doubt(lowdim_dataset, tmp_path, tiny_config,
                                                                          train_config):
    train(train_config(lowdim_dataset, tmp_path / "run", "mlp", steps=400, val_ratio=0.0),
          tiny_config("mlp", members=5))
    policy = load_policy(tmp_path / "run")
    keys = list(policy.spec.obs_shapes)
    episode = Dataset(lowdim_dataset).episode(0, [*keys, "action"]).data
    policy.reset()
    assert policy.doubt is None
    seen = []
    for t in range(20):
        policy.act({k: episode[k][t] for k in keys})
        seen.append(policy.doubt)
    policy.act({k: episode[k][0] + 5.0 * np.std(episode[k], axis=0) + 1.0 for k in keys})  # far from every demo
    assert policy.doubt > 3 * np.median(seen) > 0
    policy.reset()
    assert policy.doubt is None
    spec, stats = _unit_spec()
    single = MLPPolicy(MLPConfig(hidden=[16]), spec, stats).eval()
    single.act({"joint_pos": np.zeros(2)})
    assert single.doubt is None


def _recording_policy(name, tiny_config, lowdim_dataset, **overrides):
    """An untrained policy whose predict_chunk returns chunk k filled with k and records its inputs."""
    from protege.datasets import compute_stats
    from protege.policies.base import POLICIES, Spec

    config = tiny_config(name, obs_keys=["ee_pos"], **overrides)
    ds = Dataset(lowdim_dataset)
    policy = POLICIES[name](config, Spec({"ee_pos": (3,)}, 7), compute_stats(ds, ["ee_pos", "action"])).eval()
    calls: list[torch.Tensor] = []

    def predict_chunk(obs, guide=None):
        calls.append(obs["ee_pos"][0].clone())
        steps = torch.arange(config.horizon, dtype=torch.float32)[:, None].expand(-1, 7)
        return (len(calls) * 100 + steps)[None]

    policy.predict_chunk = predict_chunk
    return policy, calls


def test_diffusion_queue_and_history(lowdim_dataset, tiny_config):
    policy, calls = _recording_policy("diffusion", tiny_config, lowdim_dataset, n_obs_steps=2, n_action_steps=4)
    policy.reset()
    obs = [{"ee_pos": np.full(3, t, dtype=np.float32)} for t in range(9)]
    actions = [policy.act(o)[0] for o in obs]
    assert actions == [100, 101, 102, 103, 200, 201, 202, 203, 300]  # replans every n_action_steps
    assert calls[0].tolist() == [[0, 0, 0], [0, 0, 0]]  # the first observation fills the history
    assert calls[1].tolist() == [[3, 3, 3], [4, 4, 4]]
    policy.reset()
    policy.act(obs[5])
    assert calls[-1].tolist() == [[5, 5, 5], [5, 5, 5]] and len(calls) == 4


def test_act_predicts_every_step_and_ensembles(lowdim_dataset, tiny_config):
    policy, calls = _recording_policy("act", tiny_config, lowdim_dataset, temporal_ensemble_coeff=0.0)
    policy.reset()
    actions = [policy.act({"ee_pos": np.zeros(3, dtype=np.float32)})[0] for _ in range(3)]
    assert len(calls) == 3
    # coeff 0: plain mean of what each chunk predicted for the current step
    assert actions == pytest.approx([100, (101 + 200) / 2, (102 + 201 + 300) / 3])


def test_act_without_ensembling_uses_the_queue(lowdim_dataset, tiny_config):
    policy, calls = _recording_policy(
        "act", tiny_config, lowdim_dataset, temporal_ensemble_coeff=None, n_action_steps=3
    )
    policy.reset()
    actions = [policy.act({"ee_pos": np.zeros(3, dtype=np.float32)})[0] for _ in range(4)]
    assert actions == [100, 101, 102, 200] and len(calls) == 2


@pytest.mark.parametrize("name", ["mlp", "act", "diffusion"])
@pytest.mark.parametrize("binary", [True, False])
def test_act_sends_an_open_or_closed_gripper(name, binary, lowdim_dataset, tiny_config):
    """A regressed gripper command between open and closed goes out as the nearer of the two."""
    policy, _ = _recording_policy(name, tiny_config, lowdim_dataset, binary_gripper=binary)
    obs = {"ee_pos": np.zeros(3, dtype=np.float32)}
    for predicted, sent in ((0.38, 0.0), (0.87, 1.0), (0.5, 1.0)):
        policy.predict_chunk = lambda window, guide=None, g=predicted: torch.full((1, policy.config.horizon, 7), g)
        policy.reset()
        action = policy.act(obs)
        assert action[-1] == pytest.approx(sent if binary else predicted)
        assert action[:-1] == pytest.approx(np.full(6, predicted))  # the arm's command is left as predicted


@pytest.mark.parametrize("name", ["mlp", "cnn", "act", "diffusion"])
def test_every_parameter_gets_a_gradient(name, image_dataset, tiny_config):
    """DistributedDataParallel fails on parameters that the loss does not reach."""
    from protege.datasets import compute_stats
    from protege.policies.base import POLICIES, Spec

    ds = Dataset(image_dataset)
    keys = ["ee_pos", "gripper"] + ([] if name == "mlp" else ["image_front"])
    config = tiny_config(name, obs_keys=keys, **({} if name == "mlp" else {"widths": [8, 16]}))
    stats = compute_stats(ds, ["ee_pos", "gripper", "action"])
    policy = POLICIES[name](config, Spec({k: ds.shape(k)[1:] for k in keys}, 7), stats)
    sampler = SequenceSampler(ds, keys, "action", config.n_obs_steps, config.horizon)
    policy({k: torch.from_numpy(v) for k, v in sampler.sample(np.arange(0, 400, 50)).items()})["loss"].backward()
    assert [n for n, p in policy.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize("grid", [None, 1, 2])
def test_act_pools_each_camera_to_its_image_grid(grid, image_dataset, tiny_config):
    from protege.datasets import compute_stats
    from protege.policies.act.model import ACTPolicy

    ds = Dataset(image_dataset)
    keys = ["ee_pos", "gripper", "image_front"]
    config = tiny_config("act", obs_keys=keys, widths=[8, 16], image_grid=grid)
    policy = ACTPolicy(config, Spec({k: ds.shape(k)[1:] for k in keys}, 7), compute_stats(ds, ["ee_pos", "gripper",
                                                                                              "action"]))
    tokens = policy._image_tokens("image_front", torch.zeros(3, 3, 32, 32))
    assert tokens.shape == (3, 8 * 8 if grid is None else grid * grid, config.dim_model)  # 32 px: an 8x8 map


def test_quaternions_become_sign_free_rotation_features():
    from protege.policies.base import Spec, quat_to_rot6d

    yaw = 0.3
    q = torch.tensor([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])
    expected = [np.cos(yaw), np.sin(yaw), 0.0, -np.sin(yaw), np.cos(yaw), 0.0]  # first two columns
    assert quat_to_rot6d(q).tolist() == pytest.approx(expected, abs=1e-6)
    two = torch.randn(5, 8)  # two quaternions per row (two objects), not normalised
    assert quat_to_rot6d(two).shape == (5, 12)
    assert torch.allclose(quat_to_rot6d(two), quat_to_rot6d(-two), atol=1e-6)
    assert Spec({"ee_pos": (3,), "ee_quat": (4,), "object_quat": (8,)}, 7).lowdim_dim == 3 + 6 + 12


def test_random_shift_crops_the_padded_image():
    from protege.policies.encoders import random_shift

    images = torch.rand(16, 3, 10, 10)
    shifted = random_shift(images, pad=2)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="replicate")
    for image, out in zip(padded, shifted):
        crops = [image[:, r : r + 10, c : c + 10] for r in range(5) for c in range(5)]
        assert any(torch.equal(out, crop) for crop in crops)


def test_color_jitter_stays_within_its_strength():
    from protege.policies.encoders import color_jitter

    torch.manual_seed(0)
    images = torch.rand(64, 3, 8, 8)
    assert torch.allclose(color_jitter(images, 0.0), images, atol=1e-6)
    jittered = color_jitter(images, 0.2)
    assert jittered.min() >= 0 and jittered.max() <= 1
    change = (jittered - images).abs().flatten(1).mean(1)
    assert change.min() > 0  # every image changes, each its own way
    assert change.std() > 0.1 * change.mean()
    # contrast and gain within 1 +- 0.2 and brightness within +- 0.1 move no pixel by more than
    # 0.2 + 0.2 * 1.2 + 0.1 (a pixel at 1 against a mean at 0, both factors at their extremes)
    assert (jittered - images).abs().max() <= 0.54 + 1e-6


@pytest.mark.parametrize("augmentation", [{"shift_pad": 4}, {"shift_pad": 0, "jitter": 0.2}])
def test_images_are_augmented_in_training_only(augmentation):
    from protege.policies.encoders import ConvTrunk

    torch.manual_seed(0)
    trunk, images = ConvTrunk([8, 8], **augmentation), torch.rand(4, 3, 16, 16)
    plain = ConvTrunk([8, 8], shift_pad=0)
    plain.load_state_dict(trunk.state_dict())
    trunk.train()
    assert not torch.allclose(trunk(images), trunk(images))  # a fresh draw every call
    trunk.eval()
    assert torch.equal(trunk(images), plain.eval()(images))  # acting sees the image as it is


def _unit_spec() -> tuple[Spec, dict[str, dict[str, np.ndarray]]]:
    """A two-number observation and a one-number action, both with identity statistics."""
    unit = {"mean": np.zeros(1), "std": np.ones(1), "min": -np.ones(1), "max": np.ones(1)}
    return Spec({"joint_pos": (2,)}, 1), {"joint_pos": {"mean": np.zeros(2), "std": np.ones(2)}, "action": unit}


@pytest.mark.parametrize(("loss", "expected"), [("mse", 0.4), ("l1", 1.0)])
def test_mlp_loss_picks_the_mean_or_the_median_of_two_modes(loss, expected):
    """One observation, labelled +1 seven times in ten and -1 otherwise (an expert's two branches):
    MSE regresses the mean (0.4, an action neither branch takes), L1 the median (the larger branch)."""
    torch.manual_seed(0)
    policy = MLPPolicy(MLPConfig(n_obs_steps=1, horizon=1, n_action_steps=1, hidden=[32], loss=loss), *_unit_spec())
    action = torch.where(torch.arange(100) < 70, 1.0, -1.0).view(100, 1, 1)
    batch = {"joint_pos": torch.zeros(100, 1, 2), "action": action,
             "action_is_pad": torch.zeros(100, 1, dtype=torch.bool)}
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        policy(batch)["loss"].backward()
        optimizer.step()
    with torch.no_grad():
        assert policy.predict_chunk(batch)[0, 0, 0].item() == pytest.approx(expected, abs=0.05)


def test_mlp_refuses_an_unknown_loss():
    with pytest.raises(PolicyError, match="unknown mlp loss 'huber'"):
        MLPPolicy(MLPConfig(loss="huber"), *_unit_spec())


def _moving_arm(samples: int, steps: int) -> tuple[MLPPolicy, dict[str, torch.Tensor]]:
    """An mlp (velocity_dropout 0.5) over joint positions and velocities, and a batch where every
    position reads 1 and every velocity 2."""
    spec = Spec({"joint_pos": (2,), "joint_vel": (2,)}, 1)
    stats = {"joint_pos": {"mean": np.zeros(2), "std": np.ones(2)},
             "joint_vel": {"mean": np.zeros(2), "std": np.ones(2)},
             "action": {"mean": np.zeros(1), "std": np.ones(1), "min": -np.ones(1), "max": np.ones(1)}}
    policy = MLPPolicy(MLPConfig(n_obs_steps=steps, hidden=[8], velocity_dropout=0.5), spec, stats)
    batch = {"joint_pos": torch.ones(samples, steps, 2), "joint_vel": torch.full((samples, steps, 2), 2.0)}
    return policy, batch


def test_velocity_dropout_shows_a_share_of_training_samples_an_arm_at_rest():
    """Half the training samples read zero velocities over their whole window; positions are untouched."""
    torch.manual_seed(0)
    policy, batch = _moving_arm(samples=4000, steps=2)
    features = policy.train().lowdim_features(batch)  # (B, T, [pos, pos, vel, vel])
    velocities = features[..., 2:]
    at_rest = (velocities == 0).all(-1).all(-1)
    assert at_rest.float().mean().item() == pytest.approx(0.5, abs=0.03)
    assert torch.all(velocities[~at_rest] == 2.0)  # a window is dropped whole or not at all
    assert torch.all(features[..., :2] == 1.0)


def test_velocity_dropout_leaves_what_the_policy_sees_when_it_acts():
    policy, batch = _moving_arm(samples=100, steps=1)
    assert torch.all(policy.eval().lowdim_features(batch)[..., 2:] == 2.0)


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_velocity_dropout_outside_zero_to_one_is_refused(share):
    with pytest.raises(PolicyError, match=f"velocity_dropout must be in \\[0, 1\\], got {share}"):
        MLPPolicy(MLPConfig(velocity_dropout=share), *_unit_spec())


def test_diffusion_conv_takes_the_onednn_path_only_without_gradients_and_agrees():
    from protege.policies.diffusion.model import Conv1d

    conv, x = Conv1d(256, 256, 3, padding=1), torch.randn(1, 256, 4)
    with torch.no_grad():
        fast = conv(x)
    slow = conv(x)  # with gradients: PyTorch's own kernel choice
    assert slow.requires_grad and not fast.requires_grad
    assert torch.allclose(fast, slow, atol=1e-4)
    if torch.backends.mkldnn.is_available():
        with torch.no_grad():
            assert torch.equal(fast, torch.mkldnn_convolution(x, conv.weight, conv.bias, (1,), (1,), (1,), 1))


def test_diffusion_samples_a_batch_row_as_it_would_alone(lowdim_dataset, tiny_config):
    """Sampling computes every solver step's FiLM terms in one pass over (steps x batch) rows: row 0 of a
    two-observation batch, given the same noise, must come out as row 0 sampled alone."""
    from protege.datasets import compute_stats
    from protege.policies.base import POLICIES, Spec

    config = tiny_config("diffusion", obs_keys=["ee_pos"], n_obs_steps=1, horizon=16)  # 16 x 7 noise draws: whole
    # blocks of torch's vectorised normal fill, so row 0 draws the same noise in a batch of one or two
    stats = compute_stats(Dataset(lowdim_dataset), ["ee_pos", "action"])
    policy = POLICIES["diffusion"](config, Spec({"ee_pos": (3,)}, 7), stats).eval()
    obs = {"ee_pos": torch.tensor([[[0.4, 0.0, 0.2]], [[0.6, -0.2, 0.1]]])}
    with torch.inference_mode():
        policy.reset(seed=3)
        pair = policy.predict_chunk(obs)
        policy.reset(seed=3)
        first = policy.predict_chunk({"ee_pos": obs["ee_pos"][:1]})
    assert not torch.allclose(pair[0], pair[1], atol=1e-3)
    assert torch.allclose(pair[0], first[0], atol=1e-5)


def test_ensemble_members_are_independent_networks_each_shaped_as_the_single_mlp():
    from protege.policies.encoders import EnsembleMLP, mlp

    torch.manual_seed(0)
    ensemble, x = EnsembleMLP(3, 4, [8, 8], 2), torch.randn(5, 4)
    out = ensemble(x)
    assert out.shape == (3, 5, 2) and not torch.allclose(out[0], out[1])
    single = mlp(4, [8, 8], 2)
    linears = [m for m in single if isinstance(m, torch.nn.Linear)]
    norms = [m for m in single if isinstance(m, torch.nn.LayerNorm)]
    with torch.no_grad():  # member 1's weights in an nn.Sequential mlp give member 1's output
        for linear, weight, bias in zip(linears, ensemble.weights, ensemble.biases):
            linear.weight.copy_(weight[1].T)
            linear.bias.copy_(bias[1, 0])
        for norm, weight, bias in zip(norms, ensemble.norm_weights, ensemble.norm_biases):
            norm.weight.copy_(weight[1, 0] * 2.0)
            norm.bias.copy_(bias[1, 0] + 0.1)
            weight[1, 0].mul_(2.0)
            bias[1, 0].add_(0.1)
    assert torch.allclose(ensemble(x)[1], single(x), atol=1e-5)
    assert sum(p.numel() for p in ensemble.parameters()) == 3 * sum(p.numel() for p in single.parameters())


def test_an_mlp_checkpoint_with_one_head_loads_and_one_with_shared_heads_is_refused(lowdim_dataset, tmp_path,
                                                                                   tiny_config, train_config):
    import json

    from protege.policies.checkpoint import CorruptCheckpointError

    run = tmp_path / "run"
    train(train_config(lowdim_dataset, run, "mlp", steps=20, val_ratio=0.0), tiny_config("mlp"))
    meta = json.loads((run / "config.json").read_text())
    meta["policy_config"]["heads"] = meta["policy_config"].pop("members")  # as written before members
    (run / "config.json").write_text(json.dumps(meta))
    assert load_policy(run).config.members == 1
    meta["policy_config"]["heads"] = 5
    (run / "config.json").write_text(json.dumps(meta))
    with pytest.raises(CorruptCheckpointError, match="5 heads on one trunk.*--set members=5"):
        read_run(run)
