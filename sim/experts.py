"""Scripted experts: one privileged, state-based controller per task.

An expert reads the simulator state (end-effector pose, gripper opening, object poses, goals,
contacts) straight from the env and returns an ``ee_delta`` action. It keeps no memory of earlier
steps: the phase (approach, grasp, lift, carry, place, push, ...) is inferred from the state each
tick, so the expert can label any state a policy visits (DAgger) and take over mid-episode.

    expert = make_expert(env, noise=0.2, seed=0)
    expert.reset()
    action = expert.act(obs)

``noise`` adds Gaussian noise to the translation part of each action (seeded, reproducible) for
diverse demonstrations; the closed loop corrects it. Its standard deviation is ``noise`` times the
current phase's speed limit (the full step of 2 cm while travelling, a few mm while grasping,
placing or pushing), so fine manipulation gets proportionally fine noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import mujoco
import numpy as np

from protege.sim.controllers import EE_DELTA_SCALE
from protege.sim.errors import SimError, UnsuitableRobotError
from protege.sim.robot import RobotSpec
from protege.sim.scene import ROBOT_PREFIX
from protege.sim.spec import EnvSpec
from protege.sim.tasks import TASKS
from protege.sim.tasks.base import CUBE_HALF
from protege.sim.tasks.slot_push import SLOT_WIDTH, WALL_HALF_LENGTH, WALL_HALF_THICKNESS, SlotPush

if TYPE_CHECKING:
    from protege.sim.env import ProtegeEnv

DEMO_NOISE = 0.2  # default action-noise level for generated demos (fraction of the phase's speed limit)

_MAX_STEP = float(EE_DELTA_SCALE[0])  # metres per control step
_MAX_TURN = float(EE_DELTA_SCALE[3])  # radians per control step
_GAIN = 0.7  # fraction of the remaining position error commanded per step
_PUSH_DONE = 0.003  # a push stops advancing once the object is this close to its target
# A pusher this far off the push line (sideways, metres) still pushes: it steers back, advancing
# the slower the further off it is (full speed within _PUSH_CENTRED, none at the lane's edge).
# A graded lane, not a pass/fail box: off-line states get labels close to their neighbours'.
_PUSH_LANE = 0.024
_PUSH_CENTRED = 0.008
_DOWN = np.array([0.0, 0.0, -1.0])


def _wrap(angle: float, period: float) -> float:
    """``angle`` wrapped into [-period/2, period/2)."""
    return float((angle + period / 2) % period - period / 2)


def _clip_norm(v: np.ndarray, limit: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v * (limit / n) if n > limit else v


_NEEDS_EE_DELTA = "scripted experts need the ee_delta action space, this env uses {!r}"


class ScriptedExpert:
    """Base class: turns a per-tick plan (target position, heading turn, gripper command, speed
    limit) into an ``ee_delta`` action with the gripper pointing straight down. Subclasses implement
    :meth:`plan` from the simulator state alone."""

    task_name: ClassVar[str]
    grips: ClassVar[bool] = True  # whether it grasps or pushes with the fingers

    def __init__(self, env: ProtegeEnv, noise: float = 0.0, seed: int | None = None) -> None:
        env = getattr(env, "unwrapped", env)
        if getattr(env.controller, "name", None) != "ee_delta":
            raise SimError(_NEEDS_EE_DELTA.format(env.controller.name))
        if env.task.name != self.task_name:
            raise SimError(f"{type(self).__name__} is for task {self.task_name!r}, env runs {env.task.name!r}")
        if noise < 0:
            raise SimError(f"expert noise must be >= 0, got {noise}")
        self.env = env
        self.task = env.task
        self.noise = float(noise)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.check_robot(env.robot)
        if self.grips:
            self._read_gripper()

    @classmethod
    def check_robot(cls, robot: RobotSpec) -> None:
        """Refuse an arm that the task cannot use (:meth:`Task.check_robot <protege.sim.tasks.base.Task.check_robot>`)
        or this expert cannot drive: an expert that grips needs two moving fingers
        (:class:`~protege.sim.errors.UnsuitableRobotError`)."""
        TASKS[cls.task_name].check_robot(robot)
        gripper = robot.geometry.gripper
        if cls.grips and (gripper is None or len(gripper.fingers) < 2):
            found = (f"one ({gripper.fingers[0]})" if gripper
                     else "none (no collision geom moves between open and closed)")
            raise UnsuitableRobotError(robot.name, cls.task_name,
                                       "the scripted expert grasps and pushes with two moving fingers; "
                                       f"it found {found}")

    # public API
    def reset(self, seed: int | None = None) -> None:
        """Start an episode. The expert is stateless; a seed reseeds the action noise."""
        if seed is not None:
            self.seed = seed
            self.rng = np.random.default_rng(seed)

    def act(self, obs: Any = None) -> np.ndarray:
        """The expert's action for the env's current state (``obs`` is accepted and not needed)."""
        ee, rot = self.env.ee_pose()
        target, yaw, grip, speed = self.plan(ee, rot)
        move = _clip_norm(_GAIN * (np.asarray(target, float) - ee), speed)
        if self.noise > 0:
            move = move + self.rng.normal(0.0, self.noise * speed, 3)
        turn = self._turn_towards(rot, yaw)
        action = np.concatenate([np.clip(move, -_MAX_STEP, _MAX_STEP), turn, [grip]])
        return np.clip(action, self.env.action_space.low, self.env.action_space.high)

    def plan(self, ee: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, float | None, float, float]:
        """(target ee position, signed turn of the heading about the vertical in radians or None to
        keep it, gripper command in [0, 1], speed limit in metres per step for this phase)."""
        raise NotImplementedError

    # geometry and state helpers
    def _read_gripper(self) -> None:
        """The gripper the spec loader measured (:class:`~protege.sim.robot.GripperGeometry`): the finger
        bodies, the fingertips' depth and the closed fingers' half extents along and across the push.
        Pushes go with the closing axis along the push (``push_heading`` 0), so the fingers' thickness,
        narrow on most grippers (the Panda's fingers are wide), crosses the push line."""
        gripper = self.env.robot.geometry.gripper
        assert gripper is not None, "check_robot refuses an arm without a gripper"
        self._fingers = {self.env.model.body(ROBOT_PREFIX + name).id for name in gripper.fingers}
        self.tip_depth = gripper.tip_depth  # how far the fingertips reach past the ee along the approach
        self.pusher_half = gripper.width_closed / 2  # along the push
        self.pusher_side = gripper.thickness / 2  # across it
        self.push_heading = 0.0  # of the closing axis, relative to the push direction
        self.push_z = self.tip_depth + 0.015  # ee height that pushes a cube at mid height
        self.grasp_clearance = self.tip_depth + 0.005  # lowest ee height above a support while grasping
        self.home_yaw = self._yaw_of(self.env.home_data().site_xmat[self.env.ee_site].reshape(3, 3))

    def _yaw_of(self, rot: np.ndarray) -> float:
        """Heading of the ee y axis (the finger closing axis) in the table plane."""
        return float(np.arctan2(rot[1, 1], rot[0, 1]))

    def _nearest_yaw(self, rot: np.ndarray, yaw: float, period: float) -> float:
        """Among ``yaw + k * period``, the one closest to the current ee yaw that stays within
        about +-period/2 of the home yaw (so the wrist never winds up against a joint limit).
        Returned relative to the current yaw: the signed turn to make."""
        now = _wrap(self._yaw_of(rot) - self.home_yaw, 2 * np.pi)
        base = _wrap(yaw - self.home_yaw, period)
        cands = [base + k * period for k in range(-2, 3) if abs(base + k * period) <= period / 2 + 0.3]
        best = min(cands, key=lambda c: abs(c - now))
        return best - now

    def _push_turn(self, rot: np.ndarray, u: np.ndarray) -> float:
        """Signed turn that lines the closing axis up with push direction ``u`` (turned by ``push_heading``).
        Of the two headings that do (the gripper is symmetric), the one in a fixed window [-3pi/4, pi/4)
        around home: a function of ``u`` alone, so neighbouring states never get labels turning opposite ways."""
        along = float(np.arctan2(u[1], u[0])) + self.push_heading
        heading = _wrap(along - self.home_yaw + np.pi / 4, np.pi) - np.pi / 4
        return heading - _wrap(self._yaw_of(rot) - self.home_yaw, 2 * np.pi)

    def _turn_towards(self, rot: np.ndarray, turn: float | None) -> np.ndarray:
        """Rotation delta (world frame, on the left) that takes out the tilt (z axis down) and turns
        the heading by ``turn`` radians about the vertical (None: keep the heading)."""
        y = rot[:, 1] - _DOWN * (rot[:, 1] @ _DOWN)
        heading = float(np.arctan2(y[1], y[0])) if np.linalg.norm(y) > 1e-6 else self._yaw_of(rot)
        yaw = heading + float(np.clip(turn or 0.0, -0.5, 0.5))
        y_axis = np.array([np.cos(yaw), np.sin(yaw), 0.0])
        desired = np.column_stack([np.cross(y_axis, _DOWN), y_axis, _DOWN])
        q_des, q_now, q_err = np.empty(4), np.empty(4), np.empty(4)
        mujoco.mju_mat2Quat(q_des, desired.ravel())
        mujoco.mju_mat2Quat(q_now, rot.ravel())
        mujoco.mju_negQuat(q_now, q_now)
        mujoco.mju_mulQuat(q_err, q_des, q_now)
        if q_err[0] < 0:
            q_err = -q_err
        err = np.empty(3)
        mujoco.mju_quat2Vel(err, q_err, 1.0)
        return np.clip(0.8 * err, -_MAX_TURN, _MAX_TURN)

    def _tilt(self, rot: np.ndarray) -> float:
        return float(np.arccos(np.clip(rot[:, 2] @ _DOWN, -1.0, 1.0)))

    def _grasped(self, geom_body: int) -> bool:
        """Whether the object body touches at least two different fingers."""
        d = self.env.data
        m = self.env.model
        touched = set()
        for i in range(d.ncon):
            g1, g2 = d.contact.geom1[i], d.contact.geom2[i]
            b1, b2 = m.geom_bodyid[g1], m.geom_bodyid[g2]
            if b1 == geom_body and b2 in self._fingers:
                touched.add(int(b2))
            elif b2 == geom_body and b1 in self._fingers:
                touched.add(int(b1))
        return len(touched) >= 2

    def _cube_yaw(self, i: int) -> float:
        """Heading of a horizontal face normal of object ``i`` (the cube may lie on any face)."""
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, np.asarray(self.task.object_quat(self.env.data, i), float))
        rot = rot.reshape(3, 3)
        col = rot[:, int(np.argmin(np.abs(rot[2, :])))]
        return float(np.arctan2(col[1], col[0]))

    def _object_body(self, i: int) -> int:
        return int(self.env.model.body(self.task.objects[i]).id)

    # shared behaviours
    def _grasp_plan(self, i: int, ee: np.ndarray, rot: np.ndarray, support_z: float = 0.0):
        """Plan to pick up object ``i`` resting on a support at ``support_z``; None once it is held."""
        cube = np.array(self.task.object_pos(self.env.data, i))
        if self._grasped(self._object_body(i)) and self.env.gripper_state() > 0.2:
            return None
        yaw = self._nearest_yaw(rot, self._cube_yaw(i), np.pi / 2)
        yaw_err = abs(yaw)
        grasp_z = max(cube[2], cube[2] - CUBE_HALF + self.grasp_clearance)
        hover_z = cube[2] + CUBE_HALF + self.tip_depth + 0.03
        xy_err = float(np.linalg.norm(cube[:2] - ee[:2]))
        aligned = xy_err < 0.008 and yaw_err < 0.12 and self._tilt(rot) < 0.12
        if aligned and ee[2] < grasp_z + 0.008:
            return np.array([cube[0], cube[1], grasp_z]), yaw, 1.0, 0.01  # close on it
        opening = self.env.gripper_state()
        if xy_err < 0.012 and yaw_err < 0.2 and ee[2] < hover_z + 0.02 and opening < 0.15:
            return np.array([cube[0], cube[1], grasp_z]), yaw, 0.0, 0.012  # descend around it
        if ee[2] < cube[2] + CUBE_HALF + self.tip_depth + 0.01 and xy_err < 0.05:
            # low next to the cube but not lined up (or fingers not open): back off upwards first
            return np.array([ee[0], ee[1], hover_z + 0.01]), yaw, 0.0, 0.015
        return np.array([cube[0], cube[1], hover_z]), yaw, 0.0, _MAX_STEP

    def _push_plan(self, i: int, goal_xy: np.ndarray, ee: np.ndarray, rot: np.ndarray, obstacle=None,
                   speed: float = 0.012):
        """Push object ``i`` towards ``goal_xy`` with the closed gripper, from behind it."""
        cube = np.array(self.task.object_pos(self.env.data, i))
        u, dist = self._push_direction(cube, goal_xy)
        n = np.array([-u[1], u[0]])
        contact = CUBE_HALF + self.pusher_half
        yaw = self._push_turn(rot, u)
        if self._in_push_pose(cube, u, ee, rot):
            # In contact (or about to be): advance along the line, steer back onto it. The command
            # has a floor: position actuators push with a force that grows with the commanded step.
            lat = float((ee[:2] - cube[:2]) @ n)
            centred = float(np.clip((_PUSH_LANE - abs(lat)) / (_PUSH_LANE - _PUSH_CENTRED), 0.0, 1.0))
            v = 0.0 if dist < _PUSH_DONE else centred * float(np.clip(0.5 * dist, 0.005, speed))
            step = (u * v - 0.6 * lat * n) / _GAIN
            target = np.array([ee[0] + step[0], ee[1] + step[1], self.push_z])
            return target, yaw, 1.0, speed
        pre = cube[:2] - u * (contact + 0.02)
        safe_z = self.push_z + 2 * CUBE_HALF + 0.03
        clear = CUBE_HALF * np.sqrt(2) + max(self.pusher_half, self.pusher_side) + 0.006
        if np.linalg.norm(pre - ee[:2]) < 0.012:
            return np.array([*pre, self.push_z]), yaw, 1.0, 0.015
        if ee[2] > safe_z - 0.01 or self._path_clear(ee[:2], pre, cube[:2], clear, obstacle):
            if self._path_clear(ee[:2], pre, cube[:2], clear, obstacle):
                return np.array([*pre, self.push_z]), yaw, 1.0, _MAX_STEP
            return np.array([*pre, safe_z]), yaw, 1.0, _MAX_STEP
        # Rise before crossing over, first backing away so the fingers do not drag the object up.
        away = ee[:2] - cube[:2]
        gap = float(np.linalg.norm(away))
        if gap < contact + 0.012 and gap > 1e-6:
            back = cube[:2] + away / gap * (contact + 0.015)
            return np.array([*back, ee[2]]), yaw, 1.0, 0.01
        return np.array([ee[0], ee[1], safe_z]), yaw, 1.0, 0.015

    @staticmethod
    def _push_direction(cube: np.ndarray, goal_xy: np.ndarray) -> tuple[np.ndarray, float]:
        d = np.asarray(goal_xy, float)[:2] - cube[:2]
        dist = float(np.linalg.norm(d))
        return (d / dist if dist > 1e-6 else np.array([1.0, 0.0])), dist

    def _in_push_pose(self, cube: np.ndarray, u: np.ndarray, ee: np.ndarray, rot: np.ndarray) -> bool:
        """Whether the closed gripper is low, upright and right behind the object along ``u``."""
        rel = ee[:2] - cube[:2]
        along, lat = float(rel @ u), float(rel @ np.array([-u[1], u[0]]))
        contact = CUBE_HALF + self.pusher_half
        return bool(ee[2] < self.push_z + 0.015 and self._tilt(rot) < 0.15
                    and -contact - 0.035 < along < -CUBE_HALF and abs(lat) < _PUSH_LANE)

    def _path_clear(self, a: np.ndarray, b: np.ndarray, cube_xy: np.ndarray, clear: float, obstacle) -> bool:
        ts = np.linspace(0.0, 1.0, 12)[:, None]
        pts = a[None, :] * (1 - ts) + b[None, :] * ts
        if np.min(np.linalg.norm(pts - cube_xy, axis=1)) < clear:
            return False
        return obstacle is None or not np.any(obstacle(pts))


