"""Scripted input: pygame events posted at chosen ticks, exactly as a keyboard or pad would send them.

This is how tests, benchmarks and headless runs drive the recorder: the events go through
pygame's queue, so the devices read them the same way as a person's.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pygame


class ScriptedInput:
    def __init__(self) -> None:
        self._events: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)

    def at(self, tick: int, event_type: int, **attrs: Any) -> ScriptedInput:
        """Post one event of ``event_type`` at the start of ``tick``."""
        self._events[tick].append((event_type, attrs))
        return self

    def key(self, tick: int, key: str | int, hold: int = 1) -> ScriptedInput:
        """Press ``key`` (a pygame key name or code) at ``tick`` and release it ``hold`` ticks later."""
        code = pygame.key.key_code(key) if isinstance(key, str) else key
        self.at(tick, pygame.KEYDOWN, key=code, mod=0, unicode="", scancode=0)
        return self.at(tick + hold, pygame.KEYUP, key=code, mod=0, unicode="", scancode=0)

    def button(self, tick: int, instance_id: int, button: int, hold: int = 1) -> ScriptedInput:
        """Press a joystick button at ``tick`` and release it ``hold`` ticks later."""
        self.at(tick, pygame.JOYBUTTONDOWN, instance_id=instance_id, button=button)
        return self.at(tick + hold, pygame.JOYBUTTONUP, instance_id=instance_id, button=button)

    def axis(self, tick: int, instance_id: int, axis: int, value: float) -> ScriptedInput:
        return self.at(tick, pygame.JOYAXISMOTION, instance_id=instance_id, axis=axis, value=value)

    @property
    def last_tick(self) -> int:
        return max(self._events, default=0)

    def post(self, tick: int) -> None:
        """Put this tick's events on pygame's queue."""
        for event_type, attrs in self._events.get(tick, ()):
            pygame.event.post(pygame.event.Event(event_type, **attrs))
