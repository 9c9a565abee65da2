"""The recorder driven by posted keyboard events: motion, gripper, episode keys, exact replay."""

import numpy as np
import pytest

from protege.datasets import Dataset, Source
from protege.teleop.devices import Command
from protege.teleop.recorder import Phase
from protege.teleop.scripted_input import ScriptedInput


def ee(recorder) -> np.ndarray:
    return recorder.loop.obs["ee_pos"].copy()


@pytest.mark.parametrize(
    ("key", "axis", "sign"), [("w", 0, -1), ("s", 0, 1), ("d", 1, 1), ("a", 1, -1), ("r", 2, 1), ("f", 2, -1)]
)
def test_key_moves_ee_along_its_axis(env, make_recorder, key, axis, sign):
    """In the default (front) view W moves away from the viewer (-x), D to the viewer's right (+y)."""
    recorder, _ = make_recorder(env)
    recorder.run(max_ticks=1, script=ScriptedInput().key(0, "return"))
    start = ee(recorder)
    recorder.run(max_ticks=12, script=ScriptedInput().key(0, key, hold=10))
    moved = ee(recorder) - start
    assert sign * moved[axis] > 0.03, moved  # 10 ticks at half the 2 cm max step
    assert np.abs(np.delete(moved, axis)).max() < 0.25 * abs(moved[axis]), moved


def test_gripper_key_toggles(env, make_recorder):
    recorder, writer = make_recorder(env)
    script = ScriptedInput().key(0, "return").key(2, "space").key(30, "space").key(50, "y")
    recorder.run(max_ticks=52, script=script)
    writer.flush()
    episode = Dataset(writer.path).episode(0).data
    actions, gripper = episode["action"], episode["gripper"][:, 0]
    assert actions[:2, 6].tolist() == [0.0, 0.0]
    assert (actions[2:30, 6] == 1.0).all() and (actions[30:, 6] == 0.0).all()
    assert gripper[29] > 0.8 and gripper[-1] < gripper[29]  # closed, then opening again


def test_episode_keys_produce_exactly_the_expected_episodes(env, make_recorder):
    recorder, writer = make_recorder(env, seed=10)
    script = (
        ScriptedInput()
        .key(0, "return").key(1, "w", hold=5).key(8, "y")  # episode 0: 8 ticks, seed 10
        .key(10, "return").key(11, "d", hold=4).key(16, "n")  # discarded; same scene (seed 11)
        .key(18, "return").key(20, "t")  # re-record seed 11 from tick 20: 5 frames
        .key(25, "y")  # episode 1: seed 11
        .key(27, "backspace")  # new scene: seed 13 (seed 12 skipped)
        .key(28, "return").key(30, "return").key(32, "y")  # stop after 2 ticks, then save: episode 2
        .key(34, "return").key(37, "escape")  # quit drops the open take
    )
    result = recorder.run(max_ticks=100, script=script)
    assert not recorder.running and result["saved"] == [0, 1, 2] and result["discarded"] == 3
    writer.flush()
    data = Dataset(writer.path)
    assert data.num_episodes == 3
    assert np.diff(data.episode_ends, prepend=0).tolist() == [8, 5, 2]
    assert data.meta("seed").tolist() == [10, 11, 13]
    assert data.meta("source").tolist() == [Source.HUMAN] * 3
    assert not data.meta("success").any()
    assert (data.load("intervention") == 1).all()
    timestamps = data.episode(1).data["timestamp"]
    assert timestamps[0] == 0.0 and (np.diff(timestamps) > 0).all()


def test_stored_actions_replay_the_recorded_trajectory(env, make_recorder):
    recorder, writer = make_recorder(env)
    script = ScriptedInput().key(0, "return").key(1, "w", hold=8).key(4, "r", hold=10).key(6, "space")
    script.key(9, "q", hold=5).key(12, "d", hold=6).key(20, "y")
    recorder.run(max_ticks=21, script=script)
    writer.flush()
    episode = Dataset(writer.path).episode(0).data
    env.reset(seed=123)  # somewhere else entirely
    env.set_state(episode["sim_state"][0])
    for k, action in enumerate(episode["action"][:-1]):
        obs, *_ = env.step(action)
        np.testing.assert_allclose(obs["ee_pos"], episode["ee_pos"][k + 1], atol=1e-6)
        np.testing.assert_allclose(env.get_state(), episode["sim_state"][k + 1], atol=1e-9)


def test_success_held_saves_the_take_by_itself(env, make_recorder):
    env.task.is_success = lambda data: True  # this env's cube counts as lifted from the start
    recorder, writer = make_recorder(env, success_hold=4, auto_save=True)
    recorder.run(max_ticks=10, script=ScriptedInput().key(0, "return"))
    assert recorder.saved == [0] and recorder.phase is Phase.IDLE
    writer.flush()
    data = Dataset(writer.path)
    assert data.meta("success").tolist() == [True] and data.num_frames == 4


def test_time_limit_stops_and_waits_for_a_decision(env, make_recorder):
    recorder, writer = make_recorder(env)
    recorder.run(max_ticks=env.max_steps + 5, script=ScriptedInput().key(0, "return"))
    assert recorder.phase is Phase.STOPPED and recorder.loop.ticks == env.max_steps
    recorder.command(Command.SAVE)
    writer.flush()
    assert Dataset(writer.path).num_frames == env.max_steps


def test_the_hud_names_the_inputs_bound_to_a_target(bindings):
    from protege.teleop.devices import KeyboardDevice
    from protege.teleop.devices.base import TAKEOVER

    device = KeyboardDevice(bindings.keyboard, np.ones(6))
    assert device.key_for(Command.HELP) == "H" and device.key_for(Command.START_STOP) == "Enter"
    assert device.key_for(TAKEOVER) is None  # only listed while intervening
    device.enable_takeover()
    assert device.key_for(TAKEOVER) == "Left Shift"
    assert device.key_for("no such target") is None