class ReachExpert(ScriptedExpert):
    task_name = "reach"
    grips = False

    def plan(self, ee, rot):
        return self.task.goal_pos(self.env.data), None, 0.0, _MAX_STEP


class LiftExpert(ScriptedExpert):
    task_name = "lift"

    def plan(self, ee, rot):
        grasp = self._grasp_plan(0, ee, rot)
        if grasp is not None:
            return grasp
        return np.array([ee[0], ee[1], 0.16]), None, 1.0, 0.015


class StackExpert(ScriptedExpert):
    task_name = "stack"

    def plan(self, ee, rot):
        data = self.env.data
        top, base = np.array(self.task.object_pos(data, 0)), np.array(self.task.object_pos(data, 1))
        xy_err = float(np.linalg.norm(top[:2] - base[:2]))
        height = top[2] - base[2]
        held = self._grasped(self._object_body(0)) and self.env.gripper_state() > 0.2
        on_top = xy_err < 0.012 and abs(height - 2 * CUBE_HALF) < 0.006
        if on_top and not held:  # released: back away upwards
            return np.array([top[0], top[1], top[2] + CUBE_HALF + self.tip_depth + 0.05]), None, 0.0, 0.01
        if not held:
            return self._grasp_plan(0, ee, rot)
        carry = base[2] + 3 * CUBE_HALF + 0.03  # held cube centre height while moving over the base
        offset = ee - top  # keep the grasp offset: move the held cube, not the ee
        if xy_err > 0.006:
            if top[2] < carry - 0.01 and xy_err > 0.02:
                return np.array([ee[0], ee[1], carry + offset[2]]), None, 1.0, 0.015
            goal = np.array([base[0], base[1], carry]) + offset
            return goal, None, 1.0, _MAX_STEP if xy_err > 0.03 else 0.008
        if height < 2 * CUBE_HALF + 0.006:  # resting on the base: let go
            return ee.copy(), None, 0.0, 0.0
        place = np.array([base[0], base[1], base[2] + 2 * CUBE_HALF + 0.002]) + offset
        return place, None, 1.0, 0.008


