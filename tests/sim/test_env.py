"""The gymnasium env: observations, determinism, state save/restore, controllers, termination."""

import gymnasium as gym
import numpy as np
import pytest

from protege.sim import GYM_IDS, TASKS, EnvSpec, ProtegeEnv


@pytest.fixture(scope="module")
def lift() -> ProtegeEnv:
    return ProtegeEnv(EnvSpec.make("lift", cameras=()))


def _rollout(env: ProtegeEnv, seed: int, steps: int) -> list[dict[str, np.ndarray]]:
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(seed).uniform(env.action_space.low, env.action_space.high, (steps, 7))
    out = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
    return out


@pytest.mark.parametrize("task", sorted(TASKS))
def test_observation_matches_space(task: str) -> None:
    env = ProtegeEnv(EnvSpec.make(task, cameras=()))
    obs, info = env.reset(seed=0)
    assert set(obs) == set(env.observation_space.spaces)
    for key, space in env.observation_space.spaces.items():
        assert obs[key].shape == space.shape, key
    assert info["success"] is False
    assert ("goal_pos" in obs) == TASKS[task].has_goal


def test_gymnasium_make_builds_every_task() -> None:
    for task, gym_id in GYM_IDS.items():
        env = gym.make(gym_id, cameras=())
        assert env.unwrapped.task.name == task
        env.close()


def test_same_seed_and_actions_give_identical_trajectories(lift: ProtegeEnv) -> None:
    a, b = _rollout(lift, 3, 40), _rollout(lift, 3, 40)
    for oa, ob in zip(a, b):
        for key in oa:
            np.testing.assert_array_equal(oa[key], ob[key])


def test_seeds_randomise_the_initial_state(lift: ProtegeEnv) -> None:
    starts = {tuple(np.round(lift.reset(seed=s)[0]["object_pos"], 6)) for s in range(5)}
    assert len(starts) == 5


def test_set_state_restores_the_exact_continuation(lift: ProtegeEnv) -> None:
    lift.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(15):
        lift.step(rng.uniform(lift.action_space.low, lift.action_space.high))
    state = lift.get_state()
    actions = rng.uniform(lift.action_space.low, lift.action_space.high, (20, 7))
    first = [lift.step(a)[0] for a in actions]
    lift.reset(seed=99)  # somewhere else entirely
    lift.set_state(state)
    second = [lift.step(a)[0] for a in actions]
    for oa, ob in zip(first, second):
        for key in oa:
            np.testing.assert_array_equal(oa[key], ob[key])


def test_ee_quat_keeps_its_sign_where_the_gripper_points_down(lift: ProtegeEnv) -> None:
    """At home the gripper points down (w = 0): scripted lift frames once flipped sign back and forth."""
    from protege.sim.experts import make_expert

    expert = make_expert(lift)
    obs, _ = lift.reset(seed=0)
    expert.reset(seed=0)
    quats = [obs["ee_quat"]]
    for _ in range(20):
        obs, *_ = lift.step(expert.act(obs))
        quats.append(obs["ee_quat"])
    assert np.abs(np.array(quats)[:, 0]).min() < 0.05  # the case that flipped
    assert np.abs(np.diff(quats, axis=0)).max() < 0.2
    lift.set_state(lift.get_state())
    np.testing.assert_array_equal(lift.observe()[0]["ee_quat"], quats[-1])  # a function of the state alone


def test_ee_delta_moves_the_end_effector_along_each_axis(lift: ProtegeEnv) -> None:
    for axis in range(3):
        obs, _ = lift.reset(seed=0)
        start = obs["ee_pos"].copy()
        action = np.zeros(7)
        action[axis] = 0.01
        for _ in range(10):
            obs, *_ = lift.step(action)
        for _ in range(5):
            obs, *_ = lift.step(np.zeros(7))
        moved = obs["ee_pos"] - start
        assert moved[axis] == pytest.approx(0.1, abs=0.01)
        assert np.abs(np.delete(moved, axis)).max() < 0.01


def test_ee_delta_rotation_turns_about_the_base_z_axis(lift: ProtegeEnv) -> None:
    lift.reset(seed=0)
    _, rot0 = lift.ee_pose()
    for _ in range(6):
        lift.step(np.array([0, 0, 0, 0, 0, 0.05, 0]))
    for _ in range(5):
        lift.step(np.zeros(7))
    _, rot1 = lift.ee_pose()
    x0, x1 = rot0[:, 0], rot1[:, 0]
    yaw = np.arctan2(np.cross(x0, x1)[2], x0 @ x1)
    assert yaw == pytest.approx(0.3, abs=0.03)
    assert rot1[:, 2] @ np.array([0, 0, -1.0]) > 0.99  # still pointing down


