"""The task interface: what a task adds to the scene, how it resets, and how it is judged.

Everything a task randomises lives in the physics state (free joints of objects, mocap bodies for
goals), so ``mj_getState``/``mj_setState`` restore an episode exactly.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import mujoco
import numpy as np

from protege.sim.errors import UnsuitableRobotError
from protege.sim.robot import RobotSpec

CUBE_HALF = 0.02
# Sliding friction of the cubes. Contacts take the larger of the two geoms' values (the table has
# 0.6; the fingers win with their own, higher friction), so a cube slides on the table instead of
# tipping over when pushed at mid height, and still holds in a grasp.
CUBE_FRICTION = 0.5


OPENING_CLEARANCE = 0.005  # a pusher passing an opening keeps this much from each side (metres)


@dataclass(frozen=True)
class Opening:
    """A gap in the scene that the closed gripper must push through, ``width`` metres across."""

    name: str
    width: float

    def fits(self, pusher: float) -> bool:
        """Whether a pusher ``pusher`` metres wide passes, :data:`OPENING_CLEARANCE` from each side."""
        return pusher <= self.width - 2 * OPENING_CLEARANCE


class Task(ABC):
    name: ClassVar[str]
    time_limit: ClassVar[float]  # seconds of simulated time per episode
    objects: ClassVar[tuple[str, ...]] = ()  # free bodies reported as object_pos/object_quat
    has_goal: ClassVar[bool] = False  # whether the observation carries goal_pos
    grasps: ClassVar[bool] = False  # whether the task is done by picking object 0 up
    opening: ClassVar[Opening | None] = None  # a gap the closed gripper must push through

    @classmethod
    def check_robot(cls, robot: RobotSpec) -> None:
        """Refuse an arm that cannot do this task (:class:`~protege.sim.errors.UnsuitableRobotError`): one
        whose workspace on the table lies beyond its reach, or, for a task with an :attr:`opening`, whose
        closed gripper is too wide for it both along and across the closing axis."""
        geometry = robot.geometry
        cx, cy = robot.workspace.center
        hx, hy = robot.workspace.half_extent
        corners = np.array([[cx + sx * hx, cy + sy * hy, CUBE_HALF] for sx in (-1, 1) for sy in (-1, 1)])
        distances = np.linalg.norm(corners - geometry.shoulder, axis=1)
        far = int(np.argmax(distances))
        if distances[far] > geometry.reach:
            raise UnsuitableRobotError(robot.name, cls.name, (
                f"its workspace corner ({corners[far, 0]:.2f}, {corners[far, 1]:.2f}) is {distances[far]:.2f} m "
                f"from its shoulder, beyond its {geometry.reach:.2f} m reach "
                f"(workspace in {robot.source or 'the spec'})"))
        gripper, opening = geometry.gripper, cls.opening
        if opening is None:
            return
        if gripper is None:
            raise UnsuitableRobotError(robot.name, cls.name, f"it needs a gripper to push through the {opening.name}, "
                                       "and no collision geom moves between the spec's open and closed")
        if not (opening.fits(gripper.thickness) or opening.fits(gripper.width_closed)):
            raise UnsuitableRobotError(robot.name, cls.name, (
                f"its closed gripper is {100 * gripper.width_closed:.1f} cm wide and {100 * gripper.thickness:.1f} cm "
                f"thick, wider either way than the {100 * opening.width:.1f} cm {opening.name} it must push through "
                f"(at most {100 * (opening.width - 2 * OPENING_CLEARANCE):.1f} cm)"))

    def __init__(self) -> None:
        self.workspace_center = np.zeros(2)
        self.workspace_half = np.ones(2)

    def build(self, scene: mujoco.MjSpec, robot: RobotSpec) -> None:
        """Add this task's bodies to the scene."""
        self.workspace_center = np.asarray(robot.workspace.center, float)
        self.workspace_half = np.asarray(robot.workspace.half_extent, float)
        self.add_bodies(scene)

    @abstractmethod
    def add_bodies(self, scene: mujoco.MjSpec) -> None: ...

    def bind(self, model: mujoco.MjModel) -> None:
        """Cache ids once the scene is compiled."""
        self.model = model
        self._object_qpos = [model.jnt_qposadr[model.body(o).jntadr[0]] for o in self.objects]
        self._ee_site = model.site("ee").id
        table = model.geom("table")
        low, high = table.pos[:2] - table.size[:2], table.pos[:2] + table.size[:2]  # the top's corners
        self._table_xy = (*low.tolist(), *high.tolist())

    @abstractmethod
    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        """Place objects and goals for a new episode (robot already at home)."""

    @abstractmethod
    def is_success(self, data: mujoco.MjData) -> bool: ...

    @abstractmethod
    def reward(self, data: mujoco.MjData) -> float:
        """Dense reward in [0, 1] for logging; 1 at success."""

    def goal_pos(self, data: mujoco.MjData) -> np.ndarray:
        return data.mocap_pos[0].copy()

    # Helpers shared by the tasks.
    def object_pos(self, data: mujoco.MjData, i: int = 0) -> np.ndarray:
        a = self._object_qpos[i]
        return data.qpos[a : a + 3]

    def object_quat(self, data: mujoco.MjData, i: int = 0) -> np.ndarray:
        a = self._object_qpos[i]
        return data.qpos[a + 3 : a + 7]

    def set_object_pose(self, data: mujoco.MjData, i: int, pos: np.ndarray, yaw: float = 0.0) -> None:
        a = self._object_qpos[i]
        data.qpos[a : a + 3] = pos
        data.qpos[a + 3 : a + 7] = [np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]

    def shift_object(self, data: mujoco.MjData, i: int, offset: np.ndarray) -> None:
        """Move object ``i`` by ``offset`` (world frame, metres) and stop it."""
        a = self._object_qpos[i]
        data.qpos[a : a + 3] += offset
        dof = self.model.jnt_dofadr[self.model.body(self.objects[i]).jntadr[0]]
        data.qvel[dof : dof + 6] = 0.0

    def object_resting(self, data: mujoco.MjData, i: int) -> bool:
        """Whether object ``i`` lies on the table (its centre no higher than a resting cube's)."""
        return bool(self.object_pos(data, i)[2] < CUBE_HALF + 0.005)

    def object_lost(self, data: mujoco.MjData) -> bool:
        """Whether an object has left the table: its centre beyond the top's edges or a cube's height below
        the top (it fell, or the physics threw it). No task can succeed from there."""
        low_x, low_y, high_x, high_y = self._table_xy
        qpos = data.qpos
        for a in self._object_qpos:
            x, y, z = qpos[a : a + 3].tolist()
            if z < -2 * CUBE_HALF or x < low_x or y < low_y or x > high_x or y > high_y:
                return True
        return False

    def in_workspace(self, xy: np.ndarray, margin: float = 1.25) -> bool:
        """Whether a table point lies within the arm's workspace, widened by ``margin``."""
        return bool(np.all(np.abs(np.asarray(xy) - self.workspace_center) <= margin * self.workspace_half))

    def sample_xy(self, rng: np.random.Generator, shrink: float = 1.0) -> np.ndarray:
        return self.workspace_center + rng.uniform(-1.0, 1.0, 2) * self.workspace_half * shrink

    def sample_two_xy(self, rng: np.random.Generator, min_distance: float) -> tuple[np.ndarray, np.ndarray]:
        """Two table points at least ``min_distance`` apart (rejection sampling)."""
        while True:
            a, b = self.sample_xy(rng, 0.9), self.sample_xy(rng, 0.9)
            if np.linalg.norm(a - b) >= min_distance:
                return a, b

    def ee_pos(self, data: mujoco.MjData) -> np.ndarray:
        return data.site_xpos[self._ee_site]


