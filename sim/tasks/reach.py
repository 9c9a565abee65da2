"""reach: bring the end effector to a target point in the air."""

from __future__ import annotations

import mujoco
import numpy as np

from protege.sim.tasks.base import Task, distance, smooth_reach

TOLERANCE = 0.025


class Reach(Task):
    """Bring the end effector to a target point in the air."""

    name = "reach"
    time_limit = 5.0
    has_goal = True

    def add_bodies(self, scene: mujoco.MjSpec) -> None:
        body = scene.worldbody.add_body(name="target", mocap=True, pos=[0.4, 0.0, 0.1])
        body.add_geom(
            name="target", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[TOLERANCE, 0, 0], rgba=[0.2, 0.9, 0.3, 0.5],
            contype=0, conaffinity=0, group=2,
        )

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        data.mocap_pos[0] = [*self.sample_xy(rng), rng.uniform(0.05, 0.2)]

    def is_success(self, data: mujoco.MjData) -> bool:
        return distance(self.ee_pos(data), data.mocap_pos[0]) < TOLERANCE

    def reward(self, data: mujoco.MjData) -> float:
        return smooth_reach(distance(self.ee_pos(data), data.mocap_pos[0]))
