"""lift: grasp a cube and lift it off the table."""

from __future__ import annotations

import mujoco
import numpy as np

from protege.sim.tasks.base import CUBE_HALF, Task, add_cube, distance, smooth_reach

LIFT_HEIGHT = 0.08  # cube centre height that counts as lifted


class Lift(Task):
    """Grasp a cube and lift it off the table."""

    name = "lift"
    time_limit = 8.0
    objects = ("cube",)
    grasps = True

    def add_bodies(self, scene: mujoco.MjSpec) -> None:
        add_cube(scene, "cube", [0.85, 0.2, 0.2, 1])

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        self.set_object_pose(data, 0, np.array([*self.sample_xy(rng), CUBE_HALF]), rng.uniform(-np.pi / 4, np.pi / 4))

    def is_success(self, data: mujoco.MjData) -> bool:
        return bool(self.object_pos(data)[2] > LIFT_HEIGHT)

    def reward(self, data: mujoco.MjData) -> float:
        cube = self.object_pos(data)
        reach = smooth_reach(distance(self.ee_pos(data), cube))
        lift = min(max((float(cube[2]) - CUBE_HALF) / (LIFT_HEIGHT - CUBE_HALF), 0.0), 1.0)
        return 0.3 * reach + 0.7 * lift
