"""push: push a cube onto a target region on the table."""

from __future__ import annotations

import mujoco
import numpy as np

from protege.sim.tasks.base import CUBE_HALF, Task, add_cube, add_goal_marker, distance, smooth_reach

GOAL_RADIUS = 0.03
MIN_START_DISTANCE = 0.1


class Push(Task):
    """Push a cube onto a target region on the table."""

    name = "push"
    time_limit = 10.0
    objects = ("cube",)
    has_goal = True
    goal_radius = GOAL_RADIUS

    def add_bodies(self, scene: mujoco.MjSpec) -> None:
        add_cube(scene, "cube", [0.85, 0.2, 0.2, 1])
        add_goal_marker(scene, "goal", self.goal_radius, [0.2, 0.85, 0.3, 0.6])

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        cube, goal = self.sample_two_xy(rng, MIN_START_DISTANCE)
        self.set_object_pose(data, 0, np.array([*cube, CUBE_HALF]), rng.uniform(-np.pi / 4, np.pi / 4))
        data.mocap_pos[0] = [*goal, 0.0]

    def _distance(self, data: mujoco.MjData) -> float:
        return distance(self.object_pos(data)[:2], data.mocap_pos[0, :2])

    def is_success(self, data: mujoco.MjData) -> bool:
        return self._distance(data) < self.goal_radius

    def reward(self, data: mujoco.MjData) -> float:
        reach = smooth_reach(distance(self.ee_pos(data), self.object_pos(data)))
        return 0.2 * reach + 0.8 * smooth_reach(self._distance(data), 0.05)
