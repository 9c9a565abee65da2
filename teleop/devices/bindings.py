"""Key and button bindings: what each key, stick, trigger and button does, and how fast.

A bindings file is YAML with the layout of :data:`DEFAULT_BINDINGS_YAML`; every section it gives
replaces the same section of the defaults (``keys`` replaces the whole key map, ``speed`` only the
speeds it names). A target is a motion named as seen on screen (:data:`MOTIONS`: ``forward``,
``left``, ``up``, ``roll left`` ...; see :mod:`protege.teleop.devices.base` for the frame), a device
setting (:data:`SETTINGS`: ``gripper`` toggles, ``speed`` cycles the speed levels, ``fine`` is held for
fine motion, ``view`` toggles view-relative motion) or an episode command (:class:`Command` value).
Speeds are fractions of the action space's largest step per tick, reached at the 1x speed level with
a key held or a stick fully deflected. ``takeover`` is the key or button held to take control from a
policy during live intervention; while intervening it does only that, whatever else it is bound to.
A gamepad profile's ``names`` label its buttons and axes in the key map and prompts.
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

GRIPPER = "gripper"
SPEED = "speed"
FINE = "fine"
VIEW = "view"
SETTINGS = {GRIPPER: "gripper open/close", SPEED: "speed level", FINE: "hold: fine motion", VIEW: "view-relative"}
# motion target -> (axis, sign); axes (forward, left, up, roll, pitch, yaw) of the view frame
MOTIONS = {
    "forward": (0, 1.0), "back": (0, -1.0), "left": (1, 1.0), "right": (1, -1.0), "up": (2, 1.0), "down": (2, -1.0),
    "roll right": (3, 1.0), "roll left": (3, -1.0), "pitch down": (4, 1.0), "pitch up": (4, -1.0),
    "yaw left": (5, 1.0), "yaw right": (5, -1.0),
}
COMMAND_LABELS = {
    Command.START_STOP: "start / stop", Command.SAVE: "save", Command.DISCARD: "discard", Command.RERECORD: "re-record",
    Command.RESET: "new scene", Command.QUIT: "quit", Command.PAUSE: "pause", Command.HELP: "key map",
}
_KEY_LABELS = {"return": "Enter", "escape": "Esc"}  # pygame key name -> the name on the key, else title case

DEFAULT_BINDINGS_YAML = """\
keyboard:
  speed: {translate: 0.5, rotate: 0.5}
  takeover: left shift   # hold to drive instead of the policy (live intervention)
  keys:          # pygame key names; directions as seen in the main view (see `view`)
    w: forward
    s: back
    a: left
    d: right
    r: up
    f: down
    j: roll left
    l: roll right
    i: pitch down
    k: pitch up
    q: yaw left
    e: yaw right
    space: gripper
    tab: speed
    left ctrl: fine
    v: view
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
    takeover: 9                                  # L1 (while intervening, instead of roll left)
    axes: {0: right, 1: back, 2: yaw right, 3: pitch up}   # sticks rest at 0, range -1..1 (down/right +)
    triggers: {5: up, 4: down}                   # triggers rest at -1, range -1..1
    buttons: {0: gripper, 1: discard, 2: rerecord, 3: save, 4: reset, 6: start_stop, 7: speed, 8: fine,
              9: roll left, 10: roll right}
    names: {axis 0: Left Stick X, axis 1: Left Stick Y, axis 2: Right Stick X, axis 3: Right Stick Y,
            axis 4: L2, axis 5: R2, 0: Cross, 1: Circle, 2: Square, 3: Triangle, 4: Share, 6: Options,
            7: L3, 8: R3, 9: L1, 10: R1}
  xbox:
    match: []    # empty: any pad; SDL maps most pads to this layout
    dead_zone: 0.12
    speed: {translate: 1.0, rotate: 0.5}
    takeover: 4                                  # LB (while intervening, instead of roll left)
    axes: {0: right, 1: back, 3: yaw right, 4: pitch up}
    triggers: {5: up, 2: down}
    buttons: {0: gripper, 1: discard, 2: rerecord, 3: save, 4: roll left, 5: roll right, 6: reset, 7: start_stop,
              9: speed, 10: fine}
    names: {axis 0: Left Stick X, axis 1: Left Stick Y, axis 3: Right Stick X, axis 4: Right Stick Y,
            axis 2: LT, axis 5: RT, 0: A, 1: B, 2: X, 3: Y, 4: LB, 5: RB, 6: Back, 7: Start, 9: L3, 10: R3}
"""


@dataclass(frozen=True)
class Motion:
    """Move along one view-frame axis (0..5 = forward, left, up, roll, pitch, yaw) in the given direction."""

    axis: int
    sign: float

    @property
    def name(self) -> str:
        return next(name for name, motion in MOTIONS.items() if motion == (self.axis, self.sign))


Target = Motion | Command | str  # str: one of SETTINGS


@dataclass(frozen=True)
class Speeds:
    translate: float = 0.5
    rotate: float = 0.5


@dataclass(frozen=True)
class KeyboardBindings:
    keys: dict[int, Target]  # pygame key code -> target
    speed: Speeds
    takeover: int  # pygame key code held to take over from a policy

    def bound(self) -> list[tuple[str, Target]]:
        """(key name as printed on the key, target) for every bound key."""
        return [(key_label(code), target) for code, target in self.keys.items()]


@dataclass(frozen=True)
class GamepadBindings:
    match: tuple[str, ...]
    dead_zone: float
    speed: Speeds
    takeover: int  # button held to take over from a policy
    axes: dict[int, Motion]  # sticks: rest 0, range -1..1
    triggers: dict[int, Motion]  # triggers: rest -1, range -1..1
    buttons: dict[int, Target]
    names: dict[str, str]  # "axis N" or "N" (a button) -> its label on the pad

    def button_name(self, button: int) -> str:
        return self.names.get(str(button), f"button {button}")

    def bound(self) -> list[tuple[str, Target]]:
        """(input name, target) for every bound stick, trigger and button (an axis moves the way its
        push down / right or squeeze goes)."""
        axes = {**self.axes, **self.triggers}
        rows: list[tuple[str, Target]] = [(self.names.get(f"axis {a}", f"axis {a}"), m) for a, m in axes.items()]
        return rows + [(self.button_name(b), t) for b, t in self.buttons.items()]


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


def target_label(target: Target) -> str:
    """What a target does, in a person's words (the key map's right column)."""
    if isinstance(target, Motion):
        return target.name
    if isinstance(target, Command):
        return COMMAND_LABELS[target]
    return SETTINGS[target]


def key_label(code: int) -> str:
    """A key's name as printed on it: ``Enter``, ``Left Shift``, ``Space``, ``W``."""
    name = pygame.key.name(code)
    return _KEY_LABELS.get(name, name.title())


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
        raise TeleopError(f"bindings file {where}: unknown section {sorted(map(str, unknown))[0]!r} "
                          "(keyboard, gamepad)")
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
        names={str(i): str(name) for i, name in _mapping(section["names"], f"{where}.names").items()},
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
    if text in SETTINGS:
        return text
    try:
        return Command(text)
    except ValueError:
        return _motion(value, where)


def _motion(value: Any, where: str) -> Motion:
    text = str(value)
    if text in MOTIONS:
        return Motion(*MOTIONS[text])
    names = ", ".join([*MOTIONS, *SETTINGS, *(c.value for c in Command)])
    raise TeleopError(f"{where}: unknown target {text!r} ({names})")
