"""stack: put the red cube on top of the green cube and let go."""

from __future__ import annotations

import mujoco
import numpy as np

from protege.sim.tasks.base import CUBE_HALF, Task, add_cube, distance, smooth_reach

MIN_START_DISTANCE = 0.09
XY_TOLERANCE = 0.015
_ON_TOP = np.array([0.0, 0.0, 2 * CUBE_HALF])  # the top cube's centre over the bottom one's when stacked


class Stack(Task):
    """Put the red cube on top of the green cube and let go."""

    name = "stack"
    time_limit = 12.0
    objects = ("cube", "base_cube")
    grasps = True

    def add_bodies(self, scene: mujoco.MjSpec) -> None:
        add_cube(scene, "cube", [0.85, 0.2, 0.2, 1])
        add_cube(scene, "base_cube", [0.2, 0.7, 0.3, 1], mass=0.2)

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        a, b = self.sample_two_xy(rng, MIN_START_DISTANCE)
        self.set_object_pose(data, 0, np.array([*a, CUBE_HALF]), rng.uniform(-np.pi / 4, np.pi / 4))
        self.set_object_pose(data, 1, np.array([*b, CUBE_HALF]), rng.uniform(-np.pi / 4, np.pi / 4))

    def is_success(self, data: mujoco.MjData) -> bool:
        top, bottom = self.object_pos(data, 0), self.object_pos(data, 1)
        on_top = distance(top[:2], bottom[:2]) < XY_TOLERANCE and abs(float(top[2] - bottom[2]) - 2 * CUBE_HALF) < 0.005
        return on_top and distance(self.ee_pos(data), top) > CUBE_HALF + 0.015

    def reward(self, data: mujoco.MjData) -> float:
        top, bottom = self.object_pos(data, 0), self.object_pos(data, 1)
        reach = smooth_reach(distance(self.ee_pos(data), top))
        place = smooth_reach(distance(top - bottom, _ON_TOP), 0.05)
        return 1.0 if self.is_success(data) else 0.2 * reach + 0.7 * place