def add_cube(scene: mujoco.MjSpec, name: str, rgba: list[float], half: float = CUBE_HALF, mass: float = 0.05) -> None:
    body = scene.worldbody.add_body(name=name, pos=[0.4, 0.0, half])
    body.add_freejoint(name=name)
    body.add_geom(
        name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[half, half, half], rgba=rgba, mass=mass,
        friction=[CUBE_FRICTION, 0.01, 0.001], condim=4,
    )


def add_goal_marker(scene: mujoco.MjSpec, name: str, radius: float, rgba: list[float], height: float = 0.001) -> None:
    """A visual-only goal disc carried by a mocap body (so its position is part of the physics state)."""
    body = scene.worldbody.add_body(name=name, mocap=True, pos=[0.4, 0.0, 0.0])
    body.add_geom(
        name=name, type=mujoco.mjtGeom.mjGEOM_CYLINDER, size=[radius, height, 0], rgba=rgba,
        contype=0, conaffinity=0, group=2,
    )


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """``np.linalg.norm(a - b)`` for vectors, to the bit (the square root of the difference's dot product, as
    numpy computes it), without its checks: tasks judge every step with it."""
    diff = a - b
    return math.sqrt(diff.dot(diff))


def smooth_reach(distance: float, scale: float = 0.1) -> float:
    """Map a distance to (0, 1]: 1 at zero, 1/2 at ``scale``."""
    return float(1.0 / (1.0 + (distance / scale) ** 2))