class PushExpert(ScriptedExpert):
    task_name = "push"

    def plan(self, ee, rot):
        return self._push_plan(0, self.task.goal_pos(self.env.data)[:2], ee, rot)


class SlotPushExpert(ScriptedExpert):
    task_name = "slot_push"

    def __init__(self, env: ProtegeEnv, noise: float = 0.0, seed: int | None = None) -> None:
        super().__init__(env, noise, seed)
        if not SlotPush.opening.fits(2 * self.pusher_side):
            # The fingers' thickness is too wide for the slot (check_robot found the closed width narrow
            # enough): push with the closing axis across the push, the closed width crossing the slot.
            self.pusher_half, self.pusher_side = self.pusher_side, self.pusher_half
            self.push_heading = np.pi / 2

    def plan(self, ee, rot):
        data = self.env.data
        block = np.array(self.task.object_pos(data, 0))
        wall_x, slot_y = self.task.slot_center(data)
        goal = self.task.goal_pos(data)[:2]
        if block[0] > wall_x - 0.035:
            # At the wall (or through it): no room for a sideways push; push towards the goal and
            # let the block slide along the wall face into the slot. Where pushing straight at the
            # goal would need the fingers inside the wall, push away from the slot entrance
            # instead: the fingers then stay in the slot.
            u, dist = self._push_direction(block, goal)
            pre = block[:2] - u * (CUBE_HALF + self.pusher_half + 0.02)
            sub = goal
            if self._in_wall(pre[None, :])[0]:
                away, _ = self._push_direction(np.array([wall_x - 0.04, slot_y]), block[:2])
                sub = block[:2] + away * dist
        else:
            # Already behind the block and pushing towards the goal: keep going while the push can
            # still steer it into the slot; otherwise line it up with the slot first (sideways push).
            # A sideways push runs on until it is done, well inside the forward push's tolerance:
            # stopping at that threshold would leave the block where the two plans (90 degrees
            # apart) split.
            y_err = abs(block[1] - slot_y)
            line_up = np.array([block[0], slot_y])
            through = self._in_push_pose(block, self._push_direction(block, goal)[0], ee, rot)
            aligning = self._in_push_pose(block, self._push_direction(block, line_up)[0], ee, rot)
            forward = y_err < (0.015 if through else 0.008) and not (aligning and y_err > _PUSH_DONE)
            sub = goal if forward else line_up
        return self._push_plan(0, sub, ee, rot, obstacle=self._in_wall, speed=0.01)

    def _in_wall(self, pts: np.ndarray) -> np.ndarray:
        """Which table-plane points would put the pusher into the wall."""
        wall_x, slot_y = self.task.slot_center(self.env.data)
        margin = max(self.pusher_half, self.pusher_side) + 0.006
        dx = np.abs(pts[:, 0] - wall_x)
        dy = np.abs(pts[:, 1] - slot_y)
        return (dx < WALL_HALF_THICKNESS + margin) & (dy > SLOT_WIDTH / 2 - margin) & (
            dy < SLOT_WIDTH / 2 + 2 * WALL_HALF_LENGTH + margin)


