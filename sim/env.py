"""The gymnasium environment: one robot, one task, a fixed control rate, dict observations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from protege.sim.controllers import gripper_lengths, make_controller, opening_fraction
from protege.sim.errors import SimError
from protege.sim.render import CameraRenderer, Decor, check_cameras
from protege.sim.robot import DEFAULT_ROBOT, RobotSpec, home_ctrl
from protege.sim.scene import ROBOT_PREFIX, SceneOptions, build_scene
from protege.sim.spec import DEFAULT_CAMERAS, IMAGE, EnvSpec, image_key
from protege.sim.tasks import TASKS
from protege.sim.visual import Look

STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION  # physics, controls, mocap and warm start: exact replay
_OBS_ORDER = ("joint_pos", "joint_vel", "ee_pos", "ee_quat", "gripper", "object_pos", "object_quat", "goal_pos")
# What the position- and velocity-dependent stages of mj_forward read from the data: while it is unchanged since
# the env's last mj_forward, a step may skip recomputing them (mj_step2 for its first substep).
_FORWARD_INPUTS = (mujoco.mjtState.mjSTATE_QPOS | mujoco.mjtState.mjSTATE_QVEL | mujoco.mjtState.mjSTATE_ACT
                   | mujoco.mjtState.mjSTATE_MOCAP_POS | mujoco.mjtState.mjSTATE_MOCAP_QUAT
                   | mujoco.mjtState.mjSTATE_EQ_ACTIVE)


def quat_near(quat: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``quat`` or ``-quat`` (the same rotation), whichever lies in the hemisphere around ``reference``.

    ``ee_quat`` is kept near the home orientation: it then changes sign only 180 degrees away from
    home, never where the gripper points down (``w >= 0`` flipped there, at w = 0). Unlike a sign
    chosen for continuity with the previous frame, it is a function of the state alone, as experts,
    policies and replay need. ``object_quat`` is the free joint's quaternion, continuous as integrated.
    """
    return quat if float(quat @ reference) >= 0.0 else -quat


class ProtegeEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """A tabletop task for one arm.

    Observations: ``joint_pos``, ``joint_vel`` (arm joints), ``ee_pos``, ``ee_quat`` (wxyz, see
    :func:`quat_near`), ``gripper`` (0 open .. 1 closed, measured), ``object_pos``/``object_quat`` (task objects,
    concatenated), ``goal_pos`` (tasks with a goal) and ``image_<camera>`` (uint8 HxWx3).
    ``info`` carries ``success``, ``is_success`` and ``object_lost``. Episodes end on success (unless
    ``terminate_on_success=False``) or when an object leaves the table (``object_lost``: a failure), and
    are truncated at the task's time limit. ``env_spec`` is the
    :class:`~protege.sim.spec.EnvSpec` it was built from, its arm loaded and checked
    (:meth:`~protege.sim.spec.EnvSpec.resolved`); :func:`make` builds one from settings.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        spec: EnvSpec,
        *,
        render_quality: str = "fast",
        terminate_on_success: bool = True,
        render_mode: str | None = None,
        ik: str | None = None,
    ) -> None:
        if render_quality not in ("fast", "high"):
            raise SimError(f"unknown render quality {render_quality!r} (fast or high)")
        self.robot = spec.load_robot()
        self.env_spec = spec.resolved(self.robot)
        self.task = TASKS[spec.task]()
        height, width = self.env_spec.image_size
        high = render_quality == "high"
        scene = build_scene(self.robot, self.task, SceneOptions(width, height, shadows=high, multisample=high))
        self.model = scene.compile()
        self.data = mujoco.MjData(self.model)
        self.task.bind(self.model)
        self.control_hz = self.env_spec.control_hz
        self.n_substeps = self.env_spec.substeps
        self.max_steps = int(round(self.task.time_limit * self.control_hz))
        self.terminate_on_success = terminate_on_success
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": self.control_hz}

        m = self.model
        joints = [m.joint(ROBOT_PREFIX + j) for j in self.robot.arm_joints]
        self._qpos_adr = np.array([j.qposadr[0] for j in joints])
        self._qvel_adr = np.array([j.dofadr[0] for j in joints])
        self._arm_act = np.array([m.actuator(ROBOT_PREFIX + a).id for a in self.robot.arm_actuators])
        self._grip_act = m.actuator(ROBOT_PREFIX + self.robot.gripper.actuator).id
        self._ee_site = m.site("ee").id
        self._robot_bodies = tuple(i for i in range(m.nbody) if m.body(i).name.startswith(ROBOT_PREFIX))
        self._home_key = m.key(ROBOT_PREFIX + self.robot.home_keyframe).id
        home = home_ctrl(self.robot)
        self._home_ctrl = np.array([home[m.actuator(i).name.removeprefix(ROBOT_PREFIX)] for i in range(m.nu)])
        mujoco.mj_resetDataKeyframe(m, self.data, self._home_key)
        mujoco.mj_kinematics(m, self.data)
        self._home_ee_quat = self._ee_quat()
        self.controller = make_controller(spec.action_space, self.robot, m.actuator_ctrlrange[self._arm_act], ik)
        self._command = self.data.userdata[: self.controller.command_size]  # view: saved with the state
        self._gripper = self.robot.gripper
        self._grip_length = gripper_lengths(m, self._grip_act, self._gripper.open, self._gripper.closed)
        # The forward inputs as the env's last mj_forward saw them (see _advance); b"": no forward yet.
        self._forwarded, self._forward_check = b"", np.empty(mujoco.mj_stateSize(m, _FORWARD_INPUTS))
        self._obs_slices = self._observation_layout()

        self.cameras = self.env_spec.cameras
        self.decor: tuple[Decor, ...] = ()  # drawn in the cameras, not simulated (visual disturbances)
        self.look = Look(self)  # the scene's appearance, which visual disturbances draw on and reset restores
        self._image_shape = (height, width, 3)
        self._renderer: CameraRenderer | None = None
        self._fast_render = not high
        check_cameras(m, self.cameras)  # fail early on a bad camera name, before any GL context exists
        self.action_space = gym.spaces.Box(self.controller.action_low, self.controller.action_high, dtype=np.float64)
        self.observation_space = self._make_observation_space()
        self._action_shape = self.action_space.shape
        self._qpos_span = _span(self._qpos_adr)
        arm_span = _span(self._arm_act)
        self._arm_ctrl = arm_span if arm_span is not None else self._arm_act
        # Views of the data arrays a step reads (MjData makes a new array object at every attribute access).
        d = self.data
        self._q_arm = d.qpos[self._qpos_span] if self._qpos_span is not None else None
        self._ee_xpos, self._ee_xmat = d.site_xpos[self._ee_site], d.site_xmat[self._ee_site]
        self._grip_now = d.actuator_length[self._grip_act : self._grip_act + 1]
        self._steps = 0

    # gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.look.restore()
        mujoco.mj_resetDataKeyframe(self.model, self.data, self._home_key)
        self.data.ctrl[:] = self._home_ctrl
        self.data.ctrl[self._grip_act] = self.robot.gripper.ctrl(0.0)  # episodes start with the gripper open
        self.task.reset(self.data, self.np_random)
        self._forward()
        self.controller.reset_command(self.data.qpos[self._qpos_adr], self._command)
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self._action_shape:
            raise SimError(f"action has shape {action.shape}, expected {self._action_shape}")
        d = self.data
        q_arm = self._q_arm if self._q_arm is not None else d.qpos[self._qpos_adr]
        d.ctrl[self._arm_ctrl] = self.controller.arm_targets(q_arm, action, self._command)
        d.ctrl[self._grip_act] = self._gripper.ctrl(action[-1])
        self._advance()
        self._steps += 1
        task = self.task
        success = task.is_success(d)
        lost = task.object_lost(d)
        terminated = (success and self.terminate_on_success) or lost
        truncated = self._steps >= self.max_steps
        info = {"success": success, "is_success": success, "object_lost": lost, "step": self._steps}
        return self._observation(), task.reward(d), terminated, truncated, info

    def _forward(self) -> None:
        """mj_forward, remembering the inputs it saw (so the next step may start from its results)."""
        mujoco.mj_forward(self.model, self.data)
        mujoco.mj_getState(self.model, self.data, self._forward_check, _FORWARD_INPUTS)
        self._forwarded = self._forward_check.tobytes()

    def _advance(self) -> None:
        """``n_substeps`` physics steps with the controls set, then mj_forward at the new state (what
        set_state(get_state()) observes: positions, contacts, sensors).

        mj_step begins with mj_forward of the state it is given; when the data is still as the env's last
        mj_forward left it (the usual case: nothing moved the state since the last step or reset), the first
        substep reuses those results and computes only what the new controls change (mj_step2: actuation,
        acceleration, constraint solve, integration): the same numbers, one forward pass fewer per step.
        Anything else that changed the state since (a disturbance, a caller writing ``data``) gets a plain
        mj_step. The model itself must not change between steps.
        """
        m, d = self.model, self.data
        check = self._forward_check
        mujoco.mj_getState(m, d, check, _FORWARD_INPUTS)
        if check.tobytes() == self._forwarded:
            mujoco.mj_step2(m, d)
            if self.n_substeps > 1:
                mujoco.mj_step(m, d, nstep=self.n_substeps - 1)
        else:
            mujoco.mj_step(m, d, nstep=self.n_substeps)
        self._forward()

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        images = self.render_cameras()
        return np.concatenate([images[c] for c in self.cameras], axis=1)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # state
    def get_state(self) -> np.ndarray:
        """The full integration state (``mjSTATE_INTEGRATION``) as float64."""
        state = np.empty(mujoco.mj_stateSize(self.model, STATE_SPEC))
        mujoco.mj_getState(self.model, self.data, state, STATE_SPEC)
        return state

    def set_state(self, state: np.ndarray) -> None:
        """Restore a state from :meth:`get_state`; the next step continues exactly as the original did."""
        state = np.asarray(state, dtype=np.float64)
        expected = mujoco.mj_stateSize(self.model, STATE_SPEC)
        if state.shape != (expected,):
            raise SimError(f"sim state has shape {state.shape}, this env needs ({expected},)")
        mujoco.mj_setState(self.model, self.data, state, STATE_SPEC)
        self._forward()
        self._steps = int(round(self.data.time * self.control_hz))

    def hold_pose(self) -> None:
        """Re-anchor the controller's command at the measured arm pose, so that a zero action holds
        the arm where it is (a person taking over from a policy starts from here, not from where the
        policy's command had run ahead to)."""
        self.controller.reset_command(self.data.qpos[self._qpos_adr], self._command)

    # the arm and its home, for scripted experts
    @property
    def arm_qpos_adr(self) -> np.ndarray:
        """Addresses of the arm joints in ``data.qpos``, in the robot spec's order (a copy)."""
        return self._qpos_adr.copy()

    @property
    def arm_dof_adr(self) -> np.ndarray:
        """Addresses of the arm joints in ``data.qvel``, in the robot spec's order (a copy)."""
        return self._qvel_adr.copy()

    @property
    def arm_joint_range(self) -> np.ndarray:
        """(n, 2) lower and upper limits of the arm joints (infinite where a joint has none)."""
        joints = [self.model.joint(ROBOT_PREFIX + j) for j in self.robot.arm_joints]
        return np.array([j.range if j.limited[0] else (-np.inf, np.inf) for j in joints], dtype=np.float64)

    @property
    def robot_bodies(self) -> tuple[int, ...]:
        """Ids of the arm's bodies (gripper included)."""
        return self._robot_bodies

    def holds(self, i: int) -> bool:
        """Whether the gripper holds task object ``i``: it touches the arm while the gripper is closing."""
        body = self.model.body(self.task.objects[i]).id
        if self.gripper_state() < 0.2:
            return False
        robot = set(self._robot_bodies)
        for contact in self.data.contact[: self.data.ncon]:
            pair = {int(self.model.geom_bodyid[contact.geom1]), int(self.model.geom_bodyid[contact.geom2])}
            if body in pair and pair & robot:
                return True
        return False

    @property
    def ee_site(self) -> int:
        """Id of the end-effector site (z along the approach, y the fingers' closing axis)."""
        return int(self._ee_site)

    def home_data(self, gripper: float = 0.0, settle_steps: int = 0) -> mujoco.MjData:
        """Scratch physics at the home keyframe with the home controls and the gripper commanded to
        ``gripper`` (0 open .. 1 closed), after ``settle_steps`` physics steps with the arm held still;
        the env's own state is untouched."""
        m, d = self.model, mujoco.MjData(self.model)
        mujoco.mj_resetDataKeyframe(m, d, self._home_key)
        d.ctrl[:] = self._home_ctrl
        d.ctrl[self._grip_act] = self.robot.gripper.ctrl(gripper)
        q_arm = d.qpos[self._qpos_adr].copy()
        for _ in range(settle_steps):
            mujoco.mj_step(m, d)
            d.qpos[self._qpos_adr] = q_arm
            d.qvel[self._qvel_adr] = 0.0
        mujoco.mj_forward(m, d)
        return d

    # observations
    def observe(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Observation and info of the current state without stepping (e.g. after :meth:`set_state`)."""
        return self._observation(), self._info()

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """End-effector position and rotation matrix in the robot base (= world) frame."""
        return self.data.site_xpos[self._ee_site].copy(), self.data.site_xmat[self._ee_site].reshape(3, 3).copy()

    def commanded_ee_pos(self) -> np.ndarray | None:
        """Where the controller is taking the end effector (``ee_delta``: the commanded position, which
        may lead the measured one); None for joint targets."""
        return self._command[4:7].copy() if self.controller.command_size == 7 else None

    def gripper_state(self) -> float:
        return opening_fraction(self.data.actuator_length[self._grip_act], self._grip_length)

    def render_cameras(self) -> dict[str, np.ndarray]:
        if self._renderer is None:  # the GL context belongs to the process that renders
            self._renderer = CameraRenderer(self.model, self.cameras, *self._image_shape[:2], fast=self._fast_render)
        return self._renderer.render(self.data, self.decor)

    def _ee_quat(self) -> np.ndarray:
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self._ee_site])
        return quat

    def _observation_layout(self) -> list[tuple[str, slice]]:
        """Where each low-dimensional observation lies in the one array a step's observations are views of.

        The arm's joint positions and, where the task's accessors are views of ``qpos`` (as the base task's
        are), the objects' poses come first, gathered from ``qpos`` in one take (``self._qpos_take``)."""
        d, task = self.data, self.task
        n = len(task.objects)
        objects = [task.object_pos(d, i) for i in range(n)] + [task.object_quat(d, i) for i in range(n)]
        offsets = [_qpos_offset(d.qpos, view) for view in objects]
        self._objects_in_qpos = n > 0 and None not in offsets
        sizes = {"joint_pos": len(self._qpos_adr)}
        take = list(self._qpos_adr)
        if n:
            sizes["object_pos"], sizes["object_quat"] = 3 * n, 4 * n
            if self._objects_in_qpos:
                for offset, view in zip(offsets, objects, strict=True):
                    take += range(offset, offset + len(view))
        sizes.update({"joint_vel": len(self._qvel_adr), "ee_pos": 3, "ee_quat": 4, "gripper": 1})
        if task.has_goal:
            sizes["goal_pos"] = 3
        where, at = {}, 0
        for key, size in sizes.items():
            where[key] = slice(at, at + size)
            at += size
        self._qpos_take = np.array(take, dtype=np.int64)
        self._take_span = slice(0, len(take))
        self._obs_size = at
        self._slices = (where["joint_vel"], where["ee_pos"], where["ee_quat"], where["gripper"].start)
        self._object_slices = (where["object_pos"], where["object_quat"]) if n else None
        self._goal_slice = where.get("goal_pos")
        self._qvel_span = _span(self._qvel_adr)
        return [(key, where[key]) for key in _OBS_ORDER if key in where]  # the keys in their documented order

    def _observation(self) -> dict[str, np.ndarray]:
        """This state's observations: the low-dimensional ones are views of one array made for this call (a
        caller may keep them: the next step never writes into them), the images arrays of their own."""
        d, task = self.data, self.task
        values = np.empty(self._obs_size)
        joint_vel, ee_pos, ee_quat, gripper = self._slices
        np.take(d.qpos, self._qpos_take, out=values[self._take_span])
        if self._qvel_span is None:
            np.take(d.qvel, self._qvel_adr, out=values[joint_vel])
        else:
            values[joint_vel] = d.qvel[self._qvel_span]
        values[ee_pos] = self._ee_xpos
        quat = values[ee_quat]
        mujoco.mju_mat2Quat(quat, self._ee_xmat)
        if not float(quat.dot(self._home_ee_quat)) >= 0.0:  # quat_near(quat, home)
            np.negative(quat, out=quat)
        values[gripper] = opening_fraction(self._grip_now[0], self._grip_length)
        if self._object_slices is not None and not self._objects_in_qpos:
            (pos, quats), n = self._object_slices, len(task.objects)
            values[pos] = np.concatenate([task.object_pos(d, i) for i in range(n)])
            values[quats] = np.concatenate([task.object_quat(d, i) for i in range(n)])
        if self._goal_slice is not None:
            values[self._goal_slice] = task.goal_pos(d)
        obs = {key: values[where] for key, where in self._obs_slices}
        if self.cameras:
            for cam, image in self.render_cameras().items():
                obs[image_key(cam)] = image
        return obs

    def _info(self, success: bool | None = None, lost: bool | None = None) -> dict[str, Any]:
        success = self.task.is_success(self.data) if success is None else success
        lost = self.task.object_lost(self.data) if lost is None else lost
        return {"success": success, "is_success": success, "object_lost": lost, "step": self._steps}

    def _make_observation_space(self) -> gym.spaces.Dict:
        """Boxes for :attr:`EnvSpec.observations <protege.sim.spec.EnvSpec.observations>`: images uint8,
        quaternions within [-1, 1], the gripper within [0, 1], the rest unbounded float64."""
        spaces: dict[str, gym.spaces.Space] = {}
        for key, kind, shape in self.env_spec.observations:
            if kind == IMAGE:
                spaces[key] = gym.spaces.Box(0, 255, shape, dtype=np.uint8)
            else:
                low, high = ((-1.0, 1.0) if key.endswith("_quat") else (0.0, 1.0) if key == "gripper"
                             else (-np.inf, np.inf))
                spaces[key] = gym.spaces.Box(low, high, shape, np.float64)
        return gym.spaces.Dict(spaces)


def _qpos_offset(qpos: np.ndarray, view: np.ndarray) -> int | None:
    """Where ``view`` starts in ``qpos`` if it is a contiguous view of it, else None."""
    if not isinstance(view, np.ndarray) or view.base is None or not np.shares_memory(qpos, view):
        return None
    if view.dtype != qpos.dtype or view.ndim != 1 or view.strides != qpos.strides:
        return None
    offset, rest = divmod(view.__array_interface__["data"][0] - qpos.__array_interface__["data"][0], qpos.itemsize)
    return offset if rest == 0 and 0 <= offset <= len(qpos) - len(view) else None


def _span(index: np.ndarray) -> slice | None:
    """``index`` as a slice where it is a contiguous run, else None."""
    if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
        return slice(int(index[0]), int(index[0]) + len(index))
    return None


def make(
    task: str = "lift",
    robot: str | RobotSpec = DEFAULT_ROBOT,
    cameras: Sequence[str] = DEFAULT_CAMERAS,
    image_size: int | tuple[int, int] = 128,
    action_space: str = "ee_delta",
    control_hz: float = 20.0,
    substeps: int | None = None,
    **options: Any,
) -> ProtegeEnv:
    """The env of these settings (:meth:`EnvSpec.make <protege.sim.spec.EnvSpec.make>`); ``options`` are
    :class:`ProtegeEnv`'s. The gymnasium ids' entry point: ``gymnasium.make("protege/Lift-v0", robot="panda")``."""
    return ProtegeEnv(EnvSpec.make(task, robot, cameras, image_size, control_hz, action_space, substeps), **options)
