"""Seeded disturbances: parsing, what each moves and by how much, and reproducibility per seed."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from protege.sim import ProtegeEnv, SimError
from protege.sim.disturbances import (
    DEFAULT,
    Disturbance,
    Disturber,
    describe,
    parse_disturbances,
    push_object,
    shove_arm,
)
from protege.sim.experts import make_expert
from protege.sim.spec import EnvSpec


def test_a_specification_parses_to_named_magnitudes_with_defaults():
    parsed = parse_disturbances("object_push=0.05, latency")
    assert parsed == (Disturbance("object_push", 0.05), Disturbance("latency", 1.0))
    assert describe(parsed) == "object_push=0.05,latency=1"
    assert describe(parse_disturbances("default")) == describe(parse_disturbances(DEFAULT))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gust", "unknown disturbance 'gust'"),
        ("arm_shove=-0.02", "must be a finite number >= 0"),
        ("obs_noise=nan", "must be a finite number >= 0"),
        ("arm_shove=far", "is not a number"),
        ("latency=1.5", "whole number of ticks"),
        ("latency,latency", "given twice"),
        ("visual=2", "'visual' stands for lighting,colors,camera,distractors at their default magnitudes"),
        ("default=0.1", "'default' stands for object_push,arm_shove"),
        (" , ", "no disturbance given"),
        ("lighting=", "'=' with no magnitude"),
    ],
)
def test_a_bad_specification_is_one_line(text, message):
    with pytest.raises(SimError, match=message) as error:
        parse_disturbances(text)
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def env():
    return ProtegeEnv(EnvSpec.make("slot_push", cameras=()))


def test_an_object_push_slides_the_object_by_its_magnitude(env):
    env.reset(seed=3)
    before = env.task.object_pos(env.data, 0).copy()
    assert push_object(env, 0.04, heading=0.7)
    moved = env.task.object_pos(env.data, 0) - before
    assert np.linalg.norm(moved[:2]) == pytest.approx(0.04, abs=1e-9) and moved[2] == 0.0


def test_an_arm_shove_displaces_the_end_effector_by_its_magnitude_and_the_arm_stays(env):
    env.reset(seed=3)
    position, rotation = env.ee_pose()
    assert shove_arm(env, 0.04, heading=1.2)
    shoved, shoved_rotation = env.ee_pose()
    assert np.linalg.norm((shoved - position)[:2]) == pytest.approx(0.04, abs=1e-3)
    assert abs(shoved[2] - position[2]) < 1e-3 and np.allclose(shoved_rotation, rotation, atol=1e-2)
    for _ in range(10):
        env.step(np.zeros(7))  # a zero action holds the new pose: the controller was re-anchored
    assert np.linalg.norm(env.ee_pose()[0] - shoved) < 2e-3


def test_a_held_object_moves_with_the_shoved_arm():
    env = ProtegeEnv(EnvSpec.make("lift", cameras=()))
    expert = make_expert(env)
    obs, _ = env.reset(seed=1)
    expert.reset(seed=1)
    while not env.task.object_pos(env.data, 0)[2] > 0.05:
        obs, *_ = env.step(expert.act(obs))
    assert env.holds(0)
    cube, ee = env.task.object_pos(env.data, 0).copy(), env.ee_pose()[0]
    assert shove_arm(env, 0.03, heading=0.0)
    ee_moved = env.ee_pose()[0] - ee
    assert np.allclose(env.task.object_pos(env.data, 0) - cube, ee_moved, atol=1e-9)
    assert np.linalg.norm(ee_moved[:2]) == pytest.approx(0.03, abs=1e-3)


def test_an_action_arrives_latency_ticks_late():
    disturber = Disturber(parse_disturbances("latency=2"))
    disturber.reset(ProtegeEnv(EnvSpec.make("reach", cameras=())), seed=0)
    applied = [float(disturber.delay(np.array([float(t)]))[0]) for t in range(5)]
    assert applied == [0.0, 0.0, 0.0, 1.0, 2.0]


def test_observation_noise_has_its_standard_deviation_on_object_positions_only(env):
    disturber = Disturber(parse_disturbances("obs_noise=0.01"))
    obs, _ = env.reset(seed=0)
    disturber.reset(env, seed=0)
    noisy = np.array([disturber.observe(obs)["object_pos"] - obs["object_pos"] for _ in range(2000)])
    assert noisy.std() == pytest.approx(0.01, rel=0.1)
    assert disturber.observe(obs)["ee_pos"] is obs["ee_pos"]


def test_the_schedule_is_a_function_of_the_episode_seed_alone(env):
    disturber = Disturber(parse_disturbances("default,obs_noise"))
    obs, _ = env.reset(seed=11)
    disturber.reset(env, seed=11)
    first, noisy = disturber.strikes, disturber.observe(obs)["object_pos"]
    disturber.reset(env, seed=12)
    assert disturber.strikes != first
    disturber.reset(env, seed=11)
    assert disturber.strikes == first and np.array_equal(disturber.observe(obs)["object_pos"], noisy)
    low, high = 0.1 * env.max_steps, 0.3 * env.max_steps
    assert all(low <= strike.tick <= high for strike in first)
    assert {s.name for s in first} == {"object_push", "arm_shove"}


class _HoldStill:
    """A policy that never moves: the disturbances alone change the episode."""

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs):
        return np.zeros(7)


def _hold_still() -> _HoldStill:
    return _HoldStill()


def test_disturbed_rollouts_are_the_same_for_any_number_of_workers():
    from protege.teleop.runtime.rollout import RolloutSpec, run_rollouts

    spec = RolloutSpec(EnvSpec.make("push", cameras=()), functools.partial(_hold_still),
                       disturb=parse_disturbances("default,obs_noise"))
    one = run_rollouts(spec, 4, seed=20, envs=1, progress=False)
    two = run_rollouts(spec, 4, seed=20, envs=2, progress=False)
    assert [e.strikes for e in one.episodes] == [e.strikes for e in two.episodes]
    assert sum(e.strikes for e in one.episodes) >= 4
    assert [e.ret for e in one.episodes] == [e.ret for e in two.episodes]
    assert one.summary.disturb == "object_push=0.04,arm_shove=0.04,obs_noise=0.005"
