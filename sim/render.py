"""Offscreen camera rendering, tuned for CPU speed by default."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from protege.sim.errors import SimError
from protege.sim.gl import render_failure

# By geom type: whether the bounding sphere (mjvGeom.modelrbound around mjvGeom.pos) holds everything drawn for it.
_BOUNDED = np.zeros(int(mujoco.mjtGeom.mjGEOM_NONE) + 1, bool)
_BOUNDED[[int(t) for t in (mujoco.mjtGeom.mjGEOM_SPHERE, mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_ELLIPSOID,
                           mujoco.mjtGeom.mjGEOM_CYLINDER, mujoco.mjtGeom.mjGEOM_BOX,
                           mujoco.mjtGeom.mjGEOM_MESH)]] = True
_NOTHING = np.zeros(0, np.int64)
_NONE = int(mujoco.mjtGeom.mjGEOM_NONE)  # mjr_render draws nothing for it
_MARGIN = 1.01  # bounding spheres are widened by this factor (and 0.1 mm) against float32 rounding


def _length(x: float, y: float, z: float) -> float:
    return (x * x + y * y + z * z) ** 0.5


def check_cameras(model: mujoco.MjModel, cameras: Sequence[str]) -> None:
    """SimError naming any camera the model lacks."""
    missing = [c for c in cameras if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, c) < 0]
    if missing:
        known = [model.camera(i).name for i in range(model.ncam)]
        raise SimError(f"unknown camera {', '.join(missing)} (this scene has {', '.join(known)})")


@dataclass(frozen=True)
class Decor:
    """A geom that is drawn in every view but not simulated."""

    type: int
    size: tuple[float, float, float]
    pos: tuple[float, float, float]
    yaw: float
    rgba: tuple[float, float, float, float]


def add_decor(scene: mujoco.MjvScene, decor: tuple[Decor, ...]) -> None:
    """Append ``decor`` to an updated scene (as many as it has room for)."""
    for item in decor:
        if scene.ngeom >= scene.maxgeom:
            return
        c, s = np.cos(item.yaw), np.sin(item.yaw)
        mat = np.array([c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0])
        mujoco.mjv_initGeom(scene.geoms[scene.ngeom], item.type, np.asarray(item.size), np.asarray(item.pos), mat,
                            np.asarray(item.rgba, np.float32))
        scene.geoms[scene.ngeom].category = mujoco.mjtCatBit.mjCAT_DECOR
        scene.ngeom += 1


class CameraRenderer:
    """Renders named cameras of one model to uint8 HxWx3 images.

    One GL context per instance (create it in the process that renders). ``fast=True`` turns
    off shadows, reflections and skybox, which cost most of the frame on a software rasteriser.

    :meth:`render` makes the context current once, builds the scene's geoms once for all cameras
    (``mjv_updateScene`` for the first; ``mjv_updateCamera`` and the lights, which follow the camera, for the
    others), leaves out of each camera's draw the geoms whose bounding sphere lies outside its view frustum
    (with shadows and reflections off they cannot touch a pixel; in scenes with mesh geoms, where it pays), and
    reads each image once, flipped into its own array. The images are the ones ``mujoco.Renderer`` draws camera
    by camera, pixel for pixel (tests/sim/test_render_exact.py); ``cull`` forces culling on or off.
    """

    def __init__(self, model: mujoco.MjModel, cameras: Sequence[str], height: int = 128, width: int = 128,
                 fast: bool = True, cull: bool | None = None) -> None:
        check_cameras(model, cameras)
        self.cameras = tuple(cameras)
        self._model = model
        try:
            self._renderer = mujoco.Renderer(model, height, width)
        except Exception as exc:
            raise SimError(render_failure(exc)) from None
        flags = self._renderer.scene.flags
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX):
            flags[flag] = not fast
        self._option = mujoco.MjvOption()
        self._option.geomgroup[4] = 0  # helper sites and frames stay hidden
        self._option.sitegroup[4] = 0
        self._height, self._width = height, width
        # Leaving geoms out costs ~50 us of Python per camera: it pays where geoms are meshes (a Menagerie arm's
        # cost 0.1-1 ms each on llvmpipe), not for primitives (15-90 us each; the built-in arm breaks even).
        if cull is None:
            cull = bool(np.any(model.geom_type == mujoco.mjtGeom.mjGEOM_MESH))
        self._cull = cull and fast
        self._cams = []
        for name in self.cameras:
            cam = mujoco.MjvCamera()
            cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
            cam.fixedcamid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
            self._cams.append(cam)
        # The direct path needs MuJoCo's render context, which mujoco.Renderer keeps; without it, camera by camera.
        self._context = getattr(self._renderer, "_mjr_context", None)
        self._gl = getattr(self._renderer, "_gl_context", None)
        self._direct = self._context is not None and hasattr(self._renderer, "_gl_context")
        self._rect = mujoco.MjrRect(0, 0, width, height)
        self._pixels = np.empty((height, width, 3), np.uint8)
        self._geoms: tuple[mujoco.MjvGeom, ...] | None = None

    def render(self, data: mujoco.MjData, decor: tuple[Decor, ...] = ()) -> dict[str, np.ndarray]:
        """Each camera's image; ``decor`` is drawn with the model's geoms."""
        if not self._direct:
            images = {}
            for cam in self.cameras:
                self._renderer.update_scene(data, camera=cam, scene_option=self._option)
                add_decor(self._renderer.scene, decor)
                images[cam] = self._renderer.render()
            return images
        m, scene, context = self._model, self._renderer.scene, self._context
        if self._gl is not None:
            self._gl.make_current()
        images = {}
        for i, (name, cam) in enumerate(zip(self.cameras, self._cams, strict=True)):
            if i == 0:
                mujoco.mjv_updateScene(m, data, self._option, None, cam, mujoco.mjtCatBit.mjCAT_ALL, scene)
                add_decor(scene, decor)
                bounds = self._bounds(scene) if self._cull else None
            else:  # the same geoms; the camera, and the headlight that follows it
                mujoco.mjv_updateCamera(m, data, cam, scene)
                mujoco.mjv_makeLights(m, data, scene)
            hidden = self._outside(scene, bounds, self._width / self._height) if bounds is not None else ()
            geoms = self._geoms
            for j in hidden:
                geoms[j].type = _NONE
            mujoco.mjr_render(self._rect, scene, context)
            for j, kind in zip(hidden, bounds[2][hidden] if len(hidden) else (), strict=True):
                geoms[j].type = int(kind)
            mujoco.mjr_readPixels(self._pixels, None, self._rect, context)
            images[name] = self._pixels[::-1].copy()  # OpenGL's rows run bottom up
        return images

    def _bounds(self, scene: mujoco.MjvScene) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Centres, radii and types of the scene's geoms, radius 0 for those never left out (planes, decor
        without a model radius, reflective ones, whose presence mjr_render's reflection pass depends on)."""
        if scene.enabletransform:
            return None
        if self._geoms is None:
            self._geoms = scene.geoms  # views into the scene's geom array (building them is not free)
        geoms = self._geoms[: scene.ngeom]
        if not geoms:
            return None
        centres = np.array([g.pos for g in geoms], dtype=np.float64)
        radii = np.array([g.modelrbound if g.reflectance <= 0 else 0.0 for g in geoms], dtype=np.float64)
        kinds = np.array([g.type for g in geoms], dtype=np.int64)
        radii[~_BOUNDED[np.minimum(kinds, len(_BOUNDED) - 1)]] = 0.0
        return centres, radii * _MARGIN + 1e-4 * (radii > 0), kinds

    @staticmethod
    def _outside(scene: mujoco.MjvScene, bounds: tuple[np.ndarray, np.ndarray, np.ndarray],
                 aspect: float) -> np.ndarray:
        """Indices of the geoms whose bounding sphere lies wholly outside the camera's view frustum (as
        mjr_render sets it up: glFrustum from the averaged camera, mjr_lookAt)."""
        centres, radii, _ = bounds
        cam = mujoco.mjv_averageCamera(scene.camera[0], scene.camera[1])
        near = float(cam.frustum_near)
        if cam.orthographic or near <= 0:
            return _NOTHING
        (fx, fy, fz), (ux, uy, uz), (px, py, pz) = cam.forward.tolist(), cam.up.tolist(), cam.pos.tolist()
        sx, sy, sz = fy * uz - fz * uy, fz * ux - fx * uz, fx * uy - fy * ux  # side = forward x up
        ux, uy, uz = sy * fz - sz * fy, sz * fx - sx * fz, sx * fy - sy * fx  # up = side x forward
        fn, sn, un = _length(fx, fy, fz), _length(sx, sy, sz), _length(ux, uy, uz)
        fx, fy, fz, sx, sy, sz, ux, uy, uz = (fx / fn, fy / fn, fz / fn, sx / sn, sy / sn, sz / sn,
                                              ux / un, uy / un, uz / un)
        bottom, top = float(cam.frustum_bottom), float(cam.frustum_top)
        half = float(cam.frustum_width) or 0.5 * aspect * (top - bottom)
        left, right = float(cam.frustum_center) - half, float(cam.frustum_center) + half
        depth = fx * px + fy * py + fz * pz
        # Inward normals (world frame) and offsets of the frustum's six planes: inside where n.c + o >= 0.
        planes = [(fx, fy, fz, -depth - near), (-fx, -fy, -fz, depth + float(cam.frustum_far))]
        for a, b, c in ((near, 0.0, -left), (-near, 0.0, right), (0.0, near, -bottom), (0.0, -near, top)):
            n = _length(a, b, c)
            wx, wy, wz = (a * sx + b * ux + c * fx) / n, (a * sy + b * uy + c * fy) / n, (a * sz + b * uz + c * fz) / n
            planes.append((wx, wy, wz, -(wx * px + wy * py + wz * pz)))
        frustum = np.array(planes)
        distance = centres @ frustum[:, :3].T
        distance += frustum[:, 3]
        return np.flatnonzero((distance < -radii[:, None]).any(axis=1) & (radii > 0))

    def render_view(self, data: mujoco.MjData, camera: mujoco.MjvCamera,
                    decorate: Callable[[mujoco.MjvScene], None] | None = None) -> np.ndarray:
        """One image from ``camera`` (free, fixed or tracking); ``decorate`` may add geoms to the scene
        (display-only cues) before it is drawn."""
        self._renderer.update_scene(data, camera=camera, scene_option=self._option)
        if decorate is not None:
            decorate(self._renderer.scene)
        return self._renderer.render()

    @property
    def scene(self) -> mujoco.MjvScene:
        """The abstract scene of the last render (what camera motion is scaled by)."""
        return self._renderer.scene

    def close(self) -> None:
        self._renderer.close()
