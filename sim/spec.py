"""The env spec: what fixes an env's observations, actions and timing, and its one JSON form.

A dataset stores :meth:`EnvSpec.to_attrs` as root attributes and a checkpoint keeps its dataset's
attributes as they are, so :meth:`EnvSpec.from_attrs` reads both (older datasets and checkpoints
lack ``robot_source``, ``robot_hash`` and ``substeps``, and may store ``image_size`` as an int).
The arm is named twice: by ``robot`` (its spec's name) and by ``robot_source`` (a built-in name or
the spec file's absolute path), and told apart from another arm of the same name by ``robot_hash``.
``observations`` lists each observation key with its kind and per-frame shape (the env's observation
space), so a policy picks its inputs from a dataset's attributes, not from key names.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protege.sim.controllers import ACTION_SPACES, action_scale
from protege.sim.errors import IncompatibleEnvError, SimError
from protege.sim.robot import (
    BUILTIN_ROBOTS,
    DEFAULT_ROBOT,
    TIMESTEP,
    RobotSpec,
    builtin_spec_path,
    load_robot_spec,
    robot_hash,
)
from protege.sim.tasks import TASKS

DEFAULT_CAMERAS = ("front", "wrist")
DEFAULT_IMAGE_SIZE = (128, 128)
# Observation kinds (the dataset contract's words, datasets.schema.OBS_KINDS): what the arm measures
# of itself, camera images, and object or goal state a real robot would not observe.
LOWDIM, IMAGE, PRIVILEGED = "lowdim", "image", "privileged"
Observation = tuple[str, str, tuple[int, ...]]  # key, kind, per-frame shape
ARM_KEYS = ("joint_pos", "joint_vel", "ee_pos", "ee_quat", "gripper")  # what the arm measures of itself
IMAGE_PREFIX = "image_"


def image_key(camera: str) -> str:
    """The observation key of a camera's image."""
    return IMAGE_PREFIX + camera


def camera_of(key: str) -> str | None:
    """The camera whose image an observation key holds, None for another key."""
    return key.removeprefix(IMAGE_PREFIX) if key.startswith(IMAGE_PREFIX) else None


def default_substeps(control_hz: float) -> int:
    """Physics steps per control tick: as many as fit one control period (1 for a rate that is not positive,
    which :class:`EnvSpec` refuses)."""
    return max(1, round(1.0 / (control_hz * TIMESTEP))) if control_hz > 0 else 1


def observations(task: str, dof: int, cameras: Sequence[str], image_size: tuple[int, int]) -> tuple[Observation, ...]:
    """Each observation key of an env with this task, arm (``dof`` joints) and cameras, in the env's order."""
    objects, has_goal = len(TASKS[task].objects), TASKS[task].has_goal
    arm = zip(ARM_KEYS, ((dof,), (dof,), (3,), (4,), (1,)), strict=True)
    state = [("object_pos", (3 * objects,)), ("object_quat", (4 * objects,))] if objects else []
    return (*((key, LOWDIM, shape) for key, shape in arm),
            *((key, PRIVILEGED, shape) for key, shape in state + ([("goal_pos", (3,))] if has_goal else [])),
            *((image_key(camera), IMAGE, (*image_size, 3)) for camera in cameras))


def source_of(robot: str) -> str:
    """How a spec records a ``--robot`` value: a built-in name as is, a spec file as its absolute path."""
    return robot if robot in BUILTIN_ROBOTS else str(Path(robot).resolve())


