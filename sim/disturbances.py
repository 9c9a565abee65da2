"""Seeded disturbances for robustness evaluation: object pushes, arm shoves, observation noise, latency,
and what the cameras see (:mod:`protege.sim.visual`).

A specification such as ``object_push=0.04,latency`` names disturbances and their magnitudes
(omitted: the default, :data:`KINDS`); ``default`` stands for the list :data:`DEFAULT` and ``visual`` for
:data:`VISUAL` (lighting, colors, camera, distractors; magnitudes in that module). The control loop
drives a :class:`Disturber`: ``reset`` draws the episode's schedule from the episode seed alone, so a
seed is disturbed the same way whichever worker runs it; ``delay`` holds actions back; ``strike``
moves the object or the arm at its drawn tick; ``observe`` adds noise to what the pilots see (the
recorded ``sim_state`` stays the true state).

- ``object_push`` (m): at a tick drawn from 10-30% of the time limit, the task's first object
  slides this far in a random horizontal direction, if it rests on the table and lands clear of the
  arm and the scene (else the next of eight directions is tried, and none may fit: it is skipped).
- ``arm_shove`` (m): at another such tick the end effector is displaced this far horizontally, its
  orientation kept; the controller then holds the new pose, and an object held in the gripper moves
  with it.
- ``obs_noise`` (m): Gaussian noise of this standard deviation on ``object_pos``, every tick.
- ``latency`` (ticks): each action is applied this many ticks after it was chosen.
- ``lighting``, ``colors``, ``camera``, ``distractors``: drawn at ``reset`` and kept for the episode;
  the physics never sees them.

:func:`check_disturbances` refuses magnitudes that cannot make sense in an env: a latency of the whole
episode, a displacement or noise wider than the arm's workspace.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from protege.sim.errors import SimError
from protege.sim.visual import VISUAL_FAMILIES

if TYPE_CHECKING:
    from protege.sim.env import ProtegeEnv
    from protege.sim.spec import EnvSpec


@dataclass(frozen=True)
class Kind:
    default: float
    unit: str
    integer: bool = False
    most: float = math.inf


KINDS = {
    "object_push": Kind(0.04, "m"),
    "arm_shove": Kind(0.04, "m"),
    "obs_noise": Kind(0.005, "m"),
    "latency": Kind(1, "ticks", integer=True),
    "lighting": Kind(1.0, "scale", most=2.0),
    "colors": Kind(0.2, "rgb", most=1.0),
    "camera": Kind(1.0, "scale", most=10.0),
    "distractors": Kind(3, "objects", integer=True, most=8),
}
DEFAULT = "object_push,arm_shove"
VISUAL = ",".join(VISUAL_FAMILIES)
ALIASES = {"default": DEFAULT, "visual": VISUAL}
STRIKE_WINDOW = (0.1, 0.3)  # strikes fall in this part of the time limit: mid-task for the experts
_SALT = 0xD157  # keeps disturbance draws apart from the task's and the expert's, which use the seed itself
_PENETRATION = 0.002  # m: a displacement that leaves contacts deeper than this is refused
_DIRECTIONS = 8


@dataclass(frozen=True)
class Disturbance:
    name: str
    magnitude: float

    def __str__(self) -> str:
        magnitude = int(self.magnitude) if KINDS[self.name].integer else self.magnitude
        return f"{self.name}={magnitude:g}"


def parse_disturbances(text: str) -> tuple[Disturbance, ...]:
    """Disturbances from ``NAME[=MAGNITUDE],...`` (``default``: :data:`DEFAULT`); one-line
    :class:`SimError` on an unknown name, a bad, missing or negative magnitude, or a repeated name. Empty
    entries are skipped, as in every comma-separated option."""
    entries = [item.strip() for item in text.split(",") if item.strip()]
    if not entries:
        raise SimError("no disturbance given (NAME[=MAGNITUDE],...)")
    items = [part for item in entries for part in ALIASES.get(item, item).split(",")]
    parsed: dict[str, Disturbance] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if name in ALIASES:
            raise SimError(f"{name!r} stands for {ALIASES[name]} at their default magnitudes and takes none: "
                           f"give each its own (NAME=MAGNITUDE)")
        if name not in KINDS:
            raise SimError(f"unknown disturbance {name!r} (choose from {', '.join(KINDS)}, or default or visual)")
        if name in parsed:
            raise SimError(f"disturbance {name!r} is given twice")
        kind = KINDS[name]
        if sep and not value.strip():
            raise SimError(f"disturbance {name}: '=' with no magnitude (give one, or the name alone for its default)")
        try:
            magnitude = float(value) if sep else kind.default
        except ValueError:
            raise SimError(f"disturbance {name}: magnitude {value!r} is not a number") from None
        if not np.isfinite(magnitude) or magnitude < 0:
            raise SimError(f"disturbance {name}: magnitude must be a finite number >= 0 ({kind.unit}), got {value}")
        if kind.integer and magnitude != int(magnitude):
            raise SimError(f"disturbance {name}: magnitude is a whole number of {kind.unit}, got {value}")
        if magnitude > kind.most:
            raise SimError(f"disturbance {name}: magnitude must be at most {kind.most:g} ({kind.unit}), got {value}")
        parsed[name] = Disturbance(name, magnitude)
    return tuple(parsed.values())


def check_disturbances(disturbances: Sequence[Disturbance], spec: EnvSpec) -> None:
    """One-line :class:`SimError` on a magnitude that cannot make sense in ``spec``'s env: a latency of the
    whole episode or more (its time limit at its control rate), or a push, shove or noise wider than the
    arm's workspace (the diagonal of the rectangle its task objects spawn in)."""
    from protege.sim.tasks import TASKS

    ticks = int(round(TASKS[spec.task].time_limit * spec.control_hz))
    span = 2.0 * float(np.hypot(*spec.load_robot().workspace.half_extent))
    for disturbance in disturbances:
        unit = KINDS[disturbance.name].unit
        if unit == "ticks" and disturbance.magnitude >= ticks:
            raise SimError(f"disturbance {disturbance}: a delay of the whole episode or more ({spec.task} runs "
                           f"{ticks} ticks at {spec.control_hz:g} Hz)")
        if unit == "m" and disturbance.magnitude > span:
            raise SimError(f"disturbance {disturbance}: wider than the {spec.robot} workspace ({span:.2f} m across)")


