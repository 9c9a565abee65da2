"""The ee_delta controller's direct IK poses mink's QP: the same joint targets as mink's task objects, and as
the controller before it kept its arrays between steps, on random states of the built-in arm, Panda and
SO-ARM100."""

from __future__ import annotations

import mink
import mujoco
import numpy as np
import pytest

import protege.sim  # noqa: F401  (picks the headless GL backend before mujoco loads)
from protege.sim import EnvSpec, ProtegeEnv
from protege.sim.controllers import EE_DELTA_SCALE, MAX_LEAD_POS, MAX_LEAD_ROT, _limit_rotation_lead, make_controller
from protege.sim.robot import menagerie_dir

needs_menagerie = pytest.mark.skipif(menagerie_dir() is None, reason="Menagerie robots not found (PROTEGE_MENAGERIE)")
ROBOTS = ("protege_arm", pytest.param("panda", marks=needs_menagerie), pytest.param("so_arm100", marks=needs_menagerie))
TOLERANCE = 1e-12  # radians; on the development machine the two agree bit for bit


class _Reference:
    """The ee_delta controller as it was before issue 34 (numpy arithmetic, mink's objects every step)."""

    def __init__(self, controller) -> None:
        self.c = controller._solver  # a _MinkIK
        self.scale = np.asarray(EE_DELTA_SCALE)
        self.low, self.high = controller.ctrl_low, controller.ctrl_high

    def arm_targets(self, q_arm: np.ndarray, action: np.ndarray, command: np.ndarray) -> np.ndarray:
        delta = np.clip(action[:6], -self.scale, self.scale)
        pos_now, xmat = self.c.update(q_arm)
        quat_now, turn = np.empty(4), np.empty(4)
        mujoco.mju_mat2Quat(quat_now, xmat)
        lead = command[4:] + delta[:3] - pos_now
        command[4:] = pos_now + lead * min(1.0, MAX_LEAD_POS / max(float(np.linalg.norm(lead)), 1e-12))
        angle = float(np.linalg.norm(delta[3:]))
        mujoco.mju_axisAngle2Quat(turn, delta[3:] / angle if angle > 0 else np.array([0.0, 0.0, 1.0]), angle)
        mujoco.mju_mulQuat(command[:4], turn, command[:4].copy())
        _limit_rotation_lead(command[:4], quat_now, MAX_LEAD_ROT)
        return np.clip(q_arm + self.c.solve(command), self.low, self.high)


def _states(env: ProtegeEnv, rng: np.random.Generator, count: int):
    """Arm configurations (home with the task's objects, and random within the joint limits) with random actions
    of up to three times the action bounds, a few in a row from each."""
    limits = np.clip(env.arm_joint_range, -3.0, 3.0)
    for trial in range(count):
        env.reset(seed=trial)
        q = env.data.qpos[env.arm_qpos_adr].copy() if trial % 2 == 0 else rng.uniform(limits[:, 0], limits[:, 1])
        actions = [rng.uniform(env.action_space.low, env.action_space.high) * rng.choice([0.1, 1.0, 3.0])
                   for _ in range(3)]
        yield q, actions


@pytest.mark.parametrize("robot", ROBOTS)
def test_direct_ik_gives_mink_joint_targets(robot: str) -> None:
    env = ProtegeEnv(EnvSpec.make("lift", robot=robot, cameras=()))
    ctrl_range = env.model.actuator_ctrlrange[[env.model.actuator(f"robot/{a}").id for a in env.robot.arm_actuators]]
    direct = make_controller("ee_delta", env.robot, ctrl_range, ik="direct")
    via_mink = make_controller("ee_delta", env.robot, ctrl_range, ik="mink")
    reference = _Reference(make_controller("ee_delta", env.robot, ctrl_range, ik="mink"))
    assert (direct.ik, via_mink.ik) == ("direct", "mink")
    rng = np.random.default_rng(34)
    for q, actions in _states(env, rng, 40):
        commands = [np.empty(7) for _ in range(3)]
        direct.reset_command(q, commands[0])
        via_mink.reset_command(q, commands[1])
        commands[2][:] = commands[1]
        np.testing.assert_allclose(commands[0], commands[1], rtol=0, atol=TOLERANCE)
        for action in actions:
            targets = [direct.arm_targets(q, action, commands[0]), via_mink.arm_targets(q, action, commands[1]),
                       reference.arm_targets(q, action, commands[2])]
            for other, command in zip(targets[1:], commands[1:], strict=True):
                np.testing.assert_allclose(targets[0], other, rtol=0, atol=TOLERANCE)
                np.testing.assert_allclose(commands[0], command, rtol=0, atol=TOLERANCE)
            q = q + rng.normal(0.0, 0.01, q.shape)


def test_mink_stays_an_option_of_the_env() -> None:
    assert ProtegeEnv(EnvSpec.make("reach", cameras=()), ik="mink").controller.ik == "mink"
    assert ProtegeEnv(EnvSpec.make("reach", cameras=())).controller.ik == "direct"
    assert isinstance(mink.Configuration, type)  # mink is still what the option runs


def test_the_idle_action_holds_the_arm_and_keeps_the_gripper():
    from protege.sim.controllers import idle_action

    action = np.array([0.3, -0.2, 0.1, 0.0, 0.05, 0.0, 1.0])
    assert idle_action("ee_delta", action).tolist() == [0, 0, 0, 0, 0, 0, 1.0]  # no motion, still closed
    joints = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.0])
    assert idle_action("joint", joints).tolist() == joints.tolist()  # the same targets
