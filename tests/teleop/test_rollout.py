"""The rollout runner: seeded, reproducible whatever the worker count; recording; expert labelling; videos."""

from __future__ import annotations

import numpy as np
import pytest
from rollout_policies import make_reach_policy

from protege.datasets import Dataset, Source
from protege.sim import EnvSpec
from protege.teleop.errors import TeleopError
from protege.teleop.runtime.collect import make_env
from protege.teleop.runtime.pilots import MixturePilot
from protege.teleop.runtime.rollout import RolloutSpec, run_rollouts, wilson_interval

ENV = EnvSpec.make("lift", cameras=(), image_size=64)


def spec(**kwargs) -> RolloutSpec:
    return RolloutSpec(ENV, make_reach_policy, success_hold=1, **kwargs)


def test_wilson_interval_brackets_the_rate_and_stays_in_unit_range():
    assert wilson_interval(0, 10)[0] == 0.0 and 0.25 < wilson_interval(0, 10)[1] < 0.3
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0) and 0.7 < wilson_interval(10, 10)[0] < 0.75
    low, high = wilson_interval(46, 50)
    assert low < 0.92 < high and high - low < 0.2
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_same_seed_same_numbers_and_workers_do_not_change_them():
    one = run_rollouts(spec(), 4, seed=7, envs=1, progress=False).summary
    again = run_rollouts(spec(), 4, seed=7, envs=1, progress=False).summary
    two = run_rollouts(spec(), 4, seed=7, envs=2, progress=False).summary
    for key in ("lengths", "returns", "success"):
        assert getattr(one, key) == getattr(again, key) == getattr(two, key)
    other = run_rollouts(spec(), 4, seed=8, envs=1, progress=False).summary
    assert other.returns != one.returns


def test_recorded_rollouts_are_policy_episodes_in_seed_order(tmp_path):
    out = str(tmp_path / "rollouts.zarr")
    result = run_rollouts(spec(record=True), 3, seed=20, envs=1, record_to=out, progress=False)
    ds = Dataset(out)
    assert ds.num_episodes == 3
    assert ds.meta("seed").tolist() == [20, 21, 22]
    assert ds.meta("source").tolist() == [int(Source.POLICY)] * 3
    assert int(ds["intervention"][:].sum()) == 0
    assert np.diff(np.concatenate([[0], ds.episode_ends])).tolist() == list(result.summary.lengths)


def test_expert_labels_every_visited_state_and_drives_with_probability_beta(tmp_path):
    from protege.sim.experts import make_expert

    out = str(tmp_path / "labelled.zarr")
    run_rollouts(spec(record=True, expert_beta=0.0), 2, seed=3, record_to=out, progress=False)
    ds = Dataset(out)
    assert int(ds["intervention"][:].sum()) == 0  # beta 0: the policy drove every tick
    env = make_env(ENV)
    expert = make_expert(env, noise=0.0)
    states, actions = ds["sim_state"][:], ds["action"][:]
    for i in range(0, len(states), 7):
        env.set_state(states[i])
        np.testing.assert_allclose(actions[i], expert.act(None), atol=1e-12)
    mixed = run_rollouts(spec(expert_beta=1.0), 2, seed=3, progress=False).episodes
    assert all(e.expert_ticks == e.length for e in mixed)
    assert all(e.success for e in mixed)  # the expert alone lifts the cube


class _Constant:
    kind = "expert"

    def reset(self, seed=None):
        pass

    def act(self, obs):
        return np.ones(7)


def test_a_handover_mixture_drives_for_good_from_a_tick_drawn_per_episode_seed():
    pilot = MixturePilot(_Constant(), beta=0.0, handover=10)

    def first_tick(seed):
        pilot.reset(seed=seed)
        proposals = [pilot.act({}) for _ in range(15)]
        first = next(i for i, p in enumerate(proposals) if p is not None)
        assert all(p is not None for p in proposals[first:])  # it never hands back
        return first

    firsts = [first_tick(seed) for seed in range(30)]
    assert all(0 <= f < 10 for f in firsts) and len(set(firsts)) >= 5
    assert first_tick(4) == firsts[4]  # reproducible per episode seed
    with pytest.raises(ValueError, match="handover must be at least 1 tick"):
        MixturePilot(_Constant(), beta=0.0, handover=0)


def test_a_handover_expert_rolls_out_what_the_policy_rolled_in(tmp_path):
    out = str(tmp_path / "handover.zarr")
    run_rollouts(spec(record=True, expert_beta=0.0, expert_handover=True), 4, seed=3, record_to=out, progress=False)
    ds = Dataset(out)
    half = make_env(ENV).unwrapped.max_steps // 2
    firsts = []
    for episode in range(ds.num_episodes):
        flags = ds.episode(episode).data["intervention"]
        first = int(np.argmax(flags))
        assert flags[first] == 1 and not flags[:first].any() and flags[first:].all()
        assert first < half
        firsts.append(first)
    assert len(set(firsts)) > 1
    assert ds.meta("success").all()  # the expert finishes the lift the reaching policy could not


def test_videos_have_one_frame_per_observation(tmp_path):
    import cv2

    result = run_rollouts(spec(video_dir=str(tmp_path), videos=1, video_size=64), 2, seed=0, progress=False)
    assert len(result.summary.videos) == 1
    capture = cv2.VideoCapture(result.summary.videos[0])
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    assert frames == result.episodes[0].length + 1


def test_bad_counts_are_refused():
    with pytest.raises(TeleopError, match="envs"):
        run_rollouts(spec(), 2, envs=0, progress=False)
    with pytest.raises(TeleopError, match="record=True"):
        run_rollouts(spec(), 1, record_to="x.zarr", progress=False)
