"""The gamepad through joystick events: sticks, triggers, dead zone, buttons, hot-plug, no pad."""

import numpy as np
import pygame
import pytest

from protege.teleop.devices import Command, GamepadDevice, make_device
from protege.teleop.errors import TeleopError
from protege.teleop.scripted_input import ScriptedInput

SCALE = np.array([0.02, 0.02, 0.02, 0.1, 0.1, 0.1])


def ee(recorder) -> np.ndarray:
    return recorder.loop.obs["ee_pos"].copy()


class FakeJoystick:
    def __init__(self, instance_id: int, name: str = "Xbox 360 Controller") -> None:
        self.instance_id, self.name = instance_id, name

    def get_instance_id(self) -> int:
        return self.instance_id

    def get_name(self) -> str:
        return self.name


def event(kind: int, **attrs) -> pygame.event.Event:
    return pygame.event.Event(kind, **attrs)


def test_sticks_triggers_and_dead_zone(bindings):
    pad = GamepadDevice(bindings, SCALE, FakeJoystick(3))
    assert pad.profile == "xbox"
    assert np.array_equal(pad.act({}), np.zeros(7))  # triggers rest at -1 before any event
    pad.handle(event(pygame.JOYAXISMOTION, instance_id=3, axis=1, value=-1.0))  # left stick up
    pad.handle(event(pygame.JOYAXISMOTION, instance_id=3, axis=0, value=0.05))  # inside the dead zone
    pad.handle(event(pygame.JOYAXISMOTION, instance_id=3, axis=5, value=1.0))  # right trigger full
    pad.handle(event(pygame.JOYAXISMOTION, instance_id=9, axis=1, value=1.0))  # another pad: ignored
    np.testing.assert_allclose(pad.act({}), [-0.02, 0.0, 0.02, 0.0, 0.0, 0.0, 0.0])  # forward: -x in the front view


def test_buttons_toggle_gripper_and_send_commands(bindings):
    pad = GamepadDevice(bindings, SCALE, FakeJoystick(3))
    assert pad.handle(event(pygame.JOYBUTTONDOWN, instance_id=3, button=0)) is None
    assert pad.gripper == 1.0
    assert pad.handle(event(pygame.JOYBUTTONDOWN, instance_id=3, button=7)) is Command.START_STOP
    pad.handle(event(pygame.JOYBUTTONDOWN, instance_id=3, button=5))  # right bumper held: roll right
    assert pad.velocity()[3] == 1.0
    pad.handle(event(pygame.JOYBUTTONUP, instance_id=3, button=5))
    assert pad.velocity()[3] == 1.0  # released within the tick: the press still moves for this tick
    pad.act({})
    assert pad.velocity()[3] == 0.0


def test_unplug_stops_and_a_new_pad_takes_over(bindings):
    opened = []

    def open_joystick(index):
        opened.append(index)
        return FakeJoystick(8, "Sony PS4 Controller")

    pad = GamepadDevice(bindings, SCALE, FakeJoystick(3), open_joystick=open_joystick)
    pad.handle(event(pygame.JOYAXISMOTION, instance_id=3, axis=1, value=-1.0))
    pad.handle(event(pygame.JOYDEVICEREMOVED, instance_id=3))
    assert not pad.connected and not pad.velocity().any() and "disconnected" in pad.status()
    pad.handle(event(pygame.JOYDEVICEADDED, device_index=0))
    assert opened == [0] and pad.profile == "playstation"
    pad.handle(event(pygame.JOYAXISMOTION, instance_id=8, axis=1, value=1.0))  # stick down: back, +x in the front view
    assert pad.act({})[0] == pytest.approx(0.02)


def test_posted_joystick_events_drive_the_recorder(env, make_recorder, bindings):
    pad = GamepadDevice(bindings, env.action_space.high[:6], FakeJoystick(5))
    recorder, _ = make_recorder(env, device=pad)
    recorder.run(max_ticks=1, script=ScriptedInput().button(0, 5, 7))  # start
    start = ee(recorder)
    script = ScriptedInput().axis(0, 5, 0, 1.0).axis(10, 5, 0, 0.0).button(10, 5, 0)
    recorder.run(max_ticks=20, script=script)
    moved = ee(recorder) - start
    assert moved[1] > 0.1 and abs(moved[0]) < 0.03 and abs(moved[2]) < 0.03  # left stick right: +y
    assert recorder.loop.obs["gripper"][0] > 0.5


def test_no_joystick_lists_what_is_available(bindings):
    with pytest.raises(TeleopError) as err:
        make_device("gamepad", bindings, SCALE)
    message = str(err.value)
    assert "\n" not in message and "0 joystick" in message and "keyboard" in message
