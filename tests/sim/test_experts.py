"""Scripted experts: they solve every task, a random policy does not, they label states they never
visited (DAgger), and their action noise is reproducible."""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import protege.sim  # noqa: F401  (picks the headless GL backend before mujoco loads)
from protege.sim import GYM_IDS, TASKS, EnvSpec, ProtegeEnv, SimError
from protege.sim.experts import DEMO_NOISE, EXPERTS, ScriptedExpert, make_expert
from protege.sim.robot import menagerie_dir
from protege.sim.tasks.base import CUBE_HALF

needs_menagerie = pytest.mark.skipif(menagerie_dir() is None, reason="Menagerie robots not found (PROTEGE_MENAGERIE)")
ROBOTS = ("protege_arm", pytest.param("panda", marks=needs_menagerie))

ALL_TASKS = tuple(TASKS)
_ENVS: dict[tuple[str, str], ProtegeEnv] = {}


def env_for(task: str, robot: str = "protege_arm") -> ProtegeEnv:
    """One env per (task, robot) for the whole module: building the IK model takes a moment."""
    key = (task, robot)
    if key not in _ENVS:
        _ENVS[key] = ProtegeEnv(EnvSpec.make(task, robot=robot, cameras=()))
    return _ENVS[key]


def run_episode(env: ProtegeEnv, expert: ScriptedExpert, seed: int, random_steps: int = 0,
                rng: np.random.Generator | None = None) -> tuple[bool, int]:
    """Reset with ``seed``; drive ``random_steps`` random actions, then the expert to the end."""
    obs, info = env.reset(seed=seed)
    expert.reset()
    rng = rng or np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    for step in range(env.max_steps):
        action = rng.uniform(low, high) if step < random_steps else expert.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    return bool(info["success"]), step + 1


def success_rate(task: str, robot: str, seeds, noise: float = 0.0, random_steps: int = 0) -> float:
    env = env_for(task, robot)
    expert = make_expert(env, noise=noise, seed=1234)
    return float(np.mean([run_episode(env, expert, s, random_steps)[0] for s in seeds]))


def test_every_task_has_an_expert():
    assert set(EXPERTS) == set(TASKS)


@pytest.mark.parametrize("task", ALL_TASKS)
def test_expert_solves_task(task):
    assert success_rate(task, "protege_arm", range(10)) == 1.0


@pytest.mark.parametrize("task", ALL_TASKS)
def test_expert_with_demo_noise_still_solves_task(task):
    assert success_rate(task, "protege_arm", range(100, 110), noise=DEMO_NOISE) >= 0.8


@needs_menagerie
@pytest.mark.parametrize("task", ("lift", "slot_push"))
def test_expert_solves_task_with_panda(task):
    assert success_rate(task, "panda", range(3)) == 1.0


@pytest.mark.parametrize("task", ALL_TASKS)
def test_random_policy_mostly_fails(task):
    env = env_for(task)
    rng = np.random.default_rng(0)
    wins = 0
    for seed in range(5):
        env.reset(seed=seed)
        for _ in range(env.max_steps):
            _, _, terminated, truncated, info = env.step(rng.uniform(env.action_space.low, env.action_space.high))
            if terminated or truncated:
                break
        wins += info["success"]
    assert wins <= 1


@pytest.mark.parametrize("task", ALL_TASKS)
def test_expert_takes_over_from_random_policy(task):
    """DAgger: the expert labels states a (bad) policy drove into and still finishes the task."""
    rate = success_rate(task, "protege_arm", range(200, 210), random_steps=15)
    assert rate >= 0.8


@pytest.mark.parametrize("task", ("push", "stack", "slot_push"))
def test_expert_is_a_function_of_the_sim_state(task):
    """An expert that has driven one episode labels a state from another episode exactly like a
    fresh expert does: no hidden phase memory, no reset needed."""
    env = env_for(task)
    busy = make_expert(env)
    run_episode(env, busy, seed=7)  # leaves whatever it might remember from episode 7
    # A mid-episode state of a different episode, reached by the expert itself.
    obs, _ = env.reset(seed=8)
    helper = make_expert(env)
    states = []
    for _ in range(40):
        obs, *_ = env.step(helper.act(obs))
        states.append(env.get_state())
    for state in states[::7]:
        env.set_state(state)
        fresh = make_expert(env)
        np.testing.assert_allclose(busy.act(), fresh.act(), atol=1e-12)
    # ... and takes over from the last state, in a new env, to success.
    other = ProtegeEnv(EnvSpec.make(task, cameras=()))
    other.reset(seed=8)
    other.set_state(states[-1])
    expert = make_expert(other)
    obs = other._observation()
    for _ in range(other.max_steps - other._steps):
        obs, _, terminated, truncated, info = other.step(expert.act(obs))
        if terminated or truncated:
            break
    assert info["success"]


def test_noise_is_reproducible_and_only_moves_translation():
    env = env_for("lift")
    env.reset(seed=3)
    clean = make_expert(env).act()
    a1, a2, b = (make_expert(env, noise=DEMO_NOISE, seed=s) for s in (5, 5, 6))
    x1, x2, y = a1.act(), a2.act(), b.act()
    np.testing.assert_array_equal(x1, x2)
    assert not np.allclose(x1[:3], y[:3])
    assert not np.allclose(x1[:3], clean[:3])
    np.testing.assert_array_equal(x1[3:], clean[3:])  # rotation and gripper are untouched
    # a second draw differs (the stream moves on), and reset(seed) restarts it
    assert not np.allclose(a1.act()[:3], x1[:3])
    a1.reset(seed=5)
    np.testing.assert_array_equal(a1.act(), x1)
    for action in (x1, y, clean):
        assert env.action_space.contains(action)


