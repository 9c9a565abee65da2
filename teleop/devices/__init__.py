"""Input devices: keyboard and gamepad turn pygame events into ee_delta actions and episode commands."""

from __future__ import annotations

import numpy as np

from protege.teleop.devices.base import Device
from protege.teleop.devices.bindings import Bindings, load_bindings
from protege.teleop.devices.events import Command
from protege.teleop.devices.gamepad import GamepadDevice, available_devices, open_gamepad
from protege.teleop.devices.keyboard import KeyboardDevice
from protege.teleop.errors import TeleopError

DEVICES = ("keyboard", "gamepad")


def make_device(name: str, bindings: Bindings, scale: np.ndarray) -> Device:
    """The named device with its bindings; ``scale`` is the largest step per tick of the 6 motion axes."""
    if name == "keyboard":
        return KeyboardDevice(bindings.keyboard, scale)
    if name == "gamepad":
        return open_gamepad(bindings, scale)
    raise TeleopError(f"unknown device {name!r} (choose from {', '.join(DEVICES)})")


__all__ = [
    "DEVICES",
    "Bindings",
    "Command",
    "Device",
    "GamepadDevice",
    "KeyboardDevice",
    "available_devices",
    "load_bindings",
    "make_device",
]
