"""The dataset contract: schema version, source codes, reserved names and the dtype of each known key."""

from __future__ import annotations

import enum
import re
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from protege.datasets.errors import DatasetError

SCHEMA_VERSION = 1

# Root attributes the writer owns; user attrs may not set them.
RESERVED_ATTRS = ("schema_version", "source_codes", "software", "created", "stats")
# Attributes that must be present when a dataset is created, and must agree when one is appended to.
REQUIRED_ATTRS = ("fps", "robot", "task", "action_space")

EPISODE_ENDS = "episode_ends"
# meta/checksums: (episodes, data keys) int64, the CRC-32 of each episode's values of each key (attrs
# "keys" names the columns), computed at commit; -1 for episodes written before checksums were kept.
CHECKSUMS = "checksums"
# meta/meta_checksums: the same for the per-episode values, one column per meta array ("episode_ends",
# "episode_seed", ...; attrs "keys"), -1 for episodes committed before the column existed.
META_CHECKSUMS = "meta_checksums"
NO_CHECKSUM = -1
META_PREFIX = "episode_"
# Per-episode values every dataset records, with their dtypes.
BUILTIN_META: dict[str, np.dtype] = {
    "seed": np.dtype(np.int64),
    "success": np.dtype(np.bool_),
    "source": np.dtype(np.uint8),
    "duration": np.dtype(np.float64),
}
# Data keys whose dtype the contract fixes.
CANONICAL_DTYPES: dict[str, np.dtype] = {
    "timestamp": np.dtype(np.float64),
    "intervention": np.dtype(np.uint8),
    "sim_state": np.dtype(np.float64),
}
IMAGE_PREFIX = "image_"
# Observation kinds, recorded per key in the root attribute ``observations`` ([{key, kind, shape}]):
# what the arm measures of itself, camera images, object or goal state a real robot would not observe.
OBS_KINDS = ("lowdim", "image", "privileged")
# The kinds of datasets recorded before ``observations`` existed: images by prefix, and these keys.
_LEGACY_KINDS = {
    **dict.fromkeys(("joint_pos", "joint_vel", "ee_pos", "ee_quat", "gripper"), "lowdim"),
    **dict.fromkeys(("object_pos", "object_quat", "goal_pos"), "privileged"),
}
QUAT_SUFFIX = "_quat"  # observation keys holding one or more unit quaternions (w, x, y, z)
VEL_SUFFIX = "_vel"  # observation keys holding velocities (zero: at rest)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")


class Source(enum.IntEnum):
    """Who produced an episode; stored as its integer code in meta/episode_source."""

    HUMAN = 0
    EXPERT = 1
    POLICY = 2
    INTERVENTION = 3


SOURCE_CODES: dict[str, int] = {source.name.lower(): int(source) for source in Source}


def source_name(code: int) -> str:
    """Lower-case name of a source code, or ``unknown(<code>)``."""
    try:
        return Source(int(code)).name.lower()
    except ValueError:
        return f"unknown({int(code)})"


def checksum(values: np.ndarray) -> int:
    """CRC-32 of an array's values (C order), as stored in meta/checksums."""
    return zlib.crc32(memoryview(np.ascontiguousarray(values)).cast("B"))


def is_image_key(key: str) -> bool:
    return key.startswith(IMAGE_PREFIX)


def observation_kinds(attrs: Mapping[str, Any], keys: list[str]) -> dict[str, str]:
    """Observation key -> kind for the data ``keys``, in recorded order: from the ``observations``
    attribute, or (datasets without it) images by prefix and the keys protege envs have always had."""
    recorded = attrs.get("observations")
    if recorded is not None:
        return {o["key"]: o["kind"] for o in recorded if o["key"] in keys}
    images = {key: "image" for key in keys if is_image_key(key)}
    return {key: kind for key, kind in _LEGACY_KINDS.items() if key in keys} | images


def check_name(name: str, what: str) -> None:
    """Refuse names that would make a subgroup, a hidden file or a zarr-reserved key."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise DatasetError(f"invalid {what} name {name!r}: use letters, digits, '_', '-'; start with a letter or digit")


def key_problem(key: str, frame_shape: tuple[int, ...], dtype: np.dtype) -> str | None:
    """Why a data key with this per-frame shape and dtype breaks the contract, or None."""
    expected = CANONICAL_DTYPES.get(key)
    if expected is not None and dtype != expected:
        return f"data/{key} has dtype {dtype}, expected {expected}"
    if is_image_key(key) and (dtype != np.uint8 or len(frame_shape) != 3 or frame_shape[2] != 3):
        return f"data/{key} must be uint8 HxWx3 images, got {dtype} frames of shape {frame_shape}"
    if dtype.kind not in "biuf":
        return f"data/{key} has unsupported dtype {dtype} (numeric or bool only)"
    return None


def attrs_problem(attrs: Mapping[str, Any]) -> str | None:
    """Why root attributes lack what the contract requires, or None."""
    missing = [name for name in REQUIRED_ATTRS if name not in attrs]
    if missing:
        return f"attrs lack {', '.join(missing)}"
    fps = attrs["fps"]
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not fps > 0:
        return f"attrs fps must be a positive number, got {fps!r}"
    for name in ("robot", "task", "action_space"):
        if not isinstance(attrs[name], str):
            return f"attrs {name} must be a string, got {attrs[name]!r}"
    cameras = attrs.get("cameras", [])
    if not isinstance(cameras, list) or not all(isinstance(c, str) for c in cameras):
        return f"attrs cameras must be a list of names, got {cameras!r}"
    observations = attrs.get("observations", [])
    if not isinstance(observations, list) or not all(
        isinstance(o, dict) and isinstance(o.get("key"), str) and o.get("kind") in OBS_KINDS
        and isinstance(o.get("shape"), list) for o in observations
    ):
        return (f"attrs observations must be a list of {{key, kind ({', '.join(OBS_KINDS)}), shape}}, "
                f"got {observations!r}")
    return None


def version_problem(attrs: Mapping[str, Any]) -> str | None:
    """Why the stored schema version cannot be read by this protege, or None."""
    version = attrs.get("schema_version")
    if version is None:
        return "no schema_version in root attrs (not a protege dataset)"
    if version != SCHEMA_VERSION:
        return f"unknown schema version {version!r} (this protege reads version {SCHEMA_VERSION})"
    return None



def user_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Root attributes minus the ones the writer owns (to copy a dataset's attrs into a new one)."""
    return {key: value for key, value in attrs.items() if key not in RESERVED_ATTRS}
