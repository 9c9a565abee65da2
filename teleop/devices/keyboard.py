"""Keyboard teleoperation, read from KEYDOWN/KEYUP events (so posted events drive it in tests)."""

from __future__ import annotations

import numpy as np
import pygame

from protege.teleop.devices.base import Device
from protege.teleop.devices.bindings import GRIPPER, KeyboardBindings, Motion, target_name
from protege.teleop.devices.events import Command


class KeyboardDevice(Device):
    """Held motion keys move the end effector at a constant speed; the gripper key toggles; the
    take-over key (once enabled) is held to drive instead of a policy."""

    def __init__(self, bindings: KeyboardBindings, scale: np.ndarray) -> None:
        super().__init__(scale, bindings.speed)
        self.bindings = bindings
        self._held: set[int] = set()

    def handle(self, event: pygame.event.Event) -> Command | None:
        if event.type == pygame.KEYDOWN:
            if self.takeover_enabled and event.key == self.bindings.takeover:
                self.taking_over = True
                return None
            target = self.bindings.keys.get(event.key)
            if isinstance(target, Motion):
                self._held.add(event.key)
            elif isinstance(target, Command):
                return target
            elif target == GRIPPER:
                self.toggle_gripper()
        elif event.type == pygame.KEYUP:
            self._held.discard(event.key)
            if event.key == self.bindings.takeover:
                self.taking_over = False
        elif event.type == pygame.WINDOWFOCUSLOST:  # key-ups go elsewhere now: stop moving, hand back
            self._held.clear()
            self.taking_over = False
        return None

    def velocity(self) -> np.ndarray:
        v = np.zeros(6)
        for key in self._held:
            motion = self.bindings.keys[key]
            assert isinstance(motion, Motion)
            v[motion.axis] += motion.sign
        return v

    def status(self) -> str:
        held = ", ".join(target_name(self.bindings.keys[k]) for k in sorted(self._held))
        return "keyboard" + (f": {held}" if held else "")

    def describe(self) -> list[tuple[str, str]]:
        return self._rows_with_takeover(self.bindings.describe(), pygame.key.name(self.bindings.takeover))
