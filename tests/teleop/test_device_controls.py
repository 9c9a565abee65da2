"""Device controls a person relies on: speed levels, fine motion, taps, view-relative motion, nudges,
human key names; and the recorder's review, pause and time limit, a correction's wait for the first input."""

import numpy as np
import pygame
import pytest

from protege.datasets import Dataset
from protege.teleop.devices import Command, GamepadDevice, KeyboardDevice
from protege.teleop.devices.base import DEFAULT_VIEW_YAW, view_to_base
from protege.teleop.errors import TeleopError
from protege.teleop.recorder import Phase
from protege.teleop.runtime.loop import person_time_limit
from protege.teleop.scripted_input import ScriptedInput

SCALE = np.array([0.02, 0.02, 0.02, 0.1, 0.1, 0.1])
STEP = 0.01  # the keyboard's default speed: half the 2 cm step, at the 1x level


def key(device, name, down=True):
    kind = pygame.KEYDOWN if down else pygame.KEYUP
    return device.handle(pygame.event.Event(kind, key=pygame.key.key_code(name), mod=0, unicode="", scancode=0))


def tap(device, name):
    key(device, name)
    key(device, name, down=False)


@pytest.fixture
def keyboard(bindings):
    return KeyboardDevice(bindings.keyboard, SCALE)


def test_tab_cycles_the_speed_levels_and_each_scales_the_step(keyboard):
    key(keyboard, "w")
    steps = []
    assert "speed 1x" in keyboard.status()
    for _ in range(4):
        steps.append(-keyboard.act({})[0])
        tap(keyboard, "tab")
    assert steps == pytest.approx([STEP, 0.25 * STEP, 0.5 * STEP, STEP])  # 1x, then 0.25x, 0.5x, 1x
    assert "speed 0.25x" in keyboard.status()


def test_left_ctrl_held_is_fine_motion(keyboard):
    key(keyboard, "w")
    key(keyboard, "left ctrl")
    assert keyboard.act({})[0] == pytest.approx(-0.25 * STEP) and "0.25x fine" in keyboard.status()
    key(keyboard, "left ctrl", down=False)
    assert keyboard.act({})[0] == pytest.approx(-STEP)


def test_a_tap_within_one_tick_moves_for_exactly_one_tick(keyboard):
    tap(keyboard, "d")  # down and up before the tick's action
    assert keyboard.act({})[1] == pytest.approx(STEP)
    assert not keyboard.act({})[:6].any()
    assert keyboard.touched


def test_motion_follows_the_view_heading_and_v_switches_to_the_base_frame(keyboard):
    key(keyboard, "w")
    np.testing.assert_array_equal(keyboard.action()[:3], [-STEP, 0.0, 0.0])  # default: the front view looks along -x
    assert DEFAULT_VIEW_YAW == pytest.approx(np.pi)
    keyboard.view_yaw = np.pi / 2  # a view looking along +y
    np.testing.assert_allclose(keyboard.action()[:3], [0.0, STEP, 0.0], atol=1e-12)
    key(keyboard, "w", down=False)
    keyboard.act({})
    key(keyboard, "a")  # left of a viewer looking along +y is -x
    np.testing.assert_allclose(keyboard.action()[:3], [-STEP, 0.0, 0.0], atol=1e-12)
    tap(keyboard, "v")
    assert not keyboard.view_relative and "base frame" in keyboard.status()
    np.testing.assert_array_equal(keyboard.action()[:3], [0.0, STEP, 0.0])  # base frame: left is +y


def test_rotations_turn_with_the_view_and_yaw_and_height_do_not():
    motion = np.array([1.0, 0.0, 0.5, 1.0, 0.0, 0.3])
    np.testing.assert_allclose(view_to_base(motion, np.pi / 2), [0.0, 1.0, 0.5, 0.0, 1.0, 0.3], atol=1e-12)


def test_nudge_adds_one_tick_of_translation_clipped_to_the_scale(keyboard):
    keyboard.nudge([0.004, -0.001, 0.0])
    np.testing.assert_allclose(keyboard.act({})[:6], [0.004, -0.001, 0, 0, 0, 0])
    assert not keyboard.act({})[:6].any()  # one tick only
    key(keyboard, "w")
    keyboard.nudge([-0.05, 0.0, 0.03])  # more than the largest step
    np.testing.assert_allclose(keyboard.act({})[:3], [-0.02, 0.0, 0.02])
    assert keyboard.touched