@dataclass(frozen=True)
class EnvSpec:
    """Task, arm, cameras, image size (h, w), control rate, physics substeps, action space and scale.

    ``robot_hash`` empty means unknown (a spec read from older attributes): it is then not compared;
    ``observations`` empty too (:func:`observations`; :meth:`make` and :meth:`resolved` fill it in).
    """

    task: str
    robot: str
    robot_source: str
    robot_hash: str = ""
    cameras: tuple[str, ...] = DEFAULT_CAMERAS
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE
    control_hz: float = 20.0
    substeps: int = 25
    action_space: str = "ee_delta"
    action_scale: tuple[float, ...] = ()
    observations: tuple[Observation, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise SimError(f"unknown task {self.task!r} (choose from {', '.join(TASKS)})")
        if self.action_space not in ACTION_SPACES:
            raise SimError(f"unknown action space {self.action_space!r} (choose from {', '.join(ACTION_SPACES)})")
        if not self.control_hz > 0 or self.substeps < 1:
            raise SimError(f"control rate and substeps must be positive, got {self.control_hz} Hz, {self.substeps}")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise SimError(f"image size must be (height, width) in pixels, got {self.image_size}")
        if self.observations:  # kept true to task, cameras and image size through dataclasses.replace
            dof = {key: shape for key, _, shape in self.observations}["joint_pos"][0]
            object.__setattr__(self, "observations", observations(self.task, dof, self.cameras, self.image_size))

    @classmethod
    def make(
        cls,
        task: str = "lift",
        robot: str | RobotSpec = DEFAULT_ROBOT,
        cameras: Sequence[str] = DEFAULT_CAMERAS,
        image_size: int | Sequence[int] = DEFAULT_IMAGE_SIZE,
        control_hz: float = 20.0,
        action_space: str = "ee_delta",
        substeps: int | None = None,
    ) -> EnvSpec:
        """The spec of an env with these settings; loads and checks the arm (a name, spec path or spec)."""
        arm = robot if isinstance(robot, RobotSpec) else load_robot_spec(robot)
        if arm.source is None:
            source = ""
        else:
            source = arm.name if arm.source == builtin_spec_path(arm.name) else str(arm.source.resolve())
        size = (image_size, image_size) if isinstance(image_size, int) else tuple(int(s) for s in image_size)
        hz = float(control_hz)
        spec = cls(task, arm.name, source, robot_hash(arm), tuple(cameras), size, hz,  # type: ignore[arg-type]
                   substeps or default_substeps(hz), action_space, action_scale(action_space, arm))
        return dataclasses.replace(spec, observations=observations(task, arm.dof, spec.cameras, spec.image_size))

    def load_robot(self) -> RobotSpec:
        """The arm from ``robot_source``, refused unless it is the arm this spec names (name, then hash)."""
        arm = load_robot_spec(self.robot_source or self.robot)
        if arm.name != self.robot:
            raise SimError(f"robot {self.robot_source} is {arm.name!r}, not the recorded {self.robot!r}")
        if self.robot_hash and robot_hash(arm) != self.robot_hash:
            raise SimError(f"robot {self.robot_source} is another arm than the recorded {self.robot!r} "
                           f"(spec and MJCF hash {robot_hash(arm)}, recorded {self.robot_hash})")
        return arm

    def resolved(self, arm: RobotSpec | None = None) -> EnvSpec:
        """This spec with its arm (``arm``, else :meth:`load_robot`) checked and what older attributes lack
        (hash, action scale, observations) filled in; builds no env."""
        return self.make(self.task, arm or self.load_robot(), self.cameras, self.image_size, self.control_hz,
                         self.action_space, self.substeps)

    def with_robot(self, robot: str | None) -> EnvSpec:
        """This spec with its arm loaded from ``robot`` (a ``--robot`` value) instead; None keeps it."""
        return self if robot is None else dataclasses.replace(self, robot_source=source_of(robot))

    def to_attrs(self) -> dict[str, Any]:
        """The JSON form: dataset root attributes (``image_size`` is ``[]`` without cameras; ``observations``
        a list of ``{key, kind, shape}``, absent when unknown)."""
        return {
            "task": self.task,
            "robot": self.robot,
            "robot_source": self.robot_source,
            "robot_hash": self.robot_hash,
            "cameras": list(self.cameras),
            "image_size": list(self.image_size) if self.cameras else [],
            "fps": self.control_hz,
            "substeps": self.substeps,
            "action_space": self.action_space,
            "action_scale": list(self.action_scale),
        } | ({"observations": [{"key": k, "kind": kind, "shape": list(shape)} for k, kind, shape in self.observations]}
             if self.observations else {})

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> EnvSpec:
        """The spec in dataset attributes or a checkpoint's ``dataset`` entry; touches no file."""
        missing = [key for key in ("task", "robot", "fps") if key not in attrs]
        if missing:
            raise SimError(f"env attributes lack {', '.join(missing)}")
        try:
            size = attrs.get("image_size") or DEFAULT_IMAGE_SIZE
            hz = float(attrs["fps"])
            return cls(
                task=str(attrs["task"]),
                robot=str(attrs["robot"]),
                robot_source=str(attrs.get("robot_source") or attrs["robot"]),
                robot_hash=str(attrs.get("robot_hash", "")),
                cameras=tuple(str(c) for c in attrs.get("cameras", ())),
                image_size=(size, size) if isinstance(size, int) else (int(size[0]), int(size[1])),
                control_hz=hz,
                substeps=int(attrs.get("substeps") or default_substeps(hz)),
                action_space=str(attrs.get("action_space", "ee_delta")),
                action_scale=tuple(float(x) for x in attrs.get("action_scale", ())),
                observations=tuple((str(o["key"]), str(o["kind"]), tuple(int(n) for n in o["shape"]))
                                   for o in attrs.get("observations", ())),
            )
        except (TypeError, ValueError, IndexError, KeyError) as exc:  # KeyError: observations without joint_pos
            raise SimError(f"malformed env attributes: {exc}") from None


def check_compatible(expected: EnvSpec, given: EnvSpec, context: str, *, images: bool = False) -> None:
    """Refuse ``given`` where it differs from ``expected`` (the env a policy was trained in or a dataset
    recorded) in what a policy's actions or an expert's labels depend on: task, arm, action space, rate
    and substeps; with ``images`` (episodes joining a dataset) also the cameras and their image size. A policy's
    observations are checked by shape instead (the checkpoint's inputs). The message reads
    "<context> <what> <expected>, not <given>", e.g. "checkpoint was trained on task 'lift', not 'push'"."""
    pairs = [("task", "task"), ("robot", "robot"), ("action_space", "action space")]
    if images:
        pairs.append(("cameras", "cameras"))
        if expected.cameras:  # without cameras no image size is recorded
            pairs.append(("image_size", "image size"))
    for name, label in pairs:
        if getattr(expected, name) != getattr(given, name):
            raise IncompatibleEnvError(f"{context} {label} {getattr(expected, name)!r}, not {getattr(given, name)!r}")
    if expected.robot_hash and given.robot_hash and expected.robot_hash != given.robot_hash:
        raise IncompatibleEnvError(f"{context} another arm named {expected.robot!r} (spec and MJCF hash "
                                   f"{expected.robot_hash}, not {given.robot_hash})")
    if (expected.control_hz, expected.substeps) != (given.control_hz, given.substeps):
        raise IncompatibleEnvError(f"{context} rate {expected.control_hz:g} Hz with {expected.substeps} substeps, "
                                   f"not {given.control_hz:g} Hz with {given.substeps}")
