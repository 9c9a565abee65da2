"""Domain randomisation at collection: each episode's look drawn from its seed, whatever the workers."""

from __future__ import annotations

import numpy as np

from protege.datasets import Dataset
from protege.sim import EnvSpec
from protege.sim.disturbances import parse_disturbances
from protege.teleop.runtime.collect import collect


def test_randomised_demos_are_the_same_for_any_workers_and_only_their_images_change(tmp_path):
    spec = EnvSpec.make("push", cameras=("front",), image_size=32)
    visual = parse_disturbances("visual")
    runs = {name: str(tmp_path / f"{name}.zarr") for name in ("one", "two", "plain")}
    collect(spec, runs["one"], 3, randomize=visual, progress=False)
    collect(spec, runs["two"], 3, randomize=visual, workers=2, progress=False)
    collect(spec, runs["plain"], 3, progress=False)
    one, two, plain = (Dataset(path) for path in runs.values())
    assert one.attrs["randomize"] == "lighting=1,colors=0.2,camera=1,distractors=3" and "randomize" not in plain.attrs
    for key in ("image_front", "action", "ee_pos"):
        assert np.array_equal(one[key][:], two[key][:]), key
    assert np.array_equal(one.meta("distractors"), two.meta("distractors"))
    assert set(one.meta("distractors").tolist()) <= {1, 2, 3}
    assert np.array_equal(one["action"][:], plain["action"][:])  # the physics never sees the look
    assert np.abs(one["image_front"][:].astype(int) - plain["image_front"][:]).mean() > 1.0


def test_replay_and_rewind_show_a_randomised_episode_as_it_was_recorded(tmp_path):
    from protege.teleop.replay import make_replay_env, replay_episode, restore

    spec = EnvSpec.make("push", cameras=("front",), image_size=32)
    path = str(tmp_path / "demos.zarr")
    collect(spec, path, 2, randomize=parse_disturbances("visual"), progress=False)
    ds = Dataset(path)
    env = make_replay_env(ds.attrs)
    start = ds.episode_slice(1).start
    obs, _ = restore(env, ds, 1, 5)
    assert np.array_equal(obs["image_front"], ds["image_front"][start + 5])
    assert len(env.decor) == ds.meta("distractors")[1]
    shown = []
    replay_episode(ds, 1, env=env, on_frame=lambda t, e, o: shown.append(o["image_front"]) or t < 3)
    assert np.array_equal(np.stack(shown), ds["image_front"][start : start + len(shown)])
    env.close()
