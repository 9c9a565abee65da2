"""CameraRenderer's direct path (one scene for all cameras, frustum culling, one read per image) draws the
images mujoco.Renderer draws camera by camera, pixel for pixel."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import protege.sim  # noqa: F401  (picks the headless GL backend before mujoco loads)
from protege.sim import EnvSpec, ProtegeEnv, SimError
from protege.sim.render import CameraRenderer
from protege.sim.robot import menagerie_dir

needs_menagerie = pytest.mark.skipif(menagerie_dir() is None, reason="Menagerie robots not found (PROTEGE_MENAGERIE)")
CAMERAS = ("front", "wrist")


def _reference(model: mujoco.MjModel, height: int, width: int):
    try:
        renderer = mujoco.Renderer(model, height, width)
    except Exception as exc:  # no GL here: the direct path cannot be checked either
        pytest.skip(f"offscreen rendering unavailable: {exc}")
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX):
        renderer.scene.flags[flag] = False
    option = mujoco.MjvOption()
    option.geomgroup[4] = option.sitegroup[4] = 0

    def render(data: mujoco.MjData) -> dict[str, np.ndarray]:
        images = {}
        for camera in CAMERAS:
            renderer.update_scene(data, camera=camera, scene_option=option)
            images[camera] = renderer.render()
        return images

    return renderer, render


@pytest.mark.parametrize(("robot", "task", "size", "steps"), [
    ("protege_arm", "push", (128, 128), 12),
    ("protege_arm", "stack", (96, 160), 12),
    pytest.param("panda", "lift", (128, 128), 4, marks=needs_menagerie),
])
def test_direct_path_draws_the_reference_images(robot: str, task: str, size: tuple[int, int], steps: int) -> None:
    env = ProtegeEnv(EnvSpec.make(task, robot=robot, cameras=()))
    reference, render = _reference(env.model, *size)
    renderers = [CameraRenderer(env.model, CAMERAS, *size, cull=cull) for cull in (True, False)]
    rng = np.random.default_rng(5)
    env.reset(seed=5)
    try:
        for t in range(steps):
            env.step(rng.uniform(env.action_space.low, env.action_space.high))
            expected = render(env.data)
            for renderer in renderers:
                images = renderer.render(env.data)
                for camera in CAMERAS:
                    assert images[camera].shape == (*size, 3) and images[camera].flags.c_contiguous
                    np.testing.assert_array_equal(images[camera], expected[camera], err_msg=f"{camera} at step {t}")
    finally:
        reference.close()
        for renderer in renderers:
            renderer.close()


def test_images_are_arrays_of_their_own() -> None:
    env = ProtegeEnv(EnvSpec.make("lift", cameras=CAMERAS))
    try:
        obs, _ = env.reset(seed=0)
    except SimError as exc:
        pytest.skip(str(exc))
    kept = {camera: obs[f"image_{camera}"].copy() for camera in CAMERAS}
    env.step(env.action_space.high)
    for camera in CAMERAS:
        np.testing.assert_array_equal(obs[f"image_{camera}"], kept[camera])
    env.close()
