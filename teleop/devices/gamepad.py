"""Gamepad teleoperation through pygame's joystick events, tolerant of unplugging and replugging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import pygame

from protege.teleop.devices.base import Device
from protege.teleop.devices.bindings import Bindings, Motion, Target
from protege.teleop.devices.events import Command
from protege.teleop.errors import TeleopError


class Joystick(Protocol):
    """The part of ``pygame.joystick.JoystickType`` the gamepad uses."""

    def get_instance_id(self) -> int: ...

    def get_name(self) -> str: ...


def available_devices() -> list[str]:
    """Input devices usable now: the keyboard, then each attached joystick by name."""
    if not pygame.joystick.get_init():
        pygame.joystick.init()
    pads = [pygame.joystick.Joystick(i).get_name() for i in range(pygame.joystick.get_count())]
    return ["keyboard"] + [f"gamepad {i}: {name}" for i, name in enumerate(pads)]


def open_gamepad(bindings: Bindings, scale: np.ndarray, index: int = 0) -> GamepadDevice:
    """The gamepad on joystick ``index``; a clear error naming what is attached if there is none."""
    if not pygame.joystick.get_init():
        pygame.joystick.init()
    count = pygame.joystick.get_count()
    if index >= count:
        raise TeleopError(
            f"no gamepad at joystick index {index}: pygame sees {count} joystick(s); "
            f"available devices: {'; '.join(available_devices())} (plug a pad in, check /dev/input permissions, "
            "or use --device keyboard)"
        )
    return GamepadDevice(bindings, scale, pygame.joystick.Joystick(index))


def _dead_zone(value: float, dead_zone: float) -> float:
    """Zero inside the dead zone, rescaled so the output still reaches 1 at full deflection."""
    magnitude = abs(value)
    if magnitude <= dead_zone:
        return 0.0
    return float(np.sign(value)) * min(1.0, (magnitude - dead_zone) / (1.0 - dead_zone))


class GamepadDevice(Device):
    """Sticks and triggers give end-effector velocity; buttons move (a press within one tick moves for
    that tick), toggle the gripper, change the speed and send commands; the take-over button (once
    enabled) is held to drive instead of a policy.

    Only events of the active pad count. When it is unplugged the arm stops and the next pad
    plugged in (``JOYDEVICEADDED``) takes over, with the profile that matches its name.
    """

    def __init__(
        self,
        bindings: Bindings,
        scale: np.ndarray,
        joystick: Joystick | None,
        open_joystick: Callable[[int], Joystick] = pygame.joystick.Joystick,
    ) -> None:
        self._bindings = bindings
        self._open = open_joystick
        self.profile, self.pad = bindings.gamepad_for(joystick.get_name() if joystick else "")
        super().__init__(scale, self.pad.speed)
        self._attach(joystick)

    def _attach(self, joystick: Joystick | None) -> None:
        self._joystick = joystick
        self._axes: dict[int, float] = {}
        self._buttons: set[int] = set()
        self._tapped: set[int] = set()  # motion buttons pressed since the last action
        self.taking_over = False  # unplugged: the policy drives again
        self.fine = False
        if joystick is not None:
            self.profile, self.pad = self._bindings.gamepad_for(joystick.get_name())
            self.set_speed(self.pad.speed)

    @property
    def connected(self) -> bool:
        return self._joystick is not None

    def handle(self, event: pygame.event.Event) -> Command | None:
        if event.type == pygame.JOYDEVICEADDED:
            if self._joystick is None:
                self._attach(self._open(event.device_index))
            return None
        if self._joystick is None or getattr(event, "instance_id", None) != self._joystick.get_instance_id():
            return None
        if event.type == pygame.JOYDEVICEREMOVED:
            self._attach(None)  # stop moving; keep the gripper as it is
        elif event.type == pygame.JOYAXISMOTION:
            self._axes[event.axis] = float(event.value)
            self.touched = self.touched or bool(self._stick_velocity().any())
        elif event.type == pygame.JOYBUTTONDOWN:
            if self.takeover_enabled and event.button == self.pad.takeover:
                self.taking_over = True
                return None
            target = self.pad.buttons.get(event.button)
            if isinstance(target, Motion):
                self._buttons.add(event.button)
                self._tapped.add(event.button)
                self.touched = True
            elif target is not None:
                return self._setting(target, pressed=True)
        elif event.type == pygame.JOYBUTTONUP:
            self._buttons.discard(event.button)
            if event.button == self.pad.takeover:
                self.taking_over = False
            target = self.pad.buttons.get(event.button)
            if target is not None and not isinstance(target, Motion):
                self._setting(target, pressed=False)
        return None

    def velocity(self) -> np.ndarray:
        v = self._stick_velocity()
        for button in self._buttons | self._tapped:
            motion = self.pad.buttons[button]
            assert isinstance(motion, Motion)
            v[motion.axis] += motion.sign
        return v

    def _stick_velocity(self) -> np.ndarray:
        v = np.zeros(6)
        dz = self.pad.dead_zone
        for axis, motion in self.pad.axes.items():
            v[motion.axis] += motion.sign * _dead_zone(self._axes.get(axis, 0.0), dz)
        for axis, motion in self.pad.triggers.items():  # rest at -1 until the first motion event
            v[motion.axis] += motion.sign * _dead_zone((self._axes.get(axis, -1.0) + 1.0) / 2.0, dz)
        return v

    def _end_tick(self) -> None:
        super()._end_tick()
        self._tapped.clear()

    def name(self) -> str:
        if self._joystick is None:
            return "gamepad disconnected: plug one in"
        return f"gamepad: {self._joystick.get_name()} ({self.profile})"

    def bound(self) -> list[tuple[str, Target]]:
        return self.pad.bound()

    def _takeover_name(self) -> str:
        return self.pad.button_name(self.pad.takeover)