def test_ee_delta_respects_joint_limits(lift: ProtegeEnv) -> None:
    lift.reset(seed=0)
    for _ in range(150):  # push far beyond the reachable workspace
        lift.step(np.array([0.02, 0.02, 0.02, 0.1, 0.1, 0.1, 0.0]))
    q = lift.data.qpos[lift.arm_qpos_adr]
    low, high = lift.model.jnt_range[[lift.model.joint("robot/" + j).id for j in lift.robot.arm_joints]].T
    assert np.all(q >= low - 0.02) and np.all(q <= high + 0.02)


def test_joint_controller_tracks_joint_targets() -> None:
    env = ProtegeEnv(EnvSpec.make("reach", cameras=(), action_space="joint"))
    obs, _ = env.reset(seed=0)
    target = obs["joint_pos"] + np.array([0.3, -0.2, 0.2, 0.4, -0.3, 0.5])
    for _ in range(30):
        obs, *_ = env.step(np.append(target, 0.0))
    np.testing.assert_allclose(obs["joint_pos"], target, atol=0.01)


def test_gripper_command_closes_and_opens(lift: ProtegeEnv) -> None:
    obs, _ = lift.reset(seed=0)
    assert obs["gripper"][0] < 0.05
    for _ in range(15):
        obs, *_ = lift.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    assert obs["gripper"][0] > 0.95
    for _ in range(15):
        obs, *_ = lift.step(np.zeros(7))
    assert obs["gripper"][0] < 0.05


def test_episode_truncates_at_the_time_limit() -> None:
    env = ProtegeEnv(EnvSpec.make("reach", cameras=()))
    env.reset(seed=0)
    for step in range(1, env.max_steps + 1):
        _, _, terminated, truncated, _ = env.step(np.zeros(7))
        assert not terminated
        assert truncated == (step == env.max_steps)
    assert env.max_steps == int(TASKS["reach"].time_limit * 20)


def test_reaching_the_target_terminates_with_success() -> None:
    env = ProtegeEnv(EnvSpec.make("reach", cameras=()))
    obs, _ = env.reset(seed=2)
    for _ in range(env.max_steps):
        delta = np.clip(obs["goal_pos"] - obs["ee_pos"], -0.02, 0.02)
        obs, reward, terminated, truncated, info = env.step(np.append(np.append(delta, np.zeros(3)), 0))
        if terminated or truncated:
            break
    assert terminated and info["success"] and reward > 0.5


def test_home_data_is_scratch_physics_at_home(lift: ProtegeEnv) -> None:
    lift.reset(seed=0)
    before = lift.get_state()
    home = lift.home_data()
    closed = lift.home_data(gripper=1.0, settle_steps=200)
    assert np.array_equal(lift.get_state(), before)  # the env's own state is untouched
    adr = lift.arm_qpos_adr
    assert np.allclose(closed.qpos[adr], home.qpos[adr])  # the arm held still while the fingers closed
    grip = lift.model.actuator("robot/" + lift.robot.gripper.actuator).id
    assert (home.ctrl[grip], closed.ctrl[grip]) == (lift.robot.gripper.open, lift.robot.gripper.closed)
    assert np.allclose(home.site_xpos[lift.ee_site], lift.ee_pose()[0])  # reset puts the arm at home too


@pytest.mark.parametrize("where", ["beyond the edge", "below the top"])
def test_an_object_that_leaves_the_table_ends_the_episode_as_a_failure(where: str) -> None:
    env = ProtegeEnv(EnvSpec.make(task="lift", cameras=()), terminate_on_success=False)  # as the teleop windows run it
    env.reset(seed=0)
    _, _, terminated, _, info = env.step(np.zeros(7))
    assert not terminated and not info["object_lost"], "a cube resting on the table is not lost"
    x, y, z = env.task.object_pos(env.data, 0)
    env.task.set_object_pose(env.data, 0, np.array([0.9, y, z] if where == "beyond the edge" else [x, y, -0.1]))
    _, _, terminated, truncated, info = env.step(np.zeros(7))
    assert terminated and info["object_lost"] and not info["success"] and not truncated
    env.close()
