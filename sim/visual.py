"""Visual disturbances: what the cameras see changes, the physics does not.

Each family is drawn per episode from the episode seed alone (so a seed looks the same whichever worker
runs it) and applied on top of the model's own appearance, which :class:`Look` keeps and restores first:

- ``lighting`` (scale, 1 by default): each light's direction tilts up to 35 degrees times the scale and
  its diffuse intensity is scaled by 1 +- 0.5 x scale; the headlight's by 1 +- 0.4 x scale.
- ``colors`` (rgb, 0.2): the table, each task object and the arm (one shift for all its geoms) have their
  red, green and blue shifted by up to this much.
- ``camera`` (scale, 1): each camera moves up to 5 mm times the scale and turns up to 3 degrees times it.
- ``distractors`` (objects, 3): one to this many boxes, spheres and cylinders, 1.5-3 cm, stand on the
  table at least 8 cm from the task's objects and goal. They are drawn, never simulated
  (:class:`~protege.sim.render.Decor`): the arm and the objects pass through them, and no observation
  but the images sees them.

The goal marker and reach's target keep their colour: they are what the task asks for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any, Protocol

import mujoco
import numpy as np

from protege.sim.render import Decor
from protege.sim.robot import RobotSpec
from protege.sim.tasks.base import Task


class Scene(Protocol):
    """What a :class:`Look` changes and reads: a :class:`~protege.sim.env.Scene`."""

    model: mujoco.MjModel
    data: mujoco.MjData
    task: Task
    robot: RobotSpec
    decor: tuple[Decor, ...]

    @property
    def robot_bodies(self) -> tuple[int, ...]: ...

VISUAL_FAMILIES = ("lighting", "colors", "camera", "distractors")
_SALT = 0x7153  # keeps these draws apart from the physical disturbances' and the task's
_DEFAULT_RGBA = np.array([0.5, 0.5, 0.5, 1.0], np.float32)  # a geom with this rgba shows its material's
_CLEARANCE = 0.08  # m between a distractor and a task object or the goal
_SHAPES = (int(mujoco.mjtGeom.mjGEOM_BOX), int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_CYLINDER))


class Look:
    """One env's appearance: the model's own, kept at construction, and an episode's draw on top of it."""

    def __init__(self, env: Scene) -> None:
        m = env.model
        self._env = env
        self._drawn = False
        self._light = (m.light_dir.copy(), m.light_diffuse.copy())
        self._headlight = (m.vis.headlight.diffuse.copy(), m.vis.headlight.ambient.copy())
        self._camera = (m.cam_pos.copy(), m.cam_quat.copy())
        self._rgba = m.geom_rgba.copy()
        self._shown = m.geom_rgba.copy()  # the colour each geom is drawn in: its material's where it has one
        material = (m.geom_matid >= 0) & np.all(m.geom_rgba == _DEFAULT_RGBA, axis=1)
        self._shown[material] = m.mat_rgba[m.geom_matid[material]]
        self._parts = _coloured_parts(env)

    def restore(self) -> None:
        """The model's own appearance again (nothing to do if nothing was drawn)."""
        if not self._drawn:
            return
        self._drawn = False
        m = self._env.model
        m.light_dir[:], m.light_diffuse[:] = self._light
        m.vis.headlight.diffuse[:], m.vis.headlight.ambient[:] = self._headlight
        m.cam_pos[:], m.cam_quat[:] = self._camera
        m.geom_rgba[:] = self._rgba
        self._env.decor = ()
        mujoco.mj_camlight(m, self._env.data)

    def draw(self, seed: int, magnitudes: Mapping[str, float]) -> dict[str, Any]:
        """Restore the model's appearance, then apply ``magnitudes`` (family -> magnitude) as drawn from
        ``seed``; what was drawn, as JSON-ready values."""
        self.restore()
        self._drawn = True
        env, m = self._env, self._env.model
        drawn: dict[str, Any] = {}
        for index, family in enumerate(VISUAL_FAMILIES):
            if family not in magnitudes:
                continue
            rng, x = np.random.default_rng([_SALT, seed, index]), float(magnitudes[family])
            if x == 0:
                continue
            if family == "lighting":
                for i in range(m.nlight):
                    m.light_dir[i] = _tilt(m.light_dir[i], np.radians(35.0) * x, rng)
                    m.light_diffuse[i] = np.clip(m.light_diffuse[i] * rng.uniform(1 - 0.5 * x, 1 + 0.5 * x), 0, 1)
                head = rng.uniform(1 - 0.4 * x, 1 + 0.4 * x)
                m.vis.headlight.diffuse[:] = np.clip(m.vis.headlight.diffuse * head, 0, 1)
                m.vis.headlight.ambient[:] = np.clip(m.vis.headlight.ambient * head, 0, 1)
                drawn[family] = {"light_dir": m.light_dir.tolist(), "light_diffuse": m.light_diffuse.tolist(),
                                 "headlight": float(head)}
            elif family == "colors":
                shifts = {}
                for part, geoms in self._parts.items():
                    shift = rng.uniform(-x, x, 3)
                    m.geom_rgba[geoms, :3] = np.clip(self._shown[geoms, :3] + shift, 0, 1)
                    m.geom_rgba[geoms, 3] = self._shown[geoms, 3]
                    shifts[part] = shift.round(4).tolist()
                drawn[family] = shifts
            elif family == "camera":
                for i in range(m.ncam):
                    m.cam_pos[i] += _in_ball(rng) * 0.005 * x
                    turn = np.empty(4)
                    axis = _in_ball(rng)
                    mujoco.mju_axisAngle2Quat(turn, axis / max(np.linalg.norm(axis), 1e-9),
                                              np.radians(3.0) * x * rng.uniform())
                    mujoco.mju_mulQuat(m.cam_quat[i], turn, m.cam_quat[i].copy())
                drawn[family] = {"cam_pos": m.cam_pos.round(5).tolist(), "cam_quat": m.cam_quat.round(5).tolist()}
            else:
                env.decor = _distractors(env, int(x), rng)
                drawn[family] = [asdict(d) for d in env.decor]
        mujoco.mj_camlight(m, env.data)
        return drawn


