"""Robot specs: what protege needs to know about an MJCF arm, read from a small YAML file.

A spec names the arm joints and actuators, the end-effector frame (a site, or a body plus offset,
whose z axis is the approach direction), the gripper actuator with its open/closed controls,
the home keyframe, the workspace on the table where task objects spawn (robot base frame), and
where the wrist camera sits relative to the end-effector frame.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import yaml

from protege.sim.errors import SimError

BUILTIN_ROBOTS = ("protege_arm", "panda", "so_arm100")
DEFAULT_ROBOT = "protege_arm"
TIMESTEP = 0.002  # physics step of every model protege builds (seconds)
_GRIPPER_SETTLE_STEPS = 200  # physics steps the gripper gets to reach each command when the arm is measured
_FINGER_MOVED_M = 1e-3  # geoms that move this much between open and closed are the fingers
_BOX_CORNERS = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1])).reshape(3, -1).T


@dataclass(frozen=True)
class EndEffector:
    """End-effector frame: a site, or a body with an offset pose (pos, quat wxyz)."""

    site: str | None = None
    body: str | None = None
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Gripper:
    actuator: str
    open: float
    closed: float

    def ctrl(self, command: float) -> float:
        """Actuator control for a gripper command in [0, 1] (0 open, 1 closed)."""
        c = min(max(float(command), 0.0), 1.0)
        return self.open + c * (self.closed - self.open)


@dataclass(frozen=True)
class WristCamera:
    """Camera pose in the end-effector frame (MuJoCo `xyaxes` convention, looks along -z)."""

    pos: tuple[float, float, float] = (0.05, 0.0, -0.1)
    xyaxes: tuple[float, ...] = (0.0, 1.0, 0.0, 1.0, 0.0, 0.35)  # looks past the fingers at what they hold
    fovy: float = 75.0


@dataclass(frozen=True)
class Workspace:
    """Rectangle on the table (robot base frame, metres) where task objects spawn."""

    center: tuple[float, float]
    half_extent: tuple[float, float]


@dataclass(frozen=True)
class GripperGeometry:
    """The gripper as protege's scenes hold it, in the end-effector frame (metres; x across the closing
    axis, y along it, z along the approach): the collision geoms that move between open and closed,
    taken as their bounding boxes. Widths are twice the farthest point from the approach axis, so the
    gripper fits where its width does when it is centred on that axis."""

    fingers: tuple[str, ...]  # the bodies of those geoms (MJCF names)
    width_open: float  # outer width along the closing axis, open
    width_closed: float  # outer width along the closing axis, closed
    thickness: float  # outer extent across the closing axis, closed
    finger_length: float  # extent along the approach, closed
    tip_depth: float  # how far the fingertips reach past the end-effector point, closed


@dataclass(frozen=True)
class RobotGeometry:
    """What the loader measures of an arm at home: its gripper (None where no collision geom moves between
    open and closed) and its reach, the length of the chain from the first arm joint's anchor
    (``shoulder``, base frame) through the next joints' anchors to the end-effector point. No point
    farther than ``reach`` from the shoulder can be reached (for a chain of hinge joints)."""

    gripper: GripperGeometry | None
    shoulder: tuple[float, float, float]
    reach: float


@dataclass(frozen=True)
class RobotSpec:
    name: str
    mjcf: Path
    base_body: str
    arm_joints: tuple[str, ...]
    arm_actuators: tuple[str, ...]
    ee: EndEffector
    gripper: Gripper
    home_keyframe: str
    workspace: Workspace
    wrist_camera: WristCamera = field(default_factory=WristCamera)
    orientation_cost: float = 0.5
    source: Path | None = None

    @property
    def dof(self) -> int:
        return len(self.arm_joints)

    @property
    def geometry(self) -> RobotGeometry:
        """The gripper and reach, measured once per spec and process (:func:`measure_robot`)."""
        return measure_robot(self)


def builtin_spec_path(name: str) -> Path:
    return Path(str(resources.files("protege.sim.robots").joinpath(f"{name}.yaml")))


def menagerie_dir() -> Path | None:
    """Where the Menagerie robots live: $PROTEGE_MENAGERIE, else ../shared/robots next to the checkout."""
    env = os.environ.get("PROTEGE_MENAGERIE")
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[2] / "shared" / "robots"
    return guess if guess.is_dir() else None


def load_robot_spec(name_or_path: str | os.PathLike[str]) -> RobotSpec:
    """Load a built-in robot by name or any robot from a spec file, and check it against its MJCF."""
    text = str(name_or_path)
    if text in BUILTIN_ROBOTS:
        path = builtin_spec_path(text)
    elif text.endswith((".yaml", ".yml")):
        path = Path(text)
        if not path.is_file():
            raise SimError(f"robot spec file not found: {text}")
    else:
        raise SimError(f"unknown robot {text!r} (built-in: {', '.join(BUILTIN_ROBOTS)}; or a spec .yaml path)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SimError(f"robot spec {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    spec = _parse(raw, path)
    check_spec_against_model(spec, load_robot_model(spec))
    measure_robot(spec)
    return spec


def _parse(raw: Any, path: Path) -> RobotSpec:
    if not isinstance(raw, dict):
        raise SimError(f"robot spec {path} must be a YAML mapping")
    required = ("name", "mjcf", "base_body", "arm_joints", "arm_actuators", "ee", "gripper", "home_keyframe",
                "workspace")
    missing = [k for k in required if k not in raw]
    if missing:
        raise SimError(f"robot spec {path} lacks {', '.join(missing)}")
    known = set(required) | {"wrist_camera", "orientation_cost"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SimError(f"robot spec {path} has unknown key(s) {', '.join(unknown)}")
    mjcf = _expand_path(str(raw["mjcf"]), path)
    fields = _Fields(path)
    ee = fields.section("ee", raw["ee"], {}, {"site": str, "body": str, "pos": 3, "quat": 4})
    if ("site" in ee) == ("body" in ee):
        raise SimError(f"robot spec {path}: ee must name exactly one of site or body")
    workspace = fields.section("workspace", raw["workspace"], {"center": 2, "half_extent": 2}, {})
    return RobotSpec(
        name=str(raw["name"]),
        mjcf=mjcf,
        base_body=str(raw["base_body"]),
        arm_joints=fields.names("arm_joints", raw["arm_joints"]),
        arm_actuators=fields.names("arm_actuators", raw["arm_actuators"]),
        ee=EndEffector(**ee),
        gripper=Gripper(**fields.section("gripper", raw["gripper"], {"actuator": str, "open": float, "closed": float},
                                         {})),
        home_keyframe=str(raw["home_keyframe"]),
        workspace=Workspace(**workspace),
        wrist_camera=WristCamera(
            **fields.section("wrist_camera", raw.get("wrist_camera") or {}, {}, {"pos": 3, "xyaxes": 6, "fovy": float})
        ),
        orientation_cost=fields.value("orientation_cost", raw.get("orientation_cost", 0.5), float),
        source=path,
    )


class _Fields:
    """Checks the values of a spec file, naming the file and the field in every error."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _fail(self, where: str, expected: str, value: Any) -> SimError:
        return SimError(f"robot spec {self.path}: {where} must be {expected}, got {value!r}")

    def value(self, where: str, value: Any, kind: type | int) -> Any:
        """``kind`` str: a string; float: a number; an int n: a list of n numbers."""
        if kind is str:
            if not isinstance(value, str):
                raise self._fail(where, "a name", value)
            return value
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._fail(where, "a number", value)
            return float(value)
        if not isinstance(value, list) or len(value) != kind:
            raise self._fail(where, f"a list of {kind} numbers", value)
        return tuple(self.value(where, v, float) for v in value)

    def names(self, where: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self._fail(where, "a list of names", value)
        return tuple(self.value(where, v, str) for v in value)

    def section(
        self, where: str, value: Any, required: dict[str, type | int], optional: dict[str, type | int]
    ) -> dict[str, Any]:
        """A mapping with every ``required`` key and no key outside ``required`` and ``optional``."""
        if not isinstance(value, dict):
            raise self._fail(where, "a mapping", value)
        missing = [k for k in required if k not in value]
        unknown = sorted(set(value) - set(required) - set(optional))
        if missing or unknown:
            problem = f"lacks {', '.join(missing)}" if missing else f"has unknown key(s) {', '.join(map(str, unknown))}"
            raise SimError(f"robot spec {self.path}: {where} {problem}")
        kinds = {**required, **optional}
        return {k: self.value(f"{where}.{k}", v, kinds[k]) for k, v in value.items()}


def _expand_path(value: str, spec_path: Path) -> Path:
    mapping = dict(os.environ)
    menagerie = menagerie_dir()
    if menagerie is not None:
        mapping.setdefault("PROTEGE_MENAGERIE", str(menagerie))
    try:
        expanded = string.Template(value).substitute(mapping)
    except KeyError as exc:
        raise SimError(f"robot spec {spec_path}: environment variable {exc.args[0]} is not set "
                       "(needed by mjcf path)") from None
    p = Path(expanded)
    return p if p.is_absolute() else (spec_path.parent / p)


def load_robot_model(spec: RobotSpec) -> mujoco.MjSpec:
    """The robot's MJCF as an editable MjSpec."""
    if not spec.mjcf.is_file():
        raise SimError(f"robot {spec.name}: MJCF file not found: {spec.mjcf}")
    try:
        return mujoco.MjSpec.from_file(str(spec.mjcf))
    except Exception as exc:  # mujoco raises ValueError with a multi-line message
        raise SimError(f"robot {spec.name}: cannot load {spec.mjcf}: {str(exc).splitlines()[0]}") from None


def check_spec_against_model(spec: RobotSpec, mj: mujoco.MjSpec) -> None:
    """Every name the spec uses must exist in the MJCF."""
    kinds: list[tuple[str, str, Any]] = [("joint", j, mj.joint) for j in spec.arm_joints]
    kinds += [("actuator", a, mj.actuator) for a in (*spec.arm_actuators, spec.gripper.actuator)]
    kinds += [("body", spec.base_body, mj.body), ("keyframe", spec.home_keyframe, mj.key)]
    if spec.ee.site is not None:
        kinds.append(("site", spec.ee.site, mj.site))
    else:
        kinds.append(("body", spec.ee.body, mj.body))
    for kind, name, lookup in kinds:
        if lookup(name) is None:
            raise SimError(f"robot {spec.name}: {kind} {name!r} named in the spec is not in {spec.mjcf.name}")
    if len(spec.arm_joints) != len(spec.arm_actuators):
        raise SimError(f"robot {spec.name}: {len(spec.arm_joints)} arm joints but "
                       f"{len(spec.arm_actuators)} arm actuators")


def set_physics_options(option: mujoco.MjOption) -> None:
    """The physics of every model protege builds: its scenes, the IK model, the arm measured alone."""
    option.timestep = TIMESTEP
    option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    option.impratio = 10.0


def load_scene_robot(spec: RobotSpec) -> mujoco.MjSpec:
    """The robot's MJCF as protege's scenes hold it: their physics options, and every body's weight
    compensated (the arm's controller holds its own weight, as real arm controllers do)."""
    robot = load_robot_model(spec)
    set_physics_options(robot.option)
    for body in robot.bodies:
        body.gravcomp = 1.0
    return robot


@functools.cache
def measure_robot(spec: RobotSpec) -> RobotGeometry:
    """Measure the arm alone at home (:class:`RobotGeometry`), once per spec and process: the gripper
    settles open, then closed, with the arm held still, as the scripted experts find it in a scene.

    Refuses swapped ``open`` and ``closed`` values: the fingers' mean distance from the end-effector
    point must be larger open than closed.
    """
    mj = load_scene_robot(spec)
    site = spec.ee.site or "protege_ee_probe"
    if spec.ee.site is None:
        mj.body(spec.ee.body).add_site(name=site, pos=spec.ee.pos, quat=spec.ee.quat)
    model = mj.compile()
    data = mujoco.MjData(model)
    arm = [model.joint(j) for j in spec.arm_joints]
    at_open, at_closed = (_settled_boxes(model, data, spec, arm, site, ctrl)
                          for ctrl in (spec.gripper.open, spec.gripper.closed))
    colliding = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    moved = np.linalg.norm(at_open.mean(axis=1) - at_closed.mean(axis=1), axis=1) > _FINGER_MOVED_M
    anchors = [data.xanchor[j.id] for j in arm] + [data.site_xpos[model.site(site).id]]
    shoulder = (float(anchors[0][0]), float(anchors[0][1]), float(anchors[0][2]))
    reach = float(sum(np.linalg.norm(b - a) for a, b in itertools.pairwise(anchors)))
    fingers = np.flatnonzero(moved & colliding)
    if not len(fingers):
        return RobotGeometry(None, shoulder, reach)
    aperture_open, aperture_closed = (float(np.linalg.norm(boxes[fingers].mean(axis=1), axis=1).mean())
                                      for boxes in (at_open, at_closed))
    if aperture_open < aperture_closed:
        raise SimError(
            f"robot {spec.name}: the gripper closes at open={spec.gripper.open:g} and opens at "
            f"closed={spec.gripper.closed:g} (finger aperture {1000 * aperture_open:.0f} vs "
            f"{1000 * aperture_closed:.0f} mm); swap open and closed in {spec.source or 'the spec'}"
        )
    opened, closed = at_open[fingers].reshape(-1, 3), at_closed[fingers].reshape(-1, 3)
    gripper = GripperGeometry(
        fingers=tuple(dict.fromkeys(model.body(int(model.geom_bodyid[g])).name for g in fingers)),
        width_open=2 * float(np.abs(opened[:, 1]).max()),
        width_closed=2 * float(np.abs(closed[:, 1]).max()),
        thickness=2 * float(np.abs(closed[:, 0]).max()),
        finger_length=float(np.ptp(closed[:, 2])),
        tip_depth=float(closed[:, 2].max()),
    )
    return RobotGeometry(gripper, shoulder, reach)


def _settled_boxes(model: mujoco.MjModel, data: mujoco.MjData, spec: RobotSpec, arm: list[Any], site: str,
                   ctrl: float) -> np.ndarray:
    """The corners of every geom's bounding box in the end-effector frame, (ngeom, 8, 3), after the
    gripper, starting at home with the arm held there, has had time to reach ``ctrl``."""
    mujoco.mj_resetDataKeyframe(model, data, model.key(spec.home_keyframe).id)
    data.ctrl[model.actuator(spec.gripper.actuator).id] = ctrl
    qpos, dofs = [j.qposadr[0] for j in arm], [j.dofadr[0] for j in arm]
    held = data.qpos[qpos].copy()
    for _ in range(_GRIPPER_SETTLE_STEPS):
        mujoco.mj_step(model, data)
        data.qpos[qpos] = held
        data.qvel[dofs] = 0.0
    mujoco.mj_forward(model, data)
    s = model.site(site).id
    origin, rot = data.site_xpos[s], data.site_xmat[s].reshape(3, 3)
    local = model.geom_aabb[:, None, :3] + _BOX_CORNERS[None] * model.geom_aabb[:, None, 3:]
    world = data.geom_xpos[:, None] + np.einsum("gij,gkj->gki", data.geom_xmat.reshape(-1, 3, 3), local)
    return (world - origin) @ rot


def robot_hash(spec: RobotSpec) -> str:
    """What tells two arms of the same name apart: SHA-256 (16 hex digits) of the spec file and its MJCF file."""
    digest = hashlib.sha256()
    for path in (spec.source, spec.mjcf):
        if path is not None:
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def home_ctrl(spec: RobotSpec) -> dict[str, float]:
    """Home actuator controls by actuator name."""
    model = load_robot_model(spec).compile()
    key = model.key(spec.home_keyframe)
    return {model.actuator(a).name: float(np.asarray(key.ctrl)[a]) for a in range(model.nu)}


def ee_frame(spec: RobotSpec) -> tuple[str, np.ndarray, np.ndarray]:
    """The end-effector frame as (body name, position, quaternion wxyz) in that body's frame."""
    if spec.ee.body is not None:
        return spec.ee.body, np.asarray(spec.ee.pos, float), np.asarray(spec.ee.quat, float)
    model = load_robot_model(spec).compile()
    site = model.site(spec.ee.site)
    return model.body(int(site.bodyid[0])).name, site.pos.copy(), site.quat.copy()
