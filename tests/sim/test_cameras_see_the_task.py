"""Every task can be solved from its recorded cameras: at the start of an episode the objects and the goal
(reach's target, push's and slot_push's disc) are in view of the default cameras."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from protege.sim import EnvSpec
from protege.sim.env import ProtegeEnv
from protege.sim.spec import DEFAULT_CAMERAS

SEEN = {"reach": ("target",), "lift": ("cube",), "push": ("cube", "goal"), "slot_push": ("block", "goal"),
        "stack": ("cube", "base_cube")}
MIN_PIXELS = 12  # of 128 x 128: a cube 4 cm across at the far side of the table still covers more


def _pixels_per_geom(env: ProtegeEnv, camera: str) -> dict[str, int]:
    renderer = mujoco.Renderer(env.model, 128, 128)
    try:
        renderer.enable_segmentation_rendering()
        renderer.update_scene(env.data, camera=camera)
        segments = renderer.render()  # (geom id, object type) per pixel
        ids, types = segments[..., 0], segments[..., 1]
    finally:
        renderer.close()
    geoms = ids[types == mujoco.mjtObj.mjOBJ_GEOM]
    counts = np.bincount(geoms[geoms >= 0], minlength=env.model.ngeom)
    return {mujoco.mj_id2name(env.model, mujoco.mjtObj.mjOBJ_GEOM, i): int(n) for i, n in enumerate(counts) if n}


@pytest.mark.parametrize("task", sorted(SEEN))
def test_objects_and_goal_are_in_view_of_the_default_cameras(task):
    env = ProtegeEnv(EnvSpec.make(task, cameras=()))
    for seed in range(5):
        env.reset(seed=seed)
        seen = [_pixels_per_geom(env, camera) for camera in DEFAULT_CAMERAS]
        for name in SEEN[task]:
            best = max(view.get(name, 0) for view in seen)
            assert best >= MIN_PIXELS, f"{task} seed {seed}: {name} covers {best} pixels in {DEFAULT_CAMERAS}"
