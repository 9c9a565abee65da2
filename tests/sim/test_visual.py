"""Visual disturbances: seeded per episode, the same in any env, undone at the next reset, never physical."""

from __future__ import annotations

import numpy as np
import pytest

from protege.sim import ProtegeEnv, SimError
from protege.sim.disturbances import Disturber, describe, parse_disturbances
from protege.sim.spec import EnvSpec

SPEC = EnvSpec.make("push", cameras=("front", "wrist"), image_size=64)


def _episode_start(env: ProtegeEnv, disturber: Disturber | None, seed: int) -> dict[str, np.ndarray]:
    obs, _ = env.reset(seed=seed)
    if disturber is not None:
        disturber.reset(env, seed)
        obs, _ = env.observe()
    return obs


@pytest.fixture(scope="module")
def envs() -> tuple[ProtegeEnv, ProtegeEnv]:
    return ProtegeEnv(SPEC), ProtegeEnv(SPEC)


def test_visual_stands_for_the_four_families_with_their_defaults():
    assert describe(parse_disturbances("visual")) == "lighting=1,colors=0.2,camera=1,distractors=3"


@pytest.mark.parametrize(("text", "message"), [
    ("colors=-0.1", "must be a finite number >= 0"),
    ("colors=3", r"colors: magnitude must be at most 1 \(rgb\), got 3"),
    ("distractors=1.5", "whole number of objects"),
    ("fog", "unknown disturbance 'fog'"),
])
def test_a_bad_visual_magnitude_is_one_line(text, message):
    with pytest.raises(SimError, match=message):
        parse_disturbances(text)


@pytest.mark.parametrize("family", ["lighting", "colors", "camera", "distractors"])
def test_each_family_changes_the_images_the_same_way_in_any_env_and_leaves_the_physics(envs, family):
    first, second = envs
    clean = _episode_start(first, None, seed=4)
    disturbed = _episode_start(first, Disturber(parse_disturbances(family)), seed=4)
    again = _episode_start(second, Disturber(parse_disturbances(family)), seed=4)
    other = _episode_start(second, Disturber(parse_disturbances(family)), seed=5)
    for camera in ("image_front", "image_wrist") if family != "distractors" else ("image_front",):
        assert np.abs(disturbed[camera].astype(int) - clean[camera]).mean() > 0.5, camera
        assert np.array_equal(disturbed[camera], again[camera])
    assert not np.array_equal(other["image_front"], _episode_start(second, None, seed=5)["image_front"])
    for key in ("joint_pos", "ee_pos", "object_pos", "goal_pos"):
        assert np.array_equal(disturbed[key], clean[key])


def test_the_next_reset_restores_the_scene_and_a_seed_draws_the_same_look(envs):
    env, _ = envs
    clean = _episode_start(env, None, seed=7)["image_front"]
    disturber = Disturber(parse_disturbances("visual"))
    looked = _episode_start(env, disturber, seed=7)["image_front"]
    drawn = disturber.looks
    assert set(drawn) == {"lighting", "colors", "camera", "distractors"} and 1 <= len(drawn["distractors"]) <= 3
    _episode_start(env, disturber, seed=8)
    assert disturber.looks != drawn
    assert np.array_equal(_episode_start(env, disturber, seed=7)["image_front"], looked) and disturber.looks == drawn
    assert np.array_equal(env.reset(seed=7)[0]["image_front"], clean)  # a reset alone: the scene's own look


def test_distractors_stand_clear_of_the_task_objects_and_goal(envs):
    env, _ = envs
    disturber = Disturber(parse_disturbances("distractors=8"))
    for seed in range(10):
        _episode_start(env, disturber, seed)
        keep_clear = [env.task.object_pos(env.data, 0)[:2], env.data.xpos[env.model.body("goal").id][:2]]
        for item in env.decor:
            assert min(np.linalg.norm(np.array(item.pos[:2]) - p) for p in keep_clear) >= 0.08
            assert item.pos[2] == pytest.approx(item.size[0])  # resting on the table top
