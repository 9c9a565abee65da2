"""Offscreen camera rendering, tuned for CPU speed by default."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import mujoco
import numpy as np

from protege.sim.errors import SimError
from protege.sim.gl import render_failure


def check_cameras(model: mujoco.MjModel, cameras: Sequence[str]) -> None:
    """SimError naming any camera the model lacks."""
    missing = [c for c in cameras if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, c) < 0]
    if missing:
        known = [model.camera(i).name for i in range(model.ncam)]
        raise SimError(f"unknown camera {', '.join(missing)} (this scene has {', '.join(known)})")


class CameraRenderer:
    """Renders named cameras of one model to uint8 HxWx3 images.

    One GL context per instance (create it in the process that renders). ``fast=True`` turns
    off shadows, reflections and skybox, which cost most of the frame on a software rasteriser.
    """

    def __init__(self, model: mujoco.MjModel, cameras: Sequence[str], height: int = 128, width: int = 128,
                 fast: bool = True) -> None:
        check_cameras(model, cameras)
        self.cameras = tuple(cameras)
        try:
            self._renderer = mujoco.Renderer(model, height, width)
        except Exception as exc:
            raise SimError(render_failure(exc)) from None
        flags = self._renderer.scene.flags
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX):
            flags[flag] = not fast
        self._option = mujoco.MjvOption()
        self._option.geomgroup[4] = 0  # helper sites and frames stay hidden
        self._option.sitegroup[4] = 0

    def render(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        images = {}
        for cam in self.cameras:
            self._renderer.update_scene(data, camera=cam, scene_option=self._option)
            images[cam] = self._renderer.render()
        return images

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
