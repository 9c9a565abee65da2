"""`protege replay`: states mode is exact, actions mode stays close and catches tampered actions, bad input is
one line."""

import dataclasses

import cv2
import numpy as np
import pytest

from protege.datasets import Dataset, Episode, EpisodeBuffer, EpisodeWriter, Source
from protege.launch.cli import main
from protege.sim import EnvSpec
from protege.teleop.replay import deviation, replay, replay_episode
from protege.teleop.runtime.collect import collect, make_env
from protege.teleop.runtime.loop import ControlLoop
from protege.teleop.runtime.pilots import ExpertPilot

SPEC = EnvSpec.make("lift", cameras=("front",), image_size=32)


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    path = tmp_path_factory.mktemp("replay") / "demos.zarr"
    collect(SPEC, str(path), 2, noise=0.3, success_hold=3, seed=3, progress=False)
    return path


@pytest.fixture(scope="module")
def recorded_episode():
    """One expert episode of lift without cameras, in memory (frames and meta)."""
    env = make_env(dataclasses.replace(SPEC, cameras=()))
    from protege.sim.experts import make_expert

    buffer = EpisodeBuffer()
    loop = ControlLoop(env, [ExpertPilot(make_expert(env, noise=0.3))], writer=buffer, realtime=False, success_hold=3)
    loop.run_episode(seed=5)
    loop.save()
    return env.env_spec.to_attrs(), buffer.episodes[0]


def write(path, attrs, episode, drop=(), change=None):
    data = {k: v for k, v in episode.data.items() if k not in drop}
    if change:
        data = {**data, **change(data)}
    with EpisodeWriter(path, attrs=attrs) as writer:
        writer.add_episode(Episode(data, seed=episode.seed, success=episode.success, source=Source.EXPERT))
    return path


def test_states_mode_reproduces_every_frame_within_1e6(demos):
    result = replay(demos, 1, mode="states")
    assert result.frames == Dataset(demos).episode_slice(1).stop - Dataset(demos).episode_slice(1).start
    assert result.max_deviation <= 1e-6
    assert {"qpos", "qvel", "ee_pos", "object_pos"} <= set(result.per_key)


def test_actions_mode_follows_the_recording(demos):
    result = replay(demos, 0, mode="actions")
    assert result.max_deviation < 1e-6  # same MuJoCo, same machine: open-loop replay is deterministic


def test_actions_mode_reports_the_drift_of_tampered_actions(tmp_path, recorded_episode):
    attrs, episode = recorded_episode
    path = write(tmp_path / "tampered.zarr", attrs, episode,
                 change=lambda d: {"action": np.where(np.arange(len(d["action"]))[:, None] >= 5, 0.0, d["action"])})
    ds = Dataset(path)
    result = replay_episode(ds, 0, mode="actions")
    assert result.max_deviation > 1e-3 and result.worst_frame > 5
    assert replay_episode(ds, 0, mode="states").max_deviation == 0.0


def test_quaternion_deviation_is_a_rotation_angle_so_a_flipped_sign_is_none(tmp_path, recorded_episode):
    attrs, episode = recorded_episode
    ds = Dataset(write(tmp_path / "flipped.zarr", attrs, episode, change=lambda d: {"ee_quat": -d["ee_quat"]}))
    result = replay_episode(ds, 0, mode="states")
    assert result.per_key["ee_quat"] == 0.0 and result.max_deviation == 0.0
    half = 0.05  # two cubes, the second turned 0.1 rad about z: the angle, not a component difference
    turned = np.array([1.0, 0, 0, 0, np.cos(half), 0, 0, np.sin(half)])
    assert deviation("object_quat", turned, np.array([1.0, 0, 0, 0, -1.0, 0, 0, 0])) == pytest.approx(0.1)
    assert deviation("object_pos", np.array([0.0, 0.2]), np.array([0.1, 0.2])) == pytest.approx(0.1)


def test_actions_mode_without_sim_state_starts_from_the_seed(tmp_path, recorded_episode):
    attrs, episode = recorded_episode
    ds = Dataset(write(tmp_path / "nostate.zarr", attrs, episode, drop=("sim_state",)))
    result = replay_episode(ds, 0, mode="actions")
    assert result.max_deviation < 1e-6 and "qpos" not in result.per_key


def test_video_has_one_frame_per_replayed_frame(tmp_path, demos):
    out = tmp_path / "ep0.mp4"
    result = replay(demos, 0, mode="actions", video=str(out))
    capture = cv2.VideoCapture(str(out))
    assert result.video == str(out) and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == result.frames
    capture.release()


def test_json_reports_the_contract_fields(demos, capsys):
    import json

    assert main(["replay", str(demos), "--episode", "-1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["episode"] == 1 and result["mode"] == "states" and result["video"] is None
    assert result["max_deviation"] <= 1e-6 and result["frames"] > 0


@pytest.fixture
def nostate(tmp_path, recorded_episode):
    attrs, episode = recorded_episode
    return write(tmp_path / "nostate.zarr", attrs, episode, drop=("sim_state",))


@pytest.fixture
def ghost(tmp_path, recorded_episode):
    attrs, episode = recorded_episode
    return write(tmp_path / "ghost.zarr", {**attrs, "robot": "ghost_arm", "robot_source": "ghost_arm"}, episode)


@pytest.mark.parametrize(
    ("case", "argv", "expected"),
    [
        ("nostate", ["--episode", "0", "--mode", "states"], "states mode needs it"),
        ("demos", ["--episode", "7"], "episode 7 out of range"),
        ("ghost", ["--episode", "0"], "unknown robot 'ghost_arm'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(request, capsys, case, argv, expected):
    path = request.getfixturevalue(case)
    assert main(["replay", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and err.startswith("protege replay: error:")