def test_expert_without_noise_is_deterministic():
    env = env_for("push")
    env.reset(seed=1)
    np.testing.assert_array_equal(make_expert(env, seed=1).act(), make_expert(env, seed=2).act())


def test_expert_accepts_a_gymnasium_wrapped_env():
    env = gym.make(GYM_IDS["reach"], cameras=())
    try:
        expert = make_expert(env)
        obs, _ = env.reset(seed=0)
        for _ in range(100):
            obs, _, terminated, truncated, info = env.step(expert.act(obs))
            if terminated or truncated:
                break
        assert info["success"]
    finally:
        env.close()


def test_expert_refuses_joint_action_space():
    env = ProtegeEnv(EnvSpec.make("lift", cameras=(), action_space="joint"))
    with pytest.raises(SimError, match="ee_delta"):
        make_expert(env)


def test_unknown_task_is_a_sim_error():
    class Fake:
        class task:
            name = "juggle"

    with pytest.raises(SimError, match="juggle"):
        make_expert(Fake())


# The full evaluation: >= 95% over 100 seeds per task and robot (noise-free), >= 90% with demo noise.
@pytest.mark.slow
@pytest.mark.parametrize("robot", ROBOTS)
@pytest.mark.parametrize("task", ALL_TASKS)
def test_expert_success_rate_100_seeds(task, robot):
    assert success_rate(task, robot, range(1000, 1100)) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("robot", ROBOTS)
@pytest.mark.parametrize("task", ALL_TASKS)
def test_expert_success_rate_with_demo_noise_100_seeds(task, robot):
    assert success_rate(task, robot, range(2000, 2100), noise=DEMO_NOISE) >= 0.9


@pytest.mark.parametrize("wrist_offset", (-0.05, 0.05))
def test_slot_push_turn_does_not_split_at_home(wrist_offset):
    """Lining up for the forward push, the wrist turns the same way from a little either side of home:
    the two headings that fit are equally far from home there, and picking the nearer one would give
    neighbouring states opposite labels (a learner averages them to no turn at all)."""
    env = env_for("slot_push")
    env.reset(seed=0)
    wall_x, slot_y = env.task.slot_center(env.data)
    env.task.set_object_pose(env.data, 0, np.array([wall_x - 0.1, slot_y, CUBE_HALF]))  # in line: push forward
    env.data.qpos[env.arm_qpos_adr[-1]] += wrist_offset
    mujoco.mj_forward(env.model, env.data)
    turn = make_expert(env).act()[5]
    assert turn < -0.05  # towards home - pi/2, whichever side of home the wrist is on


def test_slot_push_alignment_ends_inside_the_forward_tolerance():
    """A sideways push that lines the block up with the slot runs on past the threshold where the
    expert would choose to push forward from scratch: stopping there would leave the block where
    the two plans (90 degrees apart) split, and a learner's small error would land it on either side."""
    env = env_for("slot_push")
    env.reset(seed=0)
    expert = make_expert(env)
    for _ in range(env.max_steps):  # drive until the expert is pushing the block sideways
        ee, rot = env.ee_pose()
        block = np.array(env.task.object_pos(env.data, 0))
        slot_y = env.task.slot_center(env.data)[1]
        u = np.array([0.0, np.sign(slot_y - block[1])])
        if expert._in_push_pose(block, u, ee, rot) and abs(block[1] - slot_y) > 0.01:
            break
        env.step(expert.act())
    else:
        pytest.fail("the expert never pushed the block sideways")
    shift = (abs(block[1] - slot_y) - 0.005) * u[1]  # move the slot (and goal) to 5 mm from the block
    env.data.mocap_pos[:2, 1] -= shift
    mujoco.mj_forward(env.model, env.data)
    move = expert.act()[:3]
    assert move[1] * u[1] > 0.002  # still pushing sideways, towards the slot line
    assert move[2] < 0.003  # not rising to go round the block


def test_push_off_the_line_steers_back_slower_and_does_not_go_round():
    """A pusher a little off the push line keeps pushing: the label steers it back and advances the
    slower the further off it is. A pass/fail box there (the expert used to rise and go round past
    12 mm) gives neighbouring states labels 90 degrees apart, which a learner blurs into a stall."""
    env = env_for("push")
    env.reset(seed=0)
    expert = make_expert(env)
    goal = env.task.goal_pos(env.data)[:2]
    for _ in range(env.max_steps):  # drive until the expert is pushing, well short of the goal
        ee, rot = env.ee_pose()
        block = np.array(env.task.object_pos(env.data, 0))
        u, dist = expert._push_direction(block, goal)
        if expert._in_push_pose(block, u, ee, rot) and dist > 0.05:
            break
        env.step(expert.act())
    else:
        pytest.fail("the expert never pushed the block")
    along = float((ee[:2] - block[:2]) @ u)
    advance, steer = [], []
    for offset in (0.0, 0.011, 0.013, 0.018):
        xy = block[:2]
        for _ in range(20):  # place the block so that the pusher is `offset` off the line from it to the goal
            u = expert._push_direction(xy, goal)[0]
            n = np.array([-u[1], u[0]])
            xy = ee[:2] - along * u - offset * n
        env.task.set_object_pose(env.data, 0, np.array([*xy, block[2]]))
        mujoco.mj_forward(env.model, env.data)
        move = expert.act()[:3]
        assert move[2] < 0.003, f"rises at {offset * 1e3:.0f} mm off the line"
        advance.append(float(move[:2] @ u))
        steer.append(float(move[:2] @ n))
    assert advance[0] > 0.004 and advance[0] >= advance[1] > advance[2] > advance[3] > 0.0
    assert steer[0] == pytest.approx(0.0, abs=1e-3) and all(s < -0.003 for s in steer[1:])
