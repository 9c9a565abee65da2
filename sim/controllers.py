"""Action spaces: end-effector deltas solved by differential IK (mink), or absolute joint targets.

Both map an action to position-actuator controls for the arm and the gripper. The gripper command
is in [0, 1] (0 open, 1 closed) in both spaces.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import daqp
import mink
import mujoco
import numpy as np

from protege.sim.errors import SimError
from protege.sim.robot import RobotSpec, load_robot_model
from protege.sim.scene import ROBOT_PREFIX, build_robot_only

ACTION_SPACES = ("ee_delta", "joint")
# Who builds the ee_delta controller's IK QP: "direct" (arrays kept between steps) or "mink" (its task
# objects, every step). They pose the same QP and agree bit for bit; DEFAULT_IK is the one envs use.
IK_SOLVERS = ("direct", "mink")
DEFAULT_IK = "direct"
# The IK's costs: end-effector position (orientation: the robot spec's), Levenberg-Marquardt damping, and
# for arms with more than 6 joints a posture cost towards home; joint limits approached at LIMIT_GAIN of the
# remaining distance per step (mink.ConfigurationLimit's default).
POSITION_COST = 1.0
LM_DAMPING = 1e-3
POSTURE_COST = 1e-3
LIMIT_GAIN = 0.95
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
    MAX_LEAD, so slow arms catch up and blocked arms do not wind up). One differential-IK step (a QP with
    joint limits, solved by daqp) turns the pose target into joint targets; arms with fewer than 6 joints
    track position first (spec `orientation_cost`). ``ik`` picks who builds the QP (:data:`IK_SOLVERS`):
    ``direct`` keeps its matrices between steps, ``mink`` builds mink's task and limit objects every step;
    both pose the same QP and give the same joint targets.
    """

    name = "ee_delta"
    command_size = 7  # commanded end-effector pose: quaternion wxyz, position

    def __init__(self, robot: RobotSpec, arm_ctrl_range: np.ndarray, ik: str | None = None) -> None:
        super().__init__(robot, arm_ctrl_range)
        ik = DEFAULT_IK if ik is None else ik
        if ik not in IK_SOLVERS:
            raise SimError(f"unknown IK solver {ik!r} (choose from {', '.join(IK_SOLVERS)})")
        model = build_robot_only(robot)
        qadr = np.array([model.joint(ROBOT_PREFIX + j).qposadr[0] for j in robot.arm_joints])
        if ik == "direct" and not _DirectIK.handles(model):
            ik = "mink"
        self.ik = ik
        self._solver: _DirectIK | _MinkIK = (_DirectIK if ik == "direct" else _MinkIK)(model, robot, qadr)
        self._low_list, self._high_list = self.ctrl_low.tolist(), self.ctrl_high.tolist()
        self._vec, self._axis_angle = np.empty(3), np.empty(3)
        self._quat_now, self._turn, self._quat_prev, self._diff, self._inv = (np.empty(4) for _ in range(5))

    @staticmethod
    def bounds(arm_ctrl_range: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scale = np.asarray(EE_DELTA_SCALE)
        return np.append(-scale, 0.0), np.append(scale, 1.0)

    def reset_command(self, q_arm: np.ndarray, command: np.ndarray) -> None:
        """Start the commanded pose at the measured end-effector pose."""
        xpos, xmat = self._solver.update(q_arm)
        mujoco.mju_mat2Quat(command[:4], xmat)
        command[4:] = xpos

    def arm_targets(self, q_arm: np.ndarray, action: np.ndarray, command: np.ndarray) -> np.ndarray:
        # The arithmetic of the numpy version this replaces, in the same order: elementwise steps on Python
        # floats (IEEE doubles, as numpy's), every norm through ndarray.dot (BLAS) as np.linalg.norm does.
        pos_now, xmat = self._solver.update(q_arm)
        quat_now, turn, vec = self._quat_now, self._turn, self._vec
        mujoco.mju_mat2Quat(quat_now, xmat)
        a, c, p = action.tolist(), command.tolist(), pos_now.tolist()
        # np.clip(action[:6], -s, s) as numpy computes it (see _clip; -s < s, so below -s gives -s)
        d = [(x if x < s else s) if x > -s else -s for x, s in zip(a, EE_DELTA_SCALE)]  # noqa: FURB136
        # Integrate the commanded pose, but never let it lead the arm by more than MAX_LEAD.
        lead = [c[4] + d[0] - p[0], c[5] + d[1] - p[1], c[6] + d[2] - p[2]]
        vec[:] = lead
        factor = min(1.0, MAX_LEAD_POS / max(math.sqrt(vec.dot(vec)), 1e-12))
        position = [p[0] + lead[0] * factor, p[1] + lead[1] * factor, p[2] + lead[2] * factor]
        vec[:] = d[3:]
        angle = math.sqrt(vec.dot(vec))
        if angle > 0:
            vec[0], vec[1], vec[2] = d[3] / angle, d[4] / angle, d[5] / angle
            mujoco.mju_axisAngle2Quat(turn, vec, angle)
        else:
            mujoco.mju_axisAngle2Quat(turn, _Z, angle)
        self._quat_prev[:] = c[:4]
        orientation = command[:4]
        mujoco.mju_mulQuat(orientation, turn, self._quat_prev)
        self._limit_rotation_lead(orientation, quat_now)
        command[4:] = position
        q, step = q_arm.tolist(), self._solver.solve(command).tolist()
        return np.array([_clip(x + dx, lo, hi) for x, dx, lo, hi in zip(q, step, self._low_list, self._high_list,
                                                                          strict=True)])

    def _limit_rotation_lead(self, command: np.ndarray, current: np.ndarray) -> None:
        """:func:`_limit_rotation_lead` with MAX_LEAD_ROT, into arrays kept between steps."""
        diff, inv, axis_angle = self._diff, self._inv, self._axis_angle
        mujoco.mju_negQuat(inv, current)
        mujoco.mju_mulQuat(diff, command, inv)
        mujoco.mju_quat2Vel(axis_angle, diff, 1.0)
        angle = math.sqrt(axis_angle.dot(axis_angle))
        if angle > MAX_LEAD_ROT:
            mujoco.mju_axisAngle2Quat(diff, axis_angle / angle, MAX_LEAD_ROT)
            mujoco.mju_mulQuat(command, diff, current)


class _MinkIK:
    """One step of mink's IK QP (its FrameTask, PostureTask and ConfigurationLimit objects, built every step),
    handed to daqp directly (what ``mink.solve_ik`` does, minus the qpsolvers dispatch)."""

    def __init__(self, model: mujoco.MjModel, robot: RobotSpec, qadr: np.ndarray) -> None:
        self._qadr = qadr
        self._configuration = mink.Configuration(model)
        self._configuration.update_from_keyframe(ROBOT_PREFIX + robot.home_keyframe)
        self._q = self._configuration.q.copy()
        self._ee_site = model.site("ee").id
        self._ee_task = mink.FrameTask(
            "ee", "site", position_cost=POSITION_COST, orientation_cost=robot.orientation_cost, lm_damping=LM_DAMPING
        )
        self._tasks: list[mink.Task] = [self._ee_task]
        if robot.dof > 6:  # redundant arms: pull the null space towards home
            posture = mink.PostureTask(model, cost=POSTURE_COST)
            posture.set_target(self._q.copy())
            self._tasks.append(posture)
        self._limit = mink.ConfigurationLimit(model)
        self._lower: np.ndarray | None = None  # daqp's one-sided constraint bounds, reused every step
        self._sense: np.ndarray | None = None

    def update(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kinematics at ``q_arm``; the end-effector site's position and rotation matrix (views)."""
        self._q[self._qadr] = q_arm
        self._configuration.update(self._q)
        data = self._configuration.data
        return data.site_xpos[self._ee_site], data.site_xmat[self._ee_site]

    def solve(self, command: np.ndarray) -> np.ndarray:
        """The arm joints' step towards the pose ``command`` (wxyz, xyz) from the last :meth:`update`."""
        self._ee_task.set_target(mink.SE3(command))
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
            return np.zeros(len(self._qadr))
        return dq[self._qadr]


class _DirectIK:
    """The QP that :class:`_MinkIK` poses, built into arrays kept between steps.

    The robot-only model's kinematics, the site Jacobian from ``mj_jacSite`` turned into the body frame,
    the frame task's error and its log-Jacobian (mink's compiled SE(3) kernels, or mink's Python ones where
    those are missing, so the numbers are mink's own), the same costs (position, orientation, LM damping,
    and a posture cost towards home for redundant arms) and the same joint-limit rows (gain 0.95 of the
    distance to each limit), in the same floating-point order: the joint targets agree with mink's bit for
    bit (tests/sim/test_ik.py). Hinge and slide joints only (:meth:`handles`).
    """

    @staticmethod
    def handles(model: mujoco.MjModel) -> bool:
        return bool(np.all(np.isin(model.jnt_type, (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE))))

    def __init__(self, model: mujoco.MjModel, robot: RobotSpec, qadr: np.ndarray) -> None:
        self.model, self.data = model, mujoco.MjData(model)
        nv = model.nv
        key = model.key(ROBOT_PREFIX + robot.home_keyframe).id
        self.data.qpos[:] = model.key_qpos[key]
        self.qpos = self.data.qpos
        self._home = self.qpos.copy()
        self._qadr = qadr
        self._arm_qpos = _view(self.qpos, qadr)
        self._zeros = np.zeros(len(qadr))
        self._site = int(model.site("ee").id)
        self._site_xpos, self._site_xmat = self.data.site_xpos[self._site], self.data.site_xmat[self._site]
        self._cost = np.zeros(6)
        self._cost[:3], self._cost[3:] = POSITION_COST, robot.orientation_cost
        self._cost_col = self._cost[:, None]
        self._jac = np.empty((6, nv))
        self._jac_pos, self._jac_rot = self._jac[:3], self._jac[3:]
        self._jac_body = np.empty((6, nv))
        self._hessian, self._linear = np.empty((nv, nv)), np.empty(nv)
        self._diagonal = self._hessian.reshape(-1)[:: nv + 1]
        # Posture (redundant arms): its Hessian is constant; the linear term follows q.
        self._posture = robot.dof > 6
        self._posture_cost = np.full(nv, POSTURE_COST)
        weighted = self._posture_cost[:, None] * np.eye(nv)
        self._posture_jacobian = weighted
        self._posture_hessian = weighted.T @ weighted
        self._posture_error = np.empty(nv)
        # Joint limits, as mink.ConfigurationLimit writes them: G dq <= h with G = [P; -P], h = gain * [upper - q;
        # q - lower] over the limited joints (hinges and slides: one qpos and one dof each, nq == nv).
        limited = [j for j in range(model.njnt) if model.jnt_limited[j]]
        k = self._nlim = len(limited)
        self._limits = k > 0
        self._limit_qpos = np.array([model.jnt_qposadr[j] for j in limited], dtype=np.int64)
        self._limit_gather = not np.array_equal(self._limit_qpos, np.arange(model.nq))
        dofs = np.array([model.jnt_dofadr[j] for j in limited], dtype=np.int64)
        projection = np.eye(nv)[dofs] if k else np.zeros((0, nv))
        self._G = np.vstack([projection, -projection])
        self._h, self._h_top, self._h_bottom = np.empty(2 * k), np.empty(2 * k), np.empty(2 * k)
        self._h_top[:k] = [model.jnt_range[j][1] for j in limited]
        self._h_bottom[k:] = [model.jnt_range[j][0] for j in limited]
        self._bound = np.full(2 * k, -1e30)
        self._sense = np.zeros(2 * k, np.int32)

    def update(self, q_arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Kinematics at ``q_arm`` (the other joints at home); the end-effector site's position and rotation
        matrix (views)."""
        m, d = self.model, self.data
        self._arm_qpos[:] = q_arm
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)  # the Jacobian needs the com-based frames
        return self._site_xpos, self._site_xmat

    def solve(self, command: np.ndarray) -> np.ndarray:
        """The arm joints' step towards the pose ``command`` (wxyz, xyz) from the last :meth:`update`.

        Each line is mink's arithmetic (see :class:`_MinkIK`); where mink adds a term to a zero matrix, adding
        0.0 reproduces it (it turns -0.0 into 0.0 and leaves every other number as it is)."""
        xmat, qpos, hessian, linear = self._site_xmat, self.qpos, self._hessian, self._linear
        frame = _lie.frame(xmat, self._site_xpos)
        mujoco.mj_jacSite(self.model, self.data, self._jac_pos, self._jac_rot, self._site)
        jac_body = np.matmul(_lie.rotation_adjoint(xmat), self._jac, out=self._jac_body)  # body-frame Jacobian
        error = _lie.rminus(command, frame)
        jacobian = -_lie.jlog(_lie.inverse_multiply(command, frame)) @ jac_body
        weighted_error = self._cost * -error  # cost * (-gain * error), gain 1
        weighted_jacobian = self._cost_col * jacobian
        mu = LM_DAMPING * float(weighted_error.dot(weighted_error))
        np.matmul(weighted_jacobian.T, weighted_jacobian, out=hessian)
        if mu > 0.0:  # + mu * I
            self._diagonal += mu
        hessian += 0.0
        np.matmul(-weighted_error, weighted_jacobian, out=linear)
        linear += 0.0
        if self._posture:
            np.subtract(qpos, self._home, out=self._posture_error)  # mj_differentiatePos(home, q), hinges and slides
            hessian += self._posture_hessian
            linear += -(self._posture_cost * -self._posture_error) @ self._posture_jacobian
        if self._limits:  # h = gain * [upper - q; q - lower] (mj_differentiatePos, hinges and slides)
            limited = qpos[self._limit_qpos] if self._limit_gather else qpos
            self._h_top[self._nlim :] = limited
            self._h_bottom[: self._nlim] = limited
            np.multiply(LIMIT_GAIN, np.subtract(self._h_top, self._h_bottom, out=self._h), out=self._h)
        dq, _, exitflag, _ = daqp.solve(hessian, linear, self._G, self._h, self._bound, self._sense)
        if exitflag < 0:  # infeasible (should not happen with box limits): hold still
            return self._zeros
        return dq[self._qadr]


class _MinkLie:
    """The SE(3) arithmetic mink's FrameTask uses, as mink runs it: its compiled kernels where mink loaded them,
    else its Python Lie groups (so :class:`_DirectIK` and mink compute the same numbers)."""

    def __init__(self) -> None:
        import mink.configuration
        import mink.tasks.frame_task

        native = getattr(mink.tasks.frame_task, "_native", None)
        self.native = native if native is not None and getattr(mink.configuration, "_native", None) is native else None
        if self.native is not None:
            self.frame = self.native.xmat_xpos_to_wxyz_xyz
            self.rotation_adjoint = self.native.se3_rotation_adjoint_from_xmat
            self.rminus = self.native.se3_rminus
            self.inverse_multiply = self.native.se3_inverse_multiply
            self.jlog = self.native.se3_jlog

    @staticmethod
    def frame(xmat: np.ndarray, xpos: np.ndarray) -> np.ndarray:
        rotation = mink.SO3.from_matrix(xmat.reshape(3, 3))
        return mink.SE3.from_rotation_and_translation(rotation=rotation, translation=xpos).wxyz_xyz

    @staticmethod
    def rotation_adjoint(xmat: np.ndarray) -> np.ndarray:
        return mink.SE3.from_rotation(mink.SO3.from_matrix(xmat.reshape(3, 3)).inverse()).adjoint()

    @staticmethod
    def rminus(target: np.ndarray, frame: np.ndarray) -> np.ndarray:
        return mink.SE3(wxyz_xyz=np.array(target)).minus(mink.SE3(wxyz_xyz=frame))

    @staticmethod
    def inverse_multiply(target: np.ndarray, frame: np.ndarray) -> Any:
        return mink.SE3(wxyz_xyz=np.array(target)).inverse() @ mink.SE3(wxyz_xyz=frame)

    @staticmethod
    def jlog(transform: Any) -> np.ndarray:
        return transform.jlog()


_lie = _MinkLie()


CONTROLLERS: dict[str, type[Controller]] = {"ee_delta": EEDeltaController, "joint": JointController}


def controller_class(name: str) -> type[Controller]:
    if name not in CONTROLLERS:
        raise SimError(f"unknown action space {name!r} (choose from {', '.join(ACTION_SPACES)})")
    return CONTROLLERS[name]


def idle_action(action_space: str, action: np.ndarray) -> np.ndarray:
    """The action that holds the arm where ``action`` left it, with the same gripper command: no end-effector
    motion (``ee_delta``), the same joint targets (``joint``)."""
    idle = np.array(action, dtype=np.float64)
    if controller_class(action_space) is EEDeltaController:
        idle[:-1] = 0.0
    return idle


def make_controller(name: str, robot: RobotSpec, arm_ctrl_range: np.ndarray, ik: str | None = None) -> Controller:
    """The controller of action space ``name``; ``ik`` picks the ee_delta controller's IK builder (default
    :data:`DEFAULT_IK`)."""
    if name == EEDeltaController.name:
        return EEDeltaController(robot, arm_ctrl_range, ik)
    return controller_class(name)(robot, arm_ctrl_range)


def action_scale(name: str, robot: RobotSpec) -> tuple[float, ...]:
    """The largest action of action space ``name`` on ``robot``, per dimension (what datasets record as scale)."""
    model = load_robot_model(robot).compile()
    ctrl_range = np.array([model.actuator(a).ctrlrange for a in robot.arm_actuators])
    return tuple(float(x) for x in controller_class(name).bounds(ctrl_range)[1])


def _clip(x: float, low: float, high: float) -> float:
    """np.clip of one float, as numpy computes it: max as ``x > low``, then min as ``x < high``."""
    x = x if x > low else low  # noqa: FURB136 (max(low, x) keeps -0.0 where numpy gives 0.0)
    return x if x < high else high  # noqa: FURB136


def _view(array: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``array[index]`` as a view where the indices are a contiguous run (then writing into it writes the
    array), else a fancy-index proxy that writes through :func:`np.put` semantics."""
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return array[int(index[0]) : int(index[0]) + len(index)]
    return _Scatter(array, index)


class _Scatter:
    """Stands for ``array[index]`` on the left of ``view[:] = values``."""

    def __init__(self, array: np.ndarray, index: np.ndarray) -> None:
        self._array, self._index = array, index

    def __setitem__(self, key: slice, values: np.ndarray) -> None:
        self._array[self._index] = values


def gripper_lengths(model: mujoco.MjModel, actuator: int, open_ctrl: float, closed_ctrl: float) -> tuple[float, float]:
    """The gripper actuator's lengths when open and when closed.

    Position-like actuators (affine bias) hold length = gain * ctrl / -bias1, which maps the spec's
    open/closed controls to lengths.
    """
    gain, bias = model.actuator_gainprm[actuator, 0], model.actuator_biasprm[actuator, 1]
    to_length = gain / -bias if bias != 0 else 1.0
    return float(open_ctrl * to_length), float(closed_ctrl * to_length)


def opening_fraction(length: float, lengths: tuple[float, float]) -> float:
    """Measured gripper state in [0, 1] (0 open, 1 closed): the actuator's ``length`` placed between its
    open and closed ``lengths`` (:func:`gripper_lengths`)."""
    length_open, length_closed = lengths
    return min(max((float(length) - length_open) / (length_closed - length_open), 0.0), 1.0)


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
