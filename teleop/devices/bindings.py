"""Key and button bindings: what each key, stick, trigger and button does, and how fast.

A bindings file is YAML with the layout of :data:`DEFAULT_BINDINGS_YAML`; every section it gives
replaces the same section of the defaults (``keys`` replaces the whole key map, ``speed`` only the
speeds it names). A target is a motion (``+x`` ... ``-yaw``, in the robot base frame), ``gripper``
(toggle) or an episode command (:class:`Command` value). Speeds are fractions of the action
space's largest step per tick, reached with a key held or a stick fully deflected. ``takeover`` is
the key or button held to take control from a policy during live intervention; while intervening it
does only that, whatever else it is bound to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygame
import yaml

from protege.teleop.devices.events import Command
from protege.teleop.errors import TeleopError

AXES = ("x", "y", "z", "roll", "pitch", "yaw")
GRIPPER = "gripper"

DEFAULT_BINDINGS_YAML = """\
keyboard:
  speed: {translate: 0.5, rotate: 0.5}
  takeover: left shift   # hold to drive instead of the policy (live intervention)
  keys:          # pygame key names; +x points away from the robot, towards the front camera
    w: +x
    s: -x
    a: -y
    d: +y
    r: +z
    f: -z
    j: +roll
    l: -roll
    i: +pitch
    k: -pitch
    q: +yaw
    e: -yaw
    space: gripper
    return: start_stop
    y: save
    n: discard
    t: rerecord
    backspace: reset
    escape: quit
    p: pause
    h: help
gamepad:         # profiles, tried in order: the first whose `match` occurs in the pad's name
  playstation:
    match: [playstation, sony, dualshock, dualsense, ps3, ps4, ps5, wireless controller]
    dead_zone: 0.12
    speed: {translate: 1.0, rotate: 0.5}
    takeover: 9                                  # L1 (while intervening, instead of +roll)
    axes: {0: +y, 1: -x, 2: -yaw, 3: -pitch}      # sticks rest at 0, range -1..1 (down/right +)
    triggers: {5: +z, 4: -z}                     # triggers rest at -1, range -1..1
    buttons: {0: gripper, 1: discard, 2: rerecord, 3: save, 4: reset, 6: start_stop, 9: +roll, 10: -roll}
  xbox:
    match: []    # empty: any pad; SDL maps most pads to this layout
    dead_zone: 0.12
    speed: {translate: 1.0, rotate: 0.5}
    takeover: 4                                  # LB (while intervening, instead of +roll)
    axes: {0: +y, 1: -x, 3: -yaw, 4: -pitch}
    triggers: {5: +z, 2: -z}
    buttons: {0: gripper, 1: discard, 2: rerecord, 3: save, 4: +roll, 5: -roll, 6: reset, 7: start_stop}
"""


@dataclass(frozen=True)
class Motion:
    """Move along one action axis (0..5 = x, y, z, roll, pitch, yaw) in the given direction."""

    axis: int
    sign: float

    @property
    def rotational(self) -> bool:
        return self.axis >= 3


Target = Motion | Command | str  # str: only GRIPPER


@dataclass(frozen=True)
class Speeds:
    translate: float = 0.5
    rotate: float = 0.5


@dataclass(frozen=True)
class KeyboardBindings:
    keys: dict[int, Target]  # pygame key code -> target
    speed: Speeds
    takeover: int  # pygame key code held to take over from a policy

    def describe(self) -> list[tuple[str, str]]:
        """(key name, target name) pairs for the on-screen key map."""
        return [(pygame.key.name(code), target_name(t)) for code, t in self.keys.items()]


@dataclass(frozen=True)
class GamepadBindings:
    match: tuple[str, ...]
    dead_zone: float
    speed: Speeds
    takeover: int  # button held to take over from a policy
    axes: dict[int, Motion]  # sticks: rest 0, range -1..1
    triggers: dict[int, Motion]  # triggers: rest -1, range -1..1
    buttons: dict[int, Target]

    def describe(self) -> list[tuple[str, str]]:
        rows = [(f"stick axis {a}", target_name(m)) for a, m in self.axes.items()]
        rows += [(f"trigger axis {a}", target_name(m)) for a, m in self.triggers.items()]
        return rows + [(f"button {b}", target_name(t)) for b, t in self.buttons.items()]


@dataclass(frozen=True)
class Bindings:
    keyboard: KeyboardBindings
    gamepads: dict[str, GamepadBindings]  # profile name -> bindings, in match order

    def gamepad_for(self, name: str) -> tuple[str, GamepadBindings]:
        """The first profile whose match strings occur in a pad's name (empty match: any pad)."""
        lowered = name.lower()
        for profile, pad in self.gamepads.items():
            if not pad.match or any(m in lowered for m in pad.match):
                return profile, pad
        profile = next(iter(self.gamepads))
        return profile, self.gamepads[profile]


def target_name(target: Target) -> str:
    if isinstance(target, Motion):
        return ("+" if target.sign > 0 else "-") + AXES[target.axis]
    if isinstance(target, Command):
        return target.value
    return target


