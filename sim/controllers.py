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
from protege.sim.robot import RobotSpec, load_robot_model
from protege.sim.scene import ROBOT_PREFIX, build_robot_only

ACTION_SPACES = ("ee_delta", "joint")
# Largest end-effector step per control tick: metres for translation, radians for rotation.
EE_DELTA_SCALE = (0.02, 0.02, 0.02, 0.1, 0.1, 0.1)
# How far the commanded end-effector pose may run ahead of the measured one (no wind-up when blocked).
MAX_LEAD_POS = 0.04
MAX_LEAD_ROT = 0.3
_Z = np.array([0.0, 0.0, 1.0])


class Controller(ABC):
    """Turns an action into arm actuator controls, given the measured arm joint positions."""

    name: ClassVar[str]
    command_size: ClassVar[int] = 0  # controller state kept in MjData.userdata, so it is saved with the sim state

    def __init__(self, robot: RobotSpec, arm_ctrl_range: np.ndarray) -> None:
        self.robot = robot
        self.arm_ctrl_range = arm_ctrl_range
        self.ctrl_low, self.ctrl_high = arm_ctrl_range[:, 0], arm_ctrl_range[:, 1]

    @staticmethod
    @abstractmethod
    def bounds(arm_ctrl_range: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The lowest and highest action, given the arm actuators' control ranges."""

    @property
    def action_dim(self) -> int:
        return self.action_low.shape[0]

    @property
    def action_low(self) -> np.ndarray:
        return self.bounds(self.arm_ctrl_range)[0]

    @property
    def action_high(self) -> np.ndarray:
        return self.bounds(self.arm_ctrl_range)[1]

    def reset_command(self, q_arm: np.ndarray, command: np.ndarray) -> None:
        """Initialise the controller state at the start of an episode."""

    @abstractmethod
    def arm_targets(self, q_arm: np.ndarray, action: np.ndarray, command: np.ndarray) -> np.ndarray:
        """Joint position targets for the arm actuators; ``command`` is the controller state (updated in place)."""


class JointController(Controller):
    """Action = absolute arm joint targets (radians) + gripper command."""

    name = "joint"

    @staticmethod
    def bounds(arm_ctrl_range: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.append(arm_ctrl_range[:, 0], 0.0), np.append(arm_ctrl_range[:, 1], 1.0)

    def arm_targets(self, q_arm: np.ndarray, action: np.ndarray, command: np.ndarray) -> np.ndarray:
        return np.clip(action[:-1], self.ctrl_low, self.ctrl_high)


class EEDeltaController(Controller):
    """Action = (dx, dy, dz, droll, dpitch, dyaw, gripper) in the robot base frame, per control step.

    The rotation delta is an axis-angle vector applied on the left of the current end-effector
    orientation. The deltas move a commanded pose (which may lead the measured pose by at most
    MAX_LEAD, so slow arms catch up and blocked arms do not wind up). One differential-IK step (mink, QP with joint limits) turns the pose target into
    joint targets; arms with fewer than 6 joints track position first (spec `orientation_cost`).
    """

    name = "ee_delta"
    command_size = 7  # commanded end-effector pose: quaternion wxyz, position

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
        self._lower: np.ndarray | None = None  # daqp's one-sided constraint bounds, reused every step
        self._sense: np.ndarray | None = None

    @staticmethod
    def bounds(arm_ctrl_range: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = np.asarray(EE_DELTA_SCALE)
        return np.append(-scale, 0.0), np.append(scale, 1.0)

    def reset_command(self, q_arm: np.ndarray, command: np.ndarray) -> None:
        """Start the commanded pose at the measured end-effector pose."""
        self._update(q_arm)
        data = self._configuration.data
        mujoco.mju_mat2Quat(command[:4], data.site_xmat[self._ee_site])
        command[4:] = data.site_xpos[self._ee_site]

    def arm_targets(self, q_arm: np.ndarray, action: np.ndarray, command: np.ndarray) -> np.ndarray:
        delta = np.clip(action[:6], -self._scale, self._scale)
        self._update(q_arm)
        data = self._configuration.data
        pos_now = data.site_xpos[self._ee_site]
        quat_now, turn = np.empty(4), np.empty(4)
        mujoco.mju_mat2Quat(quat_now, data.site_xmat[self._ee_site])
        # Integrate the commanded pose, but never let it lead the arm by more than MAX_LEAD.
        lead = command[4:] + delta[:3] - pos_now
        command[4:] = pos_now + lead * min(1.0, MAX_LEAD_POS / max(float(np.linalg.norm(lead)), 1e-12))
        angle = float(np.linalg.norm(delta[3:]))
        mujoco.mju_axisAngle2Quat(turn, delta[3:] / angle if angle > 0 else _Z, angle)
        mujoco.mju_mulQuat(command[:4], turn, command[:4].copy())
        _limit_rotation_lead(command[:4], quat_now, MAX_LEAD_ROT)
        self._ee_task.set_target(mink.SE3(command))
        return np.clip(q_arm + self._solve()[self._qadr], self.ctrl_low, self.ctrl_high)

    def _update(self, q_arm: np.ndarray) -> None:
        self._q[self._qadr] = q_arm
        self._configuration.update(self._q)

    def _solve(self) -> np.ndarray:
        """One step of mink's IK QP, handed to daqp directly (what ``mink.solve_ik`` does, minus
        the qpsolvers dispatch, which costs a third of the solve at this size)."""
        cfg = self._configuration
        hessian, linear = np.zeros((cfg.nv, cfg.nv)), np.zeros(cfg.nv)
        for task in self._tasks:
            objective = task.compute_qp_objective(cfg)
            hessian += objective.H
            linear += objective.c
        limits = self._limit.compute_qp_inequalities(cfg, 1.0)
        if self._lower is None or self._lower.shape != limits.h.shape:
            self._lower, self._sense = np.full(limits.h.shape, -1e30), np.zeros(limits.h.shape, np.int32)
        dq, _, exitflag, _ = daqp.solve(hessian, linear, limits.G, limits.h, self._lower, self._sense)
        if exitflag < 0:  # infeasible (should not happen with box limits): hold still
            return np.zeros(cfg.nv)
        return dq


CONTROLLERS: dict[str, type[Controller]] = {"ee_delta": EEDeltaController, "joint": JointController}


def controller_class(name: str) -> type[Controller]:
    if name not in CONTROLLERS:
        raise SimError(f"unknown action space {name!r} (choose from {', '.join(ACTION_SPACES)})")
    return CONTROLLERS[name]


def make_controller(name: str, robot: RobotSpec, arm_ctrl_range: np.ndarray) -> Controller:
    return controller_class(name)(robot, arm_ctrl_range)


def action_scale(name: str, robot: RobotSpec) -> tuple[float, ...]:
    """The largest action of action space ``name`` on ``robot``, per dimension (what datasets record as scale)."""
    model = load_robot_model(robot).compile()
    ctrl_range = np.array([model.actuator(a).ctrlrange for a in robot.arm_actuators])
    return tuple(float(x) for x in controller_class(name).bounds(ctrl_range)[1])


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


def _limit_rotation_lead(command: np.ndarray, current: np.ndarray, max_angle: float) -> None:
    """Pull the commanded orientation back towards the current one if they differ by more than max_angle."""
    diff, inv = np.empty(4), np.empty(4)
    mujoco.mju_negQuat(inv, current)
    mujoco.mju_mulQuat(diff, command, inv)
    axis_angle = np.empty(3)
    mujoco.mju_quat2Vel(axis_angle, diff, 1.0)
    angle = float(np.linalg.norm(axis_angle))
    if angle > max_angle:
        mujoco.mju_axisAngle2Quat(diff, axis_angle / angle, max_angle)
        mujoco.mju_mulQuat(command, diff, current)
