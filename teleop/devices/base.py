"""What every input device shares: a held-motion state turned into an ee_delta action, speed levels and
fine motion, taps that last at least one tick, motion relative to the view, mouse nudges, a gripper
toggle, and a take-over input held to drive instead of a policy.

Motions are named as seen on screen, in the view frame: forward (away from the viewer), left, up, and
roll, pitch, yaw about those three axes. With view-relative motion on (the default) the frame turns
with the main view's heading (:attr:`Device.view_yaw`, set by the window each tick); off, it is the
robot base frame (forward = +x, left = +y). Up and yaw are the same in both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pygame

from protege.teleop.devices.bindings import FINE, GRIPPER, SPEED, VIEW, Speeds, Target, target_label
from protege.teleop.devices.events import Command

TAKEOVER = "takeover"  # the target of the take-over input while intervening
TAKEOVER_ROW = "hold: take over"
SPEED_LEVELS = (0.25, 0.5, 1.0)  # times the bindings' speeds; the speed input cycles them
FINE_FACTOR = 0.25  # while the fine-motion input is held
# The front camera looks along -x: with this heading, forward moves away from the viewer in the default view.
DEFAULT_VIEW_YAW = np.pi


def view_to_base(motion: np.ndarray, view_yaw: float) -> np.ndarray:
    """A view-frame motion (forward, left, up, roll, pitch, yaw) in the base frame, for a view looking
    along heading ``view_yaw`` (radians from +x about +z, as MuJoCo's free-camera azimuth)."""
    c, s = np.cos(view_yaw), np.sin(view_yaw)
    turn = np.array([[c, -s], [s, c]])
    turn[np.abs(turn) < 1e-12] = 0.0  # quarter turns stay exact: forward is exactly -x in the front view
    base = np.asarray(motion, dtype=np.float64).copy()
    base[0:2] = turn @ base[0:2]
    base[3:5] = turn @ base[3:5]  # rotation deltas are base-frame axis-angle vectors: they turn the same way
    return base


class Device(ABC):
    """A person's input: consumes pygame events, and as a :class:`~protege.teleop.runtime.pilots.Pilot`
    proposes ``(dx, dy, dz, droll, dpitch, dyaw, gripper)`` every tick.

    ``scale`` is the action space's largest step per tick for the six motion axes; a full input
    moves at ``speed`` times that, times the speed level (:data:`SPEED_LEVELS`, default 1x) and
    :data:`FINE_FACTOR` while the fine input is held. ``taking_over`` is whether the take-over input is
    held; it is only read once :meth:`enable_takeover` is called (before that the input keeps its
    ordinary binding). ``touched`` turns true at the first motion, gripper or nudge input after a reset.
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
        self.level = len(SPEED_LEVELS) - 1
        self.fine = False
        self.view_relative = True
        self.view_yaw = DEFAULT_VIEW_YAW
        self.touched = False
        self._nudge = np.zeros(3)
        self.set_speed(speed)

    def enable_takeover(self) -> None:
        """Live intervention: the take-over input now means only "held: I drive"."""
        self.takeover_enabled = True

    def set_speed(self, speed: Speeds) -> None:
        self._step = self._scale * np.repeat([speed.translate, speed.rotate], 3)

    @property
    def speed_factor(self) -> float:
        """The speed level in effect, with fine motion: what a full input's step is multiplied by."""
        return SPEED_LEVELS[self.level] * (FINE_FACTOR if self.fine else 1.0)

    def cycle_speed(self) -> None:
        self.level = (self.level + 1) % len(SPEED_LEVELS)

    def nudge(self, translation: np.ndarray) -> None:
        """Add a translation (metres, base frame) to the next action only, e.g. from a mouse drag; the
        translation of that action stays within the action scale."""
        self._nudge += np.asarray(translation, dtype=np.float64)
        self.touched = True

    @abstractmethod
    def handle(self, event: pygame.event.Event) -> Command | None:
        """Update the input state from one event; return the episode command it asks for, if any."""

    @abstractmethod
    def velocity(self) -> np.ndarray:
        """Motion input per view-frame axis (forward, left, up, roll, pitch, yaw), each in [-1, 1],
        including taps released since the last action."""

    @abstractmethod
    def bound(self) -> list[tuple[str, Target]]:
        """(input name, target) for every bound input, as the person sees them."""

    @abstractmethod
    def name(self) -> str:
        """What the device is, for the heads-up display."""

    def _end_tick(self) -> None:
        """An action was taken: taps and the nudge are used up."""
        self._nudge[:] = 0.0

    def _setting(self, target: Target, pressed: bool) -> Command | None:
        """Apply a press (or release) of an input bound to a setting or command; the command, if any."""
        if target == FINE:
            self.fine = pressed
        elif not pressed:
            return None
        elif isinstance(target, Command):
            return target
        elif target == GRIPPER:
            self.toggle_gripper()
        elif target == SPEED:
            self.cycle_speed()
        elif target == VIEW:
            self.view_relative = not self.view_relative
        return None

    def status(self) -> str:
        """One line for the heads-up display: device, speed, frame."""
        fine = " fine" if self.fine else ""
        frame = "view-relative" if self.view_relative else "base frame"
        return f"{self.name()}   speed {self.speed_factor:g}x{fine}   {frame}"

    def describe(self) -> list[tuple[str, str]]:
        """(input, what it does) rows for the on-screen key map."""
        return [(name, TAKEOVER_ROW if target == TAKEOVER else target_label(target)) for name, target in self.inputs()]

    def key_for(self, target: Target) -> str | None:
        """The name of the input bound to ``target`` (a command, setting or :data:`TAKEOVER`), or None."""
        return next((name for name, bound in self.inputs() if bound == target), None)

    def inputs(self) -> list[tuple[str, Target]]:
        """Bound inputs, with the take-over input first (replacing its ordinary binding) while intervening."""
        rows = self.bound()
        if not self.takeover_enabled:
            return rows
        takeover = self._takeover_name()
        return [(takeover, TAKEOVER)] + [row for row in rows if row[0] != takeover]

    @abstractmethod
    def _takeover_name(self) -> str:
        """The name of the take-over input."""

    def toggle_gripper(self) -> None:
        """Close an open gripper, open a closed one (a take-over may start from a policy's in-between value)."""
        self.gripper = 0.0 if self.gripper >= 0.5 else 1.0
        self.touched = True

    def reset(self, seed: int | None = None) -> None:
        """A new episode starts with the gripper open (held inputs stay held)."""
        self.gripper = 0.0
        self.touched = False
        self._nudge[:] = 0.0

    def action(self) -> np.ndarray:
        """The action for the input now, without using up taps or the nudge."""
        motion = np.clip(self.velocity(), -1.0, 1.0)
        if self.view_relative:
            motion = view_to_base(motion, self.view_yaw)
        step = np.clip(motion, -1.0, 1.0) * self._step * self.speed_factor
        step[:3] = np.clip(step[:3] + self._nudge, -self._scale[:3], self._scale[:3])
        return np.append(step, self.gripper)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        action = self.action()
        self._end_tick()
        return action
