"""The gymnasium environment: one robot, one task, a fixed control rate, dict observations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from protege.sim.controllers import gripper_opening_fraction, make_controller
from protege.sim.errors import SimError
from protege.sim.render import CameraRenderer, check_cameras
from protege.sim.robot import DEFAULT_ROBOT, RobotSpec, home_ctrl
from protege.sim.scene import ROBOT_PREFIX, SceneOptions, build_scene
from protege.sim.spec import DEFAULT_CAMERAS, IMAGE, EnvSpec, image_key
from protege.sim.tasks import TASKS

STATE_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION  # physics, controls, mocap and warm start: exact replay


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
        self.controller = make_controller(spec.action_space, self.robot, m.actuator_ctrlrange[self._arm_act])
        self._command = self.data.userdata[: self.controller.command_size]  # view: saved with the state

        self.cameras = self.env_spec.cameras
        self._image_shape = (height, width, 3)
        self._renderer: CameraRenderer | None = None
        self._fast_render = not high
        check_cameras(m, self.cameras)  # fail early on a bad camera name, before any GL context exists
        self.action_space = gym.spaces.Box(self.controller.action_low, self.controller.action_high, dtype=np.float64)
        self.observation_space = self._make_observation_space()
        self._steps = 0

    # gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        mujoco.mj_resetDataKeyframe(self.model, self.data, self._home_key)
        self.data.ctrl[:] = self._home_ctrl
        self.data.ctrl[self._grip_act] = self.robot.gripper.ctrl(0.0)  # episodes start with the gripper open
        self.task.reset(self.data, self.np_random)
        mujoco.mj_forward(self.model, self.data)
        self.controller.reset_command(self.data.qpos[self._qpos_adr], self._command)
        self._steps = 0
        return self._observation(), self._info()

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise SimError(f"action has shape {action.shape}, expected {self.action_space.shape}")
        d = self.data
        d.ctrl[self._arm_act] = self.controller.arm_targets(d.qpos[self._qpos_adr], action, self._command)
        d.ctrl[self._grip_act] = self.robot.gripper.ctrl(action[-1])
        mujoco.mj_step(self.model, d, nstep=self.n_substeps)
        mujoco.mj_forward(self.model, d)  # kinematics of the new state: what set_state(get_state()) observes
        self._steps += 1
        success = self.task.is_success(d)
        lost = self.task.object_lost(d)
        terminated = (success and self.terminate_on_success) or lost
        truncated = self._steps >= self.max_steps
        return self._observation(), self.task.reward(d), terminated, truncated, self._info(success, lost)

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
        mujoco.mj_forward(self.model, self.data)
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
        g = self.robot.gripper
        return gripper_opening_fraction(self.model, self.data, self._grip_act, g.open, g.closed)

    def render_cameras(self) -> dict[str, np.ndarray]:
        if self._renderer is None:  # the GL context belongs to the process that renders
            self._renderer = CameraRenderer(self.model, self.cameras, *self._image_shape[:2], fast=self._fast_render)
        return self._renderer.render(self.data)

    def _ee_quat(self) -> np.ndarray:
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self._ee_site])
        return quat

    def _observation(self) -> dict[str, np.ndarray]:
        d = self.data
        obs = {
            "joint_pos": d.qpos[self._qpos_adr].copy(),
            "joint_vel": d.qvel[self._qvel_adr].copy(),
            "ee_pos": d.site_xpos[self._ee_site].copy(),
            "ee_quat": quat_near(self._ee_quat(), self._home_ee_quat),
            "gripper": np.array([self.gripper_state()]),
        }
        n = len(self.task.objects)
        if n:
            obs["object_pos"] = np.concatenate([self.task.object_pos(d, i) for i in range(n)])
            obs["object_quat"] = np.concatenate([self.task.object_quat(d, i) for i in range(n)])
        if self.task.has_goal:
            obs["goal_pos"] = self.task.goal_pos(d)
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
                low, high = (-1.0, 1.0) if key.endswith("_quat") else (0.0, 1.0) if key == "gripper" else (-np.inf, np.inf)
                spaces[key] = gym.spaces.Box(low, high, shape, np.float64)
        return gym.spaces.Dict(spaces)


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
