"""Action spaces: end-effector deltas solved by differential IK (mink), or absolute joint targets.

Both map an action to position-actuator controls for the arm and the gripper. The gripper command
is in [0, 1] (0 open, 1 closed) in both spaces.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import daqp
import mink
import mujoco
import numpy as np

from protege.sim.errors import SimError
from protege.sim.robot import RobotSpec
from protege.sim.scene import ROBOT_PREFIX, build_robot_only

ACTION_SPACES = ("ee_delta", "joint")
# Largest end-effector step per control tick: metres for translation, radians for rotation.
EE_DELTA_SCALE = (0.02, 0.02, 0.02, 0.1, 0.1, 0.1)


class Controller(ABC):
    """Turns an action into arm actuator controls, given the measured arm joint positions."""

    name: ClassVar[str]

    def __init__(self, robot: RobotSpec, arm_ctrl_range: np.ndarray) -> None:
        self.robot = robot
        self.ctrl_low, self.ctrl_high = arm_ctrl_range[:, 0], arm_ctrl_range[:, 1]

    @property
    def action_dim(self) -> int:
        return self.action_low.shape[0]

    @property
    @abstractmethod
    def action_low(self) -> np.ndarray: ...

    @property
    @abstractmethod
    def action_high(self) -> np.ndarray: ...

    @abstractmethod
    def arm_targets(self, q_arm: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Joint position targets for the arm actuators."""


class JointController(Controller):
    """Action = absolute arm joint targets (radians) + gripper command."""

    name = "joint"

    @property
    def action_low(self) -> np.ndarray:
        return np.append(self.ctrl_low, 0.0)

    @property
    def action_high(self) -> np.ndarray:
        return np.append(self.ctrl_high, 1.0)

    def arm_targets(self, q_arm: np.ndarray, action: np.ndarray) -> np.ndarray:
        return np.clip(action[:-1], self.ctrl_low, self.ctrl_high)


class EEDeltaController(Controller):
    """Action = (dx, dy, dz, droll, dpitch, dyaw, gripper) in the robot base frame, per control step.

    The rotation delta is an axis-angle vector applied on the left of the current end-effector
    orientation. One differential-IK step (mink, QP with joint limits) turns the pose target into
    joint targets; arms with fewer than 6 joints track position first (spec `orientation_cost`).
    """

    name = "ee_delta"

    def __init__(self, robot: RobotSpec, arm_ctrl_range: np.ndarray) -> None:
        super().__init__(robot, arm_ctrl_range)
        model = build_robot_only(robot)
        self._qadr = np.array([model.joint(ROBOT_PREFIX + j).qposadr[0] for j in robot.arm_joints])
        self._configuration = mink.Configuration(model)
        self._configuration.update_from_keyframe(ROBOT_PREFIX + robot.home_keyframe)
        self._q = self._configuration.q.copy()
        self._ee_site = model.site("ee").id
        self._ee_task = mink.FrameTask(
            "ee", "site", position_cost=1.0, orientation_cost=robot.orientation_cost, lm_damping=1e-3
        )
        self._tasks: list[mink.Task] = [self._ee_task]
        if robot.dof > 6:  # redundant arms: pull the null space towards home
            posture = mink.PostureTask(model, cost=1e-3)
            posture.set_target(self._q.copy())
            self._tasks.append(posture)
        self._limit = mink.ConfigurationLimit(model)
        self._scale = np.asarray(EE_DELTA_SCALE)

    @property
    def action_low(self) -> np.ndarray:
        return np.append(-self._scale, 0.0)

    @property
    def action_high(self) -> np.ndarray:
        return np.append(self._scale, 1.0)

    def arm_targets(self, q_arm: np.ndarray, action: np.ndarray) -> np.ndarray:
        delta = np.clip(action[:6], -self._scale, self._scale)
        self._q[self._qadr] = q_arm
        self._configuration.update(self._q)
        data = self._configuration.data
        quat_now, turn, target = np.empty(4), np.empty(4), np.empty(7)
        mujoco.mju_mat2Quat(quat_now, data.site_xmat[self._ee_site])
        angle = float(np.linalg.norm(delta[3:]))
        mujoco.mju_axisAngle2Quat(turn, delta[3:] / angle if angle > 0 else np.array([0.0, 0.0, 1.0]), angle)
        mujoco.mju_mulQuat(target[:4], turn, quat_now)
        target[4:] = data.site_xpos[self._ee_site] + delta[:3]
        self._ee_task.set_target(mink.SE3(target))
        return np.clip(q_arm + self._solve()[self._qadr], self.ctrl_low, self.ctrl_high)

    def _solve(self) -> np.ndarray:
        """One step of mink's IK QP, handed to daqp directly (what ``mink.solve_ik`` does, minus
        the qpsolvers dispatch, which costs a third of the solve at this size)."""
        cfg = self._configuration
        hessian, linear = np.zeros((cfg.nv, cfg.nv)), np.zeros(cfg.nv)
        for task in self._tasks:
            objective = task.compute_qp_objective(cfg)
            hessian += objective.H
            linear += objective.c
        hessian[np.diag_indices(cfg.nv)] += 1e-12
        limits = self._limit.compute_qp_inequalities(cfg, 1.0)
        n = limits.h.shape[0]
        dq, _, exitflag, _ = daqp.solve(hessian, linear, limits.G, limits.h, np.full(n, -1e30), np.zeros(n, np.int32))
        if exitflag < 0:  # infeasible (should not happen with box limits): hold still
            return np.zeros(cfg.nv)
        return dq


def make_controller(name: str, robot: RobotSpec, arm_ctrl_range: np.ndarray) -> Controller:
    controllers: dict[str, type[Controller]] = {"ee_delta": EEDeltaController, "joint": JointController}
    if name not in controllers:
        raise SimError(f"unknown action space {name!r} (choose from {', '.join(ACTION_SPACES)})")
    return controllers[name](robot, arm_ctrl_range)


def gripper_opening_fraction(model: mujoco.MjModel, data: mujoco.MjData, actuator: int, open_ctrl: float,
                             closed_ctrl: float) -> float:
    """Measured gripper state in [0, 1] (0 open, 1 closed) from the actuator's length.

    Position-like actuators (affine bias) hold length = gain * ctrl / -bias1, which maps the spec's
    open/closed controls to lengths; the measured length is placed between them.
    """
    gain, bias = model.actuator_gainprm[actuator, 0], model.actuator_biasprm[actuator, 1]
    to_length = gain / -bias if bias != 0 else 1.0
    length_open, length_closed = open_ctrl * to_length, closed_ctrl * to_length
    frac = (data.actuator_length[actuator] - length_open) / (length_closed - length_open)
    return min(max(float(frac), 0.0), 1.0)