def describe(disturbances: tuple[Disturbance, ...]) -> str:
    """The canonical specification: what evaluation records name (``""``: none)."""
    return ",".join(str(d) for d in disturbances)


@dataclass(frozen=True)
class Strike:
    """A displacement the episode's schedule holds: what, when, and which way (radians)."""

    name: str
    tick: int
    heading: float
    magnitude: float


class Disturber:
    """Applies ``disturbances`` to the episodes of one env (see the module docstring)."""

    def __init__(self, disturbances: tuple[Disturbance, ...]) -> None:
        self.disturbances = {d.name: d for d in disturbances}
        self.spec = describe(disturbances)
        self.strikes: list[Strike] = []
        self.applied: list[Strike] = []  # this episode's strikes that moved something
        self.looks: dict[str, Any] = {}  # what this episode's visual disturbances drew
        self._visual = {d.name: d.magnitude for d in disturbances if d.name in VISUAL_FAMILIES}
        self._noise = np.random.default_rng()
        self._queue: deque[np.ndarray] = deque()

    @property
    def visual(self) -> bool:
        """Whether it changes what the cameras see (the episode's first images are then taken after ``reset``)."""
        return bool(self._visual)

    def reset(self, env: ProtegeEnv, seed: int) -> None:
        """Draw the episode's schedule, and its look, from ``seed``."""
        env = getattr(env, "unwrapped", env)
        if self._visual:
            self.looks = env.look.draw(seed, self._visual)
        self.strikes, self.applied = [], []
        low, high = (int(f * env.max_steps) for f in STRIKE_WINDOW)
        for index, name in enumerate(KINDS):
            rng = np.random.default_rng([_SALT, seed, index])
            if name in ("object_push", "arm_shove") and name in self.disturbances:
                self.strikes.append(Strike(name, int(rng.integers(low, high + 1)), float(rng.uniform(0, 2 * np.pi)),
                                           self.disturbances[name].magnitude))
            if name == "obs_noise":
                self._noise = rng
        self._queue.clear()

    def delay(self, action: np.ndarray) -> np.ndarray:
        """The action to apply now: the one chosen ``latency`` ticks ago (the oldest before that)."""
        latency = self.disturbances.get("latency")
        if latency is None or latency.magnitude == 0:
            return action
        self._queue.append(action)
        return self._queue.popleft() if len(self._queue) > latency.magnitude else self._queue[0]

    def strike(self, env: ProtegeEnv, tick: int) -> bool:
        """Apply the strikes scheduled for ``tick`` (ticks stepped so far); whether the state changed."""
        env = getattr(env, "unwrapped", env)
        moved = False
        for strike in self.strikes:
            if strike.tick == tick:
                move = push_object if strike.name == "object_push" else shove_arm
                if move(env, strike.magnitude, strike.heading):
                    self.applied.append(strike)
                    moved = True
        return moved

    def observe(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        noise = self.disturbances.get("obs_noise")
        if noise is None or noise.magnitude == 0 or "object_pos" not in obs:
            return obs
        return {**obs, "object_pos": obs["object_pos"] + self._noise.normal(0.0, noise.magnitude,
                                                                            obs["object_pos"].shape)}


def _headings(first: float) -> Iterator[np.ndarray]:
    for k in range(_DIRECTIONS):
        angle = first + 2 * np.pi * k / _DIRECTIONS
        yield np.array([np.cos(angle), np.sin(angle), 0.0])


def _bodies_clear(model: mujoco.MjModel, data: mujoco.MjData, bodies: set[int]) -> bool:
    """Whether no contact of a geom of ``bodies`` penetrates deeper than :data:`_PENETRATION`."""
    for contact in data.contact[: data.ncon]:
        touching = {int(model.geom_bodyid[contact.geom1]), int(model.geom_bodyid[contact.geom2])}
        if touching & bodies and contact.dist < -_PENETRATION:
            return False
    return True


def push_object(env: ProtegeEnv, distance: float, heading: float) -> bool:
    """Slide the task's first object ``distance`` metres horizontally, trying eight directions from
    ``heading``; False (nothing moved) if it is off the table or no direction lands clear."""
    task, model, data = env.task, env.model, env.data
    if not task.objects or not task.object_resting(data, 0):
        return False
    body = int(model.body(task.objects[0]).id)
    qpos, qvel = data.qpos.copy(), data.qvel.copy()
    for direction in _headings(heading):
        task.shift_object(data, 0, distance * direction)
        mujoco.mj_forward(model, data)
        if task.in_workspace(task.object_pos(data, 0)[:2]) and _bodies_clear(model, data, {body}):
            return True
        data.qpos[:], data.qvel[:] = qpos, qvel
    mujoco.mj_forward(model, data)
    return False


def shove_arm(env: ProtegeEnv, distance: float, heading: float) -> bool:
    """Displace the end effector ``distance`` metres horizontally (orientation kept), trying eight
    directions from ``heading``; an object held in the gripper moves with it, and the controller holds
    the new pose. False (nothing moved) if no direction lands clear within the joint limits."""
    task, model, data = env.task, env.model, env.data
    robot = set(env.robot_bodies)
    held = [i for i in range(len(task.objects)) if env.holds(i)]
    moved = robot | {int(model.body(task.objects[i]).id) for i in held}
    qpos, start = data.qpos.copy(), data.site_xpos[env.ee_site].copy()
    for direction in _headings(heading):
        if _solve_ee_position(env, start + distance * direction):
            for i in held:
                task.shift_object(data, i, data.site_xpos[env.ee_site] - start)
            mujoco.mj_forward(model, data)
            if _bodies_clear(model, data, moved):
                data.qvel[env.arm_dof_adr] = 0.0
                env.hold_pose()
                return True
        data.qpos[:] = qpos
        mujoco.mj_forward(model, data)
    return False


def _solve_ee_position(env: ProtegeEnv, target: np.ndarray, iterations: int = 20, tolerance: float = 5e-4) -> bool:
    """Move the arm joints (within their limits) so the end effector reaches ``target`` with its
    orientation unchanged (damped least squares); whether it got within ``tolerance``."""
    model, data, site = env.model, env.data, env.ee_site
    q_adr, dof_adr = env.arm_qpos_adr, env.arm_dof_adr
    wanted, current, difference, rotation_error = np.empty(4), np.empty(4), np.empty(4), np.empty(3)
    mujoco.mju_mat2Quat(wanted, data.site_xmat[site])  # the orientation to keep
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    low, high = env.arm_joint_range.T
    for _ in range(iterations):
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        position_error = target - data.site_xpos[site]
        mujoco.mju_mat2Quat(current, data.site_xmat[site])
        mujoco.mju_negQuat(difference, current)
        mujoco.mju_mulQuat(difference, wanted, difference)
        mujoco.mju_quat2Vel(rotation_error, difference, 1.0)
        if np.linalg.norm(position_error) < tolerance and np.linalg.norm(rotation_error) < 1e-2:
            return True
        mujoco.mj_jacSite(model, data, jacp, jacr, site)
        jacobian = np.vstack([jacp, jacr])[:, dof_adr]
        error = np.concatenate([position_error, rotation_error])
        step = jacobian.T @ np.linalg.solve(jacobian @ jacobian.T + 1e-4 * np.eye(6), error)
        data.qpos[q_adr] = np.clip(data.qpos[q_adr] + step, low, high)
    mujoco.mj_kinematics(model, data)
    return bool(np.linalg.norm(target - data.site_xpos[site]) < tolerance)
