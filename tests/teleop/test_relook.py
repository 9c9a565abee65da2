"""`dataset relook`: recorded episodes rendered again under new looks, their physics untouched."""

from __future__ import annotations

import numpy as np
import pytest

from protege.datasets import Dataset, Episode, EpisodeWriter
from protege.sim import EnvSpec
from protege.sim.disturbances import parse_disturbances
from protege.teleop.runtime.collect import collect
from tests.helpers import one_line

SPEC = EnvSpec.make("push", cameras=("front",), image_size=32)


@pytest.fixture(scope="module")
def demos(tmp_path_factory) -> dict[str, str]:
    """Two randomised and two plain push demos with a front camera."""
    root = tmp_path_factory.mktemp("relook")
    paths = {"randomized": str(root / "randomized.zarr"), "plain": str(root / "plain.zarr")}
    collect(SPEC, paths["randomized"], 2, randomize=parse_disturbances("visual"), progress=False)
    collect(SPEC, paths["plain"], 2, progress=False)
    return paths


def test_each_episode_is_written_once_per_look_with_only_its_images_changed(demos, tmp_path):
    from protege.teleop.relook import relook

    out = str(tmp_path / "x3.zarr")
    result = relook(demos["randomized"], out, 3, progress=False)
    source, relooked = Dataset(demos["randomized"]), Dataset(out)
    assert (result["episodes"], relooked.num_episodes) == (6, 6)
    assert relooked.meta("seed").tolist() == [0, 0, 0, 1, 1, 1]
    assert relooked.attrs["randomize"] == source.attrs["randomize"]
    seeds = relooked.meta("look_seed")
    assert seeds[[0, 3]].tolist() == [0, 1] and len(set(seeds.tolist())) == 6
    for index in range(relooked.num_episodes):
        original, copy = source.episode(index // 3), relooked.episode(index)
        for key in source.keys:
            same = np.array_equal(original.data[key], copy.data[key])
            # look 0 is the recorded one, bit for bit; the others change every image and nothing else
            assert same if key != "image_front" or index % 3 == 0 else not same, (index, key)
        assert copy.success == original.success and copy.duration == original.duration


def test_two_workers_write_the_same_dataset_as_one(demos, tmp_path):
    from protege.teleop.relook import relook

    one, two = str(tmp_path / "one.zarr"), str(tmp_path / "two.zarr")
    relook(demos["randomized"], one, 2, progress=False)
    relook(demos["randomized"], two, 2, workers=2, progress=False)
    a, b = Dataset(one), Dataset(two)
    assert a.keys == b.keys and a.meta("look_seed").tolist() == b.meta("look_seed").tolist()
    for key in a.keys:
        assert np.array_equal(a[key][:], b[key][:]), key


def test_replay_and_rewind_show_a_relooked_episode_as_it_was_rendered(demos, tmp_path):
    from protege.teleop.relook import relook
    from protege.teleop.replay import make_replay_env, restore

    out = str(tmp_path / "x2.zarr")
    relook(demos["randomized"], out, 2, progress=False)
    ds = Dataset(out)
    env = make_replay_env(ds.attrs)
    for episode in (1, 3):  # new looks of both source episodes
        obs, _ = restore(env, ds, episode, 4)
        assert np.array_equal(obs["image_front"], ds["image_front"][ds.episode_slice(episode).start + 4])
        assert len(env.decor) == ds.meta("distractors")[episode]
    env.close()
    from protege.teleop.browser import BrowserModel

    shown = [entry.look_seed for entry in BrowserModel(out).episodes]  # the browser's status line names new looks
    assert shown[0::2] == [None, None] and shown[1::2] == ds.meta("look_seed")[1::2].tolist()


def test_plain_demos_take_the_looks_they_are_given(demos, tmp_path):
    from protege.teleop.relook import relook

    out = str(tmp_path / "lit.zarr")
    relook(demos["plain"], out, 2, parse_disturbances("lighting"), progress=False)
    plain, lit = Dataset(demos["plain"]), Dataset(out)
    assert lit.attrs["randomize"] == "lighting=1" and "distractors" not in lit.meta_names
    assert np.array_equal(lit.episode(2).data["action"], plain.episode(1).data["action"])
    assert not np.array_equal(lit.episode(2).data["image_front"], plain.episode(1).data["image_front"])


def test_bad_relooks_are_one_line_and_write_nothing(demos, tmp_path, capsys):
    first = Dataset(demos["plain"]).episode(0)
    no_state, no_camera = tmp_path / "no_state.zarr", tmp_path / "no_camera.zarr"
    blind = EnvSpec.make("push", cameras=())
    for path, spec, left_out in ((no_state, SPEC, "sim_state"), (no_camera, blind, "image_front")):
        with EpisodeWriter(str(path), spec.to_attrs()) as writer:
            writer.add_episode(Episode({k: v for k, v in first.data.items() if k != left_out}, 0, True, 0))
    out = tmp_path / "out.zarr"
    relook = ["dataset", "relook", "--looks", "2", "-o", str(out)]
    one_line(capsys, [*relook, demos["plain"]], "recorded without --randomize", "--randomize visual")
    one_line(capsys, [*relook, demos["plain"], "--randomize", "object_push"], "lighting, colors", "not object_push")
    one_line(capsys, [*relook, demos["plain"], "--randomize", "colors=-1"], "--randomize")
    one_line(capsys, [*relook, demos["randomized"], "--looks", "0"], "--looks", ">= 1")
    one_line(capsys, [*relook, demos["randomized"], "--workers", "0"], "--workers", ">= 1")
    one_line(capsys, [*relook, str(no_state), "--randomize", "visual"], "without data/sim_state")
    one_line(capsys, [*relook, str(no_camera), "--randomize", "visual"], "records no camera")
    one_line(capsys, [*relook, str(tmp_path / "missing.zarr")], "missing.zarr")
    assert not out.exists() and not list(tmp_path.glob(".out.zarr*"))
    one_line(capsys, [*relook[:-1], demos["plain"], demos["randomized"]], "already exists")


def test_a_correction_of_a_relooked_episode_keeps_its_look(demos, tmp_path):
    from protege.teleop.correct import CorrectionSession, Rewinder, make_corrector, open_writer, write_takes
    from protege.teleop.relook import relook

    out = str(tmp_path / "x2.zarr")
    relook(demos["randomized"], out, 2, progress=False)
    rewinder = Rewinder(Dataset(out))
    session = CorrectionSession(rewinder, 1, 3, make_corrector("expert", rewinder.env), ticks=2, success_hold=0)
    session.run()
    with open_writer(rewinder.ds) as writer:
        write_takes([session.take()], writer)
    rewinder.close()
    ds = Dataset(out)
    assert ds.meta("look_seed")[-1] == ds.meta("look_seed")[1] != ds.meta("seed")[1]
    first = ds.episode_slice(ds.num_episodes - 1).start  # the take starts at the restored frame, in its look
    assert np.array_equal(ds["image_front"][first], ds["image_front"][ds.episode_slice(1).start + 3])
