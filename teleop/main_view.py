"""A window's main view: a free camera on the scene that the person orbits, pans and zooms with the
mouse, rendered at window resolution for the window alone (never an observation, never recorded).

Mouse: left-drag orbits, right-drag pans, the wheel zooms; Ctrl+left-drag moves the gripper target in
the view plane and Ctrl+right-drag along height (taken out per tick by :meth:`MainView.take_drag`).
Keys: 0 resets the view, 1-9 snap it to the env's recorded cameras.

Cues drawn into the scene: a drop line from the gripper to the surface below it with a marker there
(coloured by the gripper's state), and a small sphere where the controller is taking the gripper.

The control loop's rate comes first: the view renders within a budget of each tick (``budget_s``),
dropping to a lower resolution (shown scaled up) when a busy machine makes it slow and climbing back
when there is room again.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np
import pygame

from protege.sim.render import add_decor

if TYPE_CHECKING:
    from protege.sim.env import ProtegeEnv

HOME_AZIMUTH, HOME_ELEVATION, HOME_DISTANCE = 180.0, -35.0, 1.3  # facing the arm across the table, as the front camera
HOME_LOOKAT_Z = 0.08
ZOOM_PER_NOTCH = 0.1  # of the distance, per wheel notch
ORBIT_DEG_PER_PIXEL = 0.3
DISTANCE = (0.2, 5.0)  # metres, the zoom's range
ELEVATION = (-89.0, 89.0)  # degrees
_RAY_TRIES = 6  # robot geoms the drop line may pass through on its way down
_HELD_RADIUS = 0.03  # an object geom centred this close to the gripper point is held, not below it
OPEN_RGBA = (0.2, 0.85, 0.95, 0.9)
CLOSED_RGBA = (1.0, 0.55, 0.1, 0.9)
TARGET_RGBA = (1.0, 0.9, 0.2, 0.45)
_IDENTITY = np.eye(3).ravel()
RENDER_SCALES = (1.0, 0.75, 0.5)  # of the view's size, tried in order while a render overruns its budget
_COST_SMOOTHING = 0.2  # weight of the newest render time in the running estimate
_WARM_UP_RENDERS = 3  # first renders at a resolution, left out of the estimate
_JUDGE_RENDERS = 10  # renders the estimate takes in before the resolution may drop
_SETTLE_RENDERS = 40  # renders at a resolution before a higher one is tried again


class MainView:
    """The free camera of a window on ``env``, ``size`` = (width, height) pixels."""

    def __init__(self, env: ProtegeEnv, size: tuple[int, int], budget_s: float | None = None) -> None:
        self.env = env
        self.size = size
        self.budget_s = budget_s
        self.level = 0  # index into RENDER_SCALES
        self._renderers = [self._make_renderer(scale) for scale in RENDER_SCALES]  # made now: not mid-loop
        self._cost = 0.0  # running estimate of a render's time at this level (seconds)
        self._renders = 0  # at this level
        self.camera = mujoco.MjvCamera()
        self._drag: tuple[int, bool] | None = None  # (mouse button, with Ctrl) while a drag is on
        self._pending = np.zeros(3)  # gripper-target motion dragged but not yet taken (metres)
        self._robot_root = env.model.body_rootid[env.model.site_bodyid[env.model.site("ee").id]]
        self.home()

    # -- camera ----------------------------------------------------------------------------------

    def home(self) -> None:
        """The default view: the workspace from across the table, facing the arm (heading -x)."""
        cx, cy = self.env.robot.workspace.center
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.lookat[:] = (cx, cy, HOME_LOOKAT_Z)
        self.camera.azimuth, self.camera.elevation, self.camera.distance = HOME_AZIMUTH, HOME_ELEVATION, HOME_DISTANCE

    def snap(self, camera: str) -> None:
        """Show exactly what the named scene camera sees (until the next drag frees the view)."""
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self.camera.fixedcamid = self.env.model.camera(camera).id

    @property
    def yaw(self) -> float:
        """The view's heading in the base frame (radians): the horizontal direction into the screen."""
        if self.camera.type == mujoco.mjtCamera.mjCAMERA_FIXED:
            forward = -self.env.data.cam_xmat[self.camera.fixedcamid].reshape(3, 3)[:, 2]
            return math.atan2(forward[1], forward[0])
        return math.radians(self.camera.azimuth)

    def _free(self) -> None:
        """Turn a snapped view into a free one looking the same way, so it can be dragged."""
        if self.camera.type != mujoco.mjtCamera.mjCAMERA_FIXED:
            return
        cam = self.camera.fixedcamid
        pos, forward = self.env.data.cam_xpos[cam], -self.env.data.cam_xmat[cam].reshape(3, 3)[:, 2]
        distance = HOME_DISTANCE / 2
        self.camera.type = mujoco.mjtCamera.mjCAMERA_FREE
        self.camera.lookat[:] = pos + distance * forward
        self.camera.distance = distance
        self.camera.azimuth = math.degrees(math.atan2(forward[1], forward[0]))
        self.camera.elevation = math.degrees(math.asin(float(np.clip(forward[2], -1.0, 1.0))))

    # -- input -----------------------------------------------------------------------------------

    def handle(self, event: pygame.event.Event, rect: pygame.Rect) -> bool:
        """Apply a mouse or view-key event over the view at ``rect``; True if it was the view's."""
        if event.type == pygame.MOUSEBUTTONDOWN and event.button in (1, 3) and rect.collidepoint(event.pos):
            self._drag = (event.button, bool(pygame.key.get_mods() & pygame.KMOD_CTRL))
            return True
        if event.type == pygame.MOUSEBUTTONUP and self._drag is not None and event.button == self._drag[0]:
            self._drag = None
            return True
        if event.type == pygame.MOUSEMOTION and self._drag is not None:
            self._move(*event.rel)
            return True
        if event.type == pygame.MOUSEWHEEL and rect.collidepoint(pygame.mouse.get_pos()):
            self._free()
            self.camera.distance = float(np.clip(self.camera.distance * (1.0 - ZOOM_PER_NOTCH * event.y), *DISTANCE))
            return True
        if event.type == pygame.KEYDOWN and pygame.K_0 <= event.key <= pygame.K_9:
            index = event.key - pygame.K_0
            if index == 0:
                self.home()
            elif index <= len(self.env.cameras):
                self.snap(self.env.cameras[index - 1])
            return True
        return False

    def _move(self, dx: int, dy: int) -> None:
        """Orbit (left button) or pan (right) by a mouse motion of (dx, dy) pixels; with Ctrl, drag the
        gripper target instead."""
        button, ctrl = self._drag  # type: ignore[misc]
        if ctrl:
            self._pending += self._drag_motion(dx, dy, vertical=button == 3)
            return
        self._free()
        cam = self.camera
        if button == 1:
            cam.azimuth = (cam.azimuth - ORBIT_DEG_PER_PIXEL * dx + 180.0) % 360.0 - 180.0
            cam.elevation = float(np.clip(cam.elevation - ORBIT_DEG_PER_PIXEL * dy, *ELEVATION))
            return
        azimuth, elevation = math.radians(cam.azimuth), math.radians(cam.elevation)
        forward = np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth),
                            math.sin(elevation)])
        right = np.array([math.sin(azimuth), -math.cos(azimuth), 0.0])
        up = np.cross(right, forward)
        metres_per_pixel = 2.0 * cam.distance * math.tan(math.radians(self._fovy()) / 2) / self.size[1]
        cam.lookat[:] = cam.lookat - (dx * right - dy * up) * metres_per_pixel  # the scene follows the mouse

    def _drag_motion(self, dx: int, dy: int, vertical: bool) -> np.ndarray:
        """World motion for a Ctrl-drag of (dx, dy) pixels: in the view plane through the gripper (left
        button) or along height (right button), one pixel being one pixel's width at the gripper."""
        scene = self._renderer().scene
        frame = scene.camera[0]
        eye = (np.asarray(frame.pos) + np.asarray(scene.camera[1].pos)) / 2
        forward, up = np.asarray(frame.forward), np.asarray(frame.up)
        right = np.cross(forward, up)
        ee, _ = self.env.ee_pose()
        depth = max(float((ee - eye) @ forward), 0.05)
        fovy = math.radians(self._fovy())
        metres_per_pixel = 2.0 * depth * math.tan(fovy / 2) / self.size[1]
        if vertical:
            return np.array([0.0, 0.0, -dy * metres_per_pixel])
        return (dx * right - dy * up) * metres_per_pixel

    def _fovy(self) -> float:
        if self.camera.type == mujoco.mjtCamera.mjCAMERA_FIXED:
            return float(self.env.model.cam_fovy[self.camera.fixedcamid])
        return float(self.env.model.vis.global_.fovy)

    def take_drag(self, max_step: np.ndarray) -> np.ndarray:
        """The dragged gripper-target motion to apply this tick, at most ``max_step`` per axis (metres);
        the rest waits for the next ticks, so the gripper follows a fast drag over a few ticks."""
        step = np.clip(self._pending, -max_step, max_step)
        self._pending -= step
        return step

    def drop_drag(self) -> None:
        """Forget gripper motion dragged but not taken (dragged while nothing drove the arm)."""
        self._pending[:] = 0.0

    # -- drawing ---------------------------------------------------------------------------------

    @property
    def scale(self) -> float:
        """The resolution the view renders at, as a fraction of its size."""
        return RENDER_SCALES[self.level]

    def render(self) -> np.ndarray:
        """The view as an image of ``scale`` times its size."""
        start = time.perf_counter()
        image = self._renderer().render_view(self.env.data, self.camera, self._decorate)
        self._adapt(time.perf_counter() - start)
        return image

    def _make_renderer(self, scale: float) -> Any:
        from protege.sim.render import CameraRenderer

        width, height = (max(1, round(side * scale)) for side in self.size)
        return CameraRenderer(self.env.model, (), height, width)

    def _renderer(self) -> Any:
        return self._renderers[self.level]

    def _adapt(self, seconds: float) -> None:
        """Step the resolution down when renders overrun the budget for a while, and back up once the
        estimate says the next one up (about 1.8 times the pixels) would fit with room to spare. The
        first renders at a resolution (a new GL context warming up) do not count."""
        self._renders += 1
        if self._renders <= _WARM_UP_RENDERS:
            return
        weight = 1.0 if self._renders == _WARM_UP_RENDERS + 1 else _COST_SMOOTHING
        self._cost = (1 - weight) * self._cost + weight * seconds
        if self.budget_s is None or self._renders < _WARM_UP_RENDERS + _JUDGE_RENDERS:
            return
        if self._cost > self.budget_s and self.level + 1 < len(RENDER_SCALES):
            self.level, self._renders = self.level + 1, 0
        elif self.level > 0 and self._renders >= _SETTLE_RENDERS:
            growth = (RENDER_SCALES[self.level - 1] / self.scale) ** 2
            if self._cost * growth < 0.7 * self.budget_s:
                self.level, self._renders = self.level - 1, 0

    def height_above_surface(self) -> tuple[float, np.ndarray]:
        """How far the end effector is above whatever is below it (metres), and that point: the table
        or an object, never the arm itself or an object between its fingers."""
        model, data = self.env.model, self.env.data
        ee, _ = self.env.ee_pose()
        start = ee.copy()
        geom = np.zeros(1, np.int32)
        for _ in range(_RAY_TRIES):
            distance = mujoco.mj_ray(model, data, start, np.array([0.0, 0.0, -1.0]), None, 1, -1, geom)
            if distance < 0:
                break
            hit = start - np.array([0.0, 0.0, distance])
            body = model.geom_bodyid[geom[0]]
            held = np.linalg.norm(data.geom_xpos[geom[0]] - ee) < _HELD_RADIUS  # between the fingers
            if model.body_rootid[body] != self._robot_root and not held:
                return float(ee[2] - hit[2]), hit
            start = hit - np.array([0.0, 0.0, 1e-4])  # through the arm or a held object, on down
        floor = ee.copy()
        floor[2] = 0.0
        return float(ee[2]), floor

    def _decorate(self, scene: mujoco.MjvScene) -> None:
        add_decor(scene, self.env.decor)  # distractors drawn by a visual disturbance
        ee, _ = self.env.ee_pose()
        _, below = self.height_above_surface()
        rgba = CLOSED_RGBA if self.env.gripper_state() > 0.5 else OPEN_RGBA
        line = _add_geom(scene, mujoco.mjtGeom.mjGEOM_LINE, np.zeros(3), ee, rgba)
        if line is not None:
            mujoco.mjv_connector(line, mujoco.mjtGeom.mjGEOM_LINE, 2.0, ee, below)
        _add_geom(scene, mujoco.mjtGeom.mjGEOM_CYLINDER, np.array([0.015, 0.0005, 0.0]), below + [0, 0, 0.001], rgba)
        target = self.env.commanded_ee_pos()
        if target is not None:
            _add_geom(scene, mujoco.mjtGeom.mjGEOM_SPHERE, np.array([0.012, 0.0, 0.0]), target, TARGET_RGBA)

    def close(self) -> None:
        for renderer in self._renderers:
            renderer.close()


def _add_geom(scene: mujoco.MjvScene, kind: mujoco.mjtGeom, size: np.ndarray, pos: np.ndarray,
              rgba: tuple[float, ...]) -> Any:
    """Append one display-only geom to ``scene``, every field initialised; None if the scene is full."""
    if scene.ngeom >= scene.maxgeom:
        return None
    geom = scene.geoms[scene.ngeom]
    mujoco.mjv_initGeom(geom, kind, size, np.asarray(pos, dtype=np.float64), _IDENTITY, np.asarray(rgba, np.float32))
    geom.category = mujoco.mjtCatBit.mjCAT_DECOR
    scene.ngeom += 1
    return geom
