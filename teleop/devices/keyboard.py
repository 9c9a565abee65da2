"""Keyboard teleoperation, read from KEYDOWN/KEYUP events (so posted events drive it in tests)."""

from __future__ import annotations

import numpy as np
import pygame

from protege.teleop.devices.base import Device
from protege.teleop.devices.bindings import KeyboardBindings, Motion, Target, key_label
from protege.teleop.devices.events import Command


class KeyboardDevice(Device):
    """Held motion keys move the end effector at a constant speed; a key pressed and released within
    one tick still moves it for that tick; the gripper key toggles; the take-over key (once enabled)
    is held to drive instead of a policy."""

    def __init__(self, bindings: KeyboardBindings, scale: np.ndarray) -> None:
        super().__init__(scale, bindings.speed)
        self.bindings = bindings
        self._held: set[int] = set()
        self._tapped: set[int] = set()  # motion keys pressed since the last action

    def handle(self, event: pygame.event.Event) -> Command | None:
        if event.type == pygame.KEYDOWN:
            if self.takeover_enabled and event.key == self.bindings.takeover:
                self.taking_over = True
                return None
            target = self.bindings.keys.get(event.key)
            if isinstance(target, Motion):
                self._held.add(event.key)
                self._tapped.add(event.key)
                self.touched = True
            elif target is not None:
                return self._setting(target, pressed=True)
        elif event.type == pygame.KEYUP:
            self._held.discard(event.key)
            if event.key == self.bindings.takeover:
                self.taking_over = False
            target = self.bindings.keys.get(event.key)
            if target is not None and not isinstance(target, Motion):
                self._setting(target, pressed=False)
        elif event.type == pygame.WINDOWFOCUSLOST:  # key-ups go elsewhere now: stop moving, hand back
            self._held.clear()
            self._tapped.clear()
            self.taking_over = False
            self.fine = False
        return None

    def velocity(self) -> np.ndarray:
        v = np.zeros(6)
        for key in self._held | self._tapped:
            motion = self.bindings.keys[key]
            assert isinstance(motion, Motion)
            v[motion.axis] += motion.sign
        return v

    def _end_tick(self) -> None:
        super()._end_tick()
        self._tapped.clear()

    def name(self) -> str:
        held = ", ".join(self.bindings.keys[k].name for k in sorted(self._held))  # type: ignore[union-attr]
        return "keyboard" + (f": {held}" if held else "")

    def bound(self) -> list[tuple[str, Target]]:
        return self.bindings.bound()

    def _takeover_name(self) -> str:
        return key_label(self.bindings.takeover)
