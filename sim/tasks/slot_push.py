"""slot_push: push a block through a narrow slot in a wall to the goal behind it.

The slot leaves 1 cm of clearance on each side of the block, so a push that starts a little off
line or lets the block turn ends against the wall: small errors compound at the bottleneck.
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from protege.sim.tasks.base import CUBE_HALF, Opening, add_cube, add_goal_marker
from protege.sim.tasks.push import Push

SLOT_WIDTH = 0.06
WALL_HALF_THICKNESS = 0.01
WALL_HALF_LENGTH = 0.12  # each wall segment, either side of the slot
WALL_HALF_HEIGHT = 0.02
WALL_OFFSET = 0.03  # wall x relative to the workspace centre
GOAL_OFFSET = 0.09  # goal x beyond the wall
GOAL_RADIUS = 0.035


class SlotPush(Push):
    """Push a block through a narrow slot in a wall to the goal behind it."""

    name = "slot_push"
    time_limit = 12.0
    objects = ("block",)
    goal_radius = GOAL_RADIUS
    opening: ClassVar[Opening] = Opening("slot", SLOT_WIDTH)

    def add_bodies(self, scene: mujoco.MjSpec) -> None:
        add_cube(scene, "block", [0.25, 0.4, 0.85, 1])
        add_goal_marker(scene, "goal", GOAL_RADIUS, [0.2, 0.85, 0.3, 0.6])
        wall = scene.worldbody.add_body(name="wall", mocap=True, pos=[0.45, 0.0, WALL_HALF_HEIGHT])
        offset = SLOT_WIDTH / 2 + WALL_HALF_LENGTH
        for side, sign in (("left", 1.0), ("right", -1.0)):
            wall.add_geom(
                name=f"wall_{side}", type=mujoco.mjtGeom.mjGEOM_BOX, pos=[0, sign * offset, 0],
                size=[WALL_HALF_THICKNESS, WALL_HALF_LENGTH, WALL_HALF_HEIGHT], rgba=[0.45, 0.45, 0.5, 1],
                friction=[0.3, 0.005, 0.0001],
            )

    def reset(self, data: mujoco.MjData, rng: np.random.Generator) -> None:
        cx, cy = self.workspace_center
        slot_y = cy + rng.uniform(-0.03, 0.03)
        wall_x = cx + WALL_OFFSET
        data.mocap_pos[1] = [wall_x, slot_y, WALL_HALF_HEIGHT]
        data.mocap_pos[0] = [wall_x + GOAL_OFFSET, slot_y, 0.0]
        side = rng.choice([-1.0, 1.0])
        block = [wall_x - rng.uniform(0.09, 0.13), slot_y + side * rng.uniform(0.02, 0.08), CUBE_HALF]
        self.set_object_pose(data, 0, np.array(block), rng.uniform(-0.1, 0.1))

    def slot_center(self, data: mujoco.MjData) -> np.ndarray:
        return data.mocap_pos[1, :2].copy()