def test_the_key_map_names_keys_and_directions_in_human_terms(keyboard):
    rows = dict(keyboard.describe())
    assert rows["W"] == "forward" and rows["A"] == "left" and rows["R"] == "up" and rows["J"] == "roll left"
    assert rows["Enter"] == "start / stop" and rows["Space"] == "gripper open/close" and rows["Y"] == "save"
    assert rows["Tab"] == "speed level" and rows["Left Ctrl"] == "hold: fine motion" and rows["Esc"] == "quit"
    assert rows["P"] == "pause" and rows["V"] == "view-relative" and rows["Backspace"] == "new scene"
    assert not any(what.startswith(("+", "-")) or "_" in what for what in rows.values())


class FakeJoystick:
    def get_instance_id(self):
        return 1

    def get_name(self):
        return "Xbox 360 Controller"


def test_gamepad_speed_button_and_fine_button(bindings):
    pad = GamepadDevice(bindings, SCALE, FakeJoystick())
    button = {name: int(b) for b, name in pad.pad.names.items() if b.isdigit()}

    def press(name, down=True):
        kind = pygame.JOYBUTTONDOWN if down else pygame.JOYBUTTONUP
        pad.handle(pygame.event.Event(kind, instance_id=1, button=button[name]))

    pad.handle(pygame.event.Event(pygame.JOYAXISMOTION, instance_id=1, axis=0, value=1.0))  # stick right
    full = pad.act({})[1]
    assert full == pytest.approx(0.02)
    press("L3")
    press("L3", down=False)
    assert pad.act({})[1] == pytest.approx(0.25 * full)
    press("R3")
    assert pad.act({})[1] == pytest.approx(0.25 * 0.25 * full)
    press("R3", down=False)
    assert dict(pad.describe())["L3"] == "speed level" and pad.key_for(Command.START_STOP) == "Start"


def test_review_before_save_freezes_the_take_until_y(env, make_recorder):
    env.task.is_success = lambda data: True
    recorder, writer = make_recorder(env, success_hold=4)
    recorder.run(max_ticks=10, script=ScriptedInput().key(0, "return"))
    assert recorder.phase is Phase.STOPPED and recorder.loop.ticks == 4 and recorder.saved == []
    assert recorder.outcome == "success held" and "Y save, N discard, T re-record" in recorder.message
    frozen = recorder.loop.obs["joint_pos"].copy()
    recorder.run(max_ticks=5)
    np.testing.assert_array_equal(recorder.loop.obs["joint_pos"], frozen)
    recorder.run(max_ticks=2, script=ScriptedInput().key(0, "y"))
    assert recorder.saved == [0] and recorder.phase is Phase.IDLE and "press Enter to record" in recorder.message
    writer.flush()
    assert Dataset(writer.path).num_frames == 4


def test_p_pauses_the_recording(env, make_recorder):
    recorder, _ = make_recorder(env)
    recorder.run(max_ticks=12, script=ScriptedInput().key(0, "return").key(3, "p").key(8, "p"))
    assert recorder.loop.ticks == 12 - 5  # the 5 paused ticks stepped nothing
    recorder.command(Command.PAUSE)
    assert recorder.paused and "paused" in recorder.message


def test_no_time_limit_runs_past_the_tasks(env, make_recorder):
    recorder, _ = make_recorder(env, time_limit=0)
    recorder.run(max_ticks=env.max_steps + 11, script=ScriptedInput().key(0, "return"))
    assert recorder.phase is Phase.RECORDING and recorder.loop.ticks == env.max_steps + 11
    assert recorder.loop.time_left is None


def test_a_persons_time_limit_stops_the_take_for_review(env, make_recorder):
    recorder, _ = make_recorder(env, time_limit=1.0)
    recorder.run(max_ticks=30, script=ScriptedInput().key(0, "return"))
    assert recorder.phase is Phase.STOPPED and recorder.loop.ticks == 20 and recorder.outcome == "time is up"
    assert person_time_limit(env, None) == 5 * env.task.time_limit == 40.0
    with pytest.raises(TeleopError, match="time-limit"):
        person_time_limit(env, -1)