def load_bindings(path: str | Path | None = None) -> Bindings:
    """The default bindings, with the sections of the YAML file at ``path`` replacing theirs."""
    raw = yaml.safe_load(DEFAULT_BINDINGS_YAML)
    if path is not None:
        where = str(path)
        try:
            user = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise TeleopError(f"cannot read bindings file {where}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise TeleopError(f"bindings file {where} is not valid YAML: {str(exc).splitlines()[0]}") from None
        raw = _merge(raw, user or {}, where)
    else:
        where = "default bindings"
    return Bindings(
        keyboard=_keyboard(raw["keyboard"], f"{where}: keyboard"),
        gamepads={name: _gamepad(section, f"{where}: gamepad.{name}") for name, section in raw["gamepad"].items()},
    )


def _merge(defaults: dict[str, Any], user: Any, where: str) -> dict[str, Any]:
    if not isinstance(user, Mapping):
        raise TeleopError(f"bindings file {where} must be a mapping with 'keyboard' and/or 'gamepad'")
    unknown = set(user) - {"keyboard", "gamepad"}
    if unknown:
        raise TeleopError(f"bindings file {where}: unknown section {sorted(map(str, unknown))[0]!r} (keyboard, gamepad)")
    merged = dict(defaults)
    if "keyboard" in user:
        merged["keyboard"] = _merge_section(defaults["keyboard"], user["keyboard"], f"{where}: keyboard")
    if "gamepad" in user:
        pads = dict(defaults["gamepad"])
        if not isinstance(user["gamepad"], Mapping):
            raise TeleopError(f"{where}: gamepad must map profile names to sections")
        for name, section in user["gamepad"].items():
            base = pads.pop(str(name), None) or pads["xbox"]
            pads = {str(name): _merge_section(base, section, f"{where}: gamepad.{name}"), **pads}
        merged["gamepad"] = pads
    return merged


def _merge_section(base: dict[str, Any], override: Any, where: str) -> dict[str, Any]:
    if not isinstance(override, Mapping):
        raise TeleopError(f"{where} must be a mapping")
    unknown = set(override) - set(base)
    if unknown:
        raise TeleopError(f"{where}: unknown field {sorted(map(str, unknown))[0]!r} ({', '.join(base)})")
    merged = {**base, **override}
    if "speed" in override:
        merged["speed"] = {**base["speed"], **(override["speed"] or {})}
    return merged


def _keyboard(section: dict[str, Any], where: str) -> KeyboardBindings:
    if not pygame.display.get_init():
        try:
            pygame.display.init()  # key names resolve through SDL's video subsystem
        except pygame.error:
            pass  # no video device at all: names still resolve, without the keyboard layout
    keys = {
        _key_code(name, f"{where}.keys"): _target(target, f"{where}.keys.{name}")
        for name, target in _mapping(section["keys"], f"{where}.keys").items()
    }
    return KeyboardBindings(keys=keys, speed=_speeds(section["speed"], where),
                            takeover=_key_code(section["takeover"], f"{where}.takeover"))


def _key_code(name: Any, where: str) -> int:
    try:
        return pygame.key.key_code(str(name))
    except ValueError:
        raise TeleopError(
            f"{where}: unknown key name {str(name)!r} (use pygame key names, e.g. 'w', 'space', 'left shift')"
        ) from None


def _gamepad(section: dict[str, Any], where: str) -> GamepadBindings:
    dead_zone = section["dead_zone"]
    if not isinstance(dead_zone, (int, float)) or not 0.0 <= dead_zone < 1.0:
        raise TeleopError(f"{where}.dead_zone must be a number in [0, 1), got {dead_zone!r}")
    return GamepadBindings(
        match=tuple(str(m).lower() for m in section["match"] or ()),
        dead_zone=float(dead_zone),
        speed=_speeds(section["speed"], where),
        takeover=_index(section["takeover"], f"{where}.takeover"),
        axes={
            _index(i, f"{where}.axes"): _motion(t, f"{where}.axes.{i}")
            for i, t in _mapping(section["axes"], f"{where}.axes").items()
        },
        triggers={
            _index(i, f"{where}.triggers"): _motion(t, f"{where}.triggers.{i}")
            for i, t in _mapping(section["triggers"], f"{where}.triggers").items()
        },
        buttons={
            _index(i, f"{where}.buttons"): _target(t, f"{where}.buttons.{i}")
            for i, t in _mapping(section["buttons"], f"{where}.buttons").items()
        },
    )


def _mapping(value: Any, where: str) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TeleopError(f"{where} must be a mapping")
    return value


def _index(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TeleopError(f"{where}: {value!r} is not an axis or button number")
    return value


def _speeds(value: Any, where: str) -> Speeds:
    speeds = _mapping(value, f"{where}.speed")
    unknown = set(speeds) - {f.name for f in dataclasses.fields(Speeds)}
    if unknown:
        raise TeleopError(f"{where}.speed: unknown field {sorted(map(str, unknown))[0]!r} (translate, rotate)")
    for name, speed in speeds.items():
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not 0.0 < speed <= 1.0:
            raise TeleopError(f"{where}.speed.{name} must be a fraction in (0, 1], got {speed!r}")
    return Speeds(**{k: float(v) for k, v in speeds.items()})


def _target(value: Any, where: str) -> Target:
    text = str(value)
    if text == GRIPPER:
        return GRIPPER
    try:
        return Command(text)
    except ValueError:
        return _motion(value, where)


def _motion(value: Any, where: str) -> Motion:
    text = str(value)
    if text[:1] in "+-" and text[1:] in AXES:
        return Motion(AXES.index(text[1:]), 1.0 if text[0] == "+" else -1.0)
    commands = ", ".join(c.value for c in Command)
    raise TeleopError(f"{where}: unknown target {text!r} (+/- {'/'.join(AXES)}, {GRIPPER}, {commands})")