def _coloured_parts(env: Scene) -> dict[str, np.ndarray]:
    """Geom ids per part whose colour ``colors`` shifts: the table, each task object, the arm (every geom
    of the robot's bodies)."""
    m = env.model
    objects = {obj: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, obj) for obj in env.task.objects}
    parts = {"table": np.array([mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "table")])}
    parts.update({obj: np.flatnonzero(m.geom_bodyid == body) for obj, body in objects.items()})
    robot = set(env.robot_bodies)
    parts["arm"] = np.array([g for g in range(m.ngeom) if int(m.geom_bodyid[g]) in robot and m.geom_group[g] <= 2], int)
    return {part: geoms for part, geoms in parts.items() if len(geoms) and geoms.min() >= 0}


def _distractors(env: Scene, most: int, rng: np.random.Generator) -> tuple[Decor, ...]:
    m, d = env.model, env.data
    bodies = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b) for b in (*env.task.objects, "goal", "target")]
    keep_clear = [d.xpos[body][:2] for body in bodies if body >= 0]
    workspace = env.robot.workspace
    centre, half = np.array(workspace.center), np.array(workspace.half_extent) + 0.05
    placed: list[Decor] = []
    for _ in range(int(rng.integers(1, most + 1))):
        kind, radius = _SHAPES[int(rng.integers(len(_SHAPES)))], float(rng.uniform(0.015, 0.03))
        size = (radius, radius, radius) if kind != _SHAPES[2] else (radius, radius, 0.0)
        rgba = (*rng.uniform(0.05, 0.95, 3).round(3).tolist(), 1.0)
        yaw = float(rng.uniform(0, np.pi))
        for _ in range(20):
            xy = centre + rng.uniform(-1, 1, 2) * half
            if all(np.linalg.norm(xy - other) >= _CLEARANCE for other in keep_clear):
                placed.append(Decor(kind, size, (float(xy[0]), float(xy[1]), radius), yaw, rgba))
                keep_clear.append(xy)
                break
    return tuple(placed)


def _in_ball(rng: np.random.Generator) -> np.ndarray:
    """A point drawn uniformly in the unit ball."""
    direction = rng.normal(size=3)
    return direction / max(np.linalg.norm(direction), 1e-9) * rng.uniform() ** (1 / 3)


def _tilt(direction: np.ndarray, most: float, rng: np.random.Generator) -> np.ndarray:
    """``direction`` turned by up to ``most`` radians about a random axis."""
    turn, axis = np.empty(4), _in_ball(rng)
    mujoco.mju_axisAngle2Quat(turn, axis / max(np.linalg.norm(axis), 1e-9), most * rng.uniform())
    out = np.empty(3)
    mujoco.mju_rotVecQuat(out, direction, turn)
    return out