EXPERTS: dict[str, type[ScriptedExpert]] = {
    e.task_name: e for e in (ReachExpert, PushExpert, LiftExpert, StackExpert, SlotPushExpert)
}


def make_expert(env: ProtegeEnv, noise: float = 0.0, seed: int | None = None) -> ScriptedExpert:
    """The scripted expert for ``env``'s task (env: a ProtegeEnv, wrapped or not)."""
    return _expert_class(getattr(env, "unwrapped", env).task.name)(env, noise=noise, seed=seed)


def check_expert(spec: EnvSpec) -> None:
    """Refuse, before any env is built, an env no scripted expert can drive: another action space, or an
    arm that the task or its expert cannot use (:class:`~protege.sim.errors.UnsuitableRobotError`)."""
    expert = _expert_class(spec.task)
    if spec.action_space != "ee_delta":
        raise SimError(_NEEDS_EE_DELTA.format(spec.action_space))
    expert.check_robot(spec.load_robot())


def _expert_class(task: str) -> type[ScriptedExpert]:
    if task not in EXPERTS:
        raise SimError(f"no scripted expert for task {task!r} (have {', '.join(EXPERTS)})")
    return EXPERTS[task]


__all__ = ["DEMO_NOISE", "EXPERTS", "ScriptedExpert", "check_expert", "make_expert"]
