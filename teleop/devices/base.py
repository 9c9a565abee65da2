"""What every input device shares: a held-motion state turned into an ee_delta action, a gripper toggle,
and a take-over input held to drive instead of a policy."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pygame

from protege.teleop.devices.bindings import Speeds
from protege.teleop.devices.events import Command

TAKEOVER_ROW = "hold: take over"


class Device(ABC):
    """A person's input: consumes pygame events, and as a :class:`~protege.teleop.pilots.Pilot`
    proposes ``(dx, dy, dz, droll, dpitch, dyaw, gripper)`` every tick.

    ``scale`` is the action space's largest step per tick for the six motion axes; a full input
    moves at ``speed`` times that. ``taking_over`` is whether the take-over input is held; it is
    only read once :meth:`enable_takeover` is called (before that the input keeps its ordinary binding).
    """

    kind = "human"

    def __init__(self, scale: np.ndarray, speed: Speeds) -> None:
        scale = np.asarray(scale, dtype=np.float64)
        if scale.shape != (6,):
            raise ValueError(f"devices drive ee_delta actions: expected 6 motion scales, got shape {scale.shape}")
        self._scale = scale
        self.gripper = 0.0  # 0 open, 1 closed
        self.takeover_enabled = False
        self.taking_over = False
        self.set_speed(speed)

    def enable_takeover(self) -> None:
        """Live intervention: the take-over input now means only "held: I drive"."""
        self.takeover_enabled = True

    def set_speed(self, speed: Speeds) -> None:
        self._step = self._scale * np.repeat([speed.translate, speed.rotate], 3)

    @abstractmethod
    def handle(self, event: pygame.event.Event) -> Command | None:
        """Update the input state from one event; return the episode command it asks for, if any."""

    @abstractmethod
    def velocity(self) -> np.ndarray:
        """Current motion input per axis (x, y, z, roll, pitch, yaw), each in [-1, 1]."""

    @abstractmethod
    def status(self) -> str:
        """One line for the heads-up display."""

    @abstractmethod
    def describe(self) -> list[tuple[str, str]]:
        """(input, what it does) rows for the on-screen key map."""

    def input_for(self, what: str) -> str | None:
        """The input whose key-map row (:meth:`describe`) reads ``what``, or None."""
        return next((name for name, row in self.describe() if row == what), None)

    def _rows_with_takeover(self, rows: list[tuple[str, str]], takeover: str) -> list[tuple[str, str]]:
        """Key-map rows with the take-over input first (replacing its ordinary row) while intervening."""
        if not self.takeover_enabled:
            return rows
        return [(takeover, TAKEOVER_ROW)] + [row for row in rows if row[0] != takeover]

    def toggle_gripper(self) -> None:
        """Close an open gripper, open a closed one (a take-over may start from a policy's in-between value)."""
        self.gripper = 0.0 if self.gripper >= 0.5 else 1.0

    def reset(self, seed: int | None = None) -> None:
        """A new episode starts with the gripper open (held inputs stay held)."""
        self.gripper = 0.0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.append(np.clip(self.velocity(), -1.0, 1.0) * self._step, self.gripper)
