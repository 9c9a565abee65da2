"""What both exchange formats share: the optional imports, output staging, key roles and dispatch."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from protege.datasets import schema
from protege.datasets.errors import DatasetError, DatasetNotFoundError, MissingExtraError
from protege.datasets.reader import Dataset
from protege.datasets.storage import is_local, normalize_path

FORMATS = ("lerobot", "robomimic")
EXTRA = "interop"  # the protege extra that installs the exchange formats' dependencies
INSTALL_HINT = f"pip install 'protege[{EXTRA}]'"
# Observation keys that describe the arm itself (LeRobot's observation.state by default).
STATE_KEYS = ("joint_pos", "joint_vel", "ee_pos", "ee_quat", "gripper")
# Keys the control loop adds beside the observation: never part of a state vector.
FRAME_KEYS = ("action", "timestamp", "intervention", "sim_state")


def require(module: str) -> ModuleType:
    """Import one of the extra's modules, or MissingExtraError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{module} is missing: exchanging datasets needs {INSTALL_HINT}", EXTRA) from None


def observation_keys(ds: Dataset) -> list[str]:
    """Low-dim observation keys: everything but images and the control loop's own keys."""
    return [key for key in ds.keys if not schema.is_image_key(key) and key not in FRAME_KEYS]


def split_state_keys(
    ds: Dataset, state_keys: Sequence[str] | None, env_state_keys: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """(state, environment state) keys: the arm's own keys, then every other observation key by default."""
    available = observation_keys(ds)
    state = [k for k in STATE_KEYS if k in available] if state_keys is None else list(state_keys)
    env = [k for k in available if k not in state] if env_state_keys is None else list(env_state_keys)
    for key in [*state, *env]:
        if key not in available:
            raise DatasetError(f"{ds.path} has no low-dim observation key {key!r}; it has {', '.join(available)}")
    both = sorted(set(state) & set(env))
    if both:
        raise DatasetError(f"{', '.join(both)} cannot be in both the state and the environment state")
    return state, env


def check_new_output(path: str | os.PathLike[str]) -> Path:
    """A local output path that does not exist yet (its parent may not either)."""
    text = normalize_path(path)
    if not is_local(text):
        raise DatasetError(f"{text}: exchange writes to a local path only")
    out = Path(text)
    if out.exists():
        raise DatasetError(f"{out} already exists; choose a new output")
    return out


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A hidden sibling path to write into, renamed to ``out`` on success and removed on any failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        yield temp
        if out.exists():
            raise DatasetError(f"{out} appeared while it was being written; left it alone")
        os.rename(temp, out)
    finally:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        elif temp.exists():
            temp.unlink()


def export_dataset(
    path: str | os.PathLike[str], to: str, out: str | os.PathLike[str], **options: Any
) -> dict[str, Any]:
    """Write the protege dataset at ``path`` as ``to`` (lerobot or robomimic) to the new path ``out``."""
    module = _format_module(to)
    destination = check_new_output(out)
    ds = Dataset(path)
    if ds.num_episodes == 0:
        raise DatasetError(f"{ds.path} has no episodes to export")
    return module.export(ds, destination, **options)


def import_dataset(
    source: str | os.PathLike[str], from_: str, out: str | os.PathLike[str], **options: Any
) -> dict[str, Any]:
    """Build the protege dataset ``out`` from ``source``, a LeRobot folder or a robomimic HDF5 file."""
    module = _format_module(from_)
    destination = check_new_output(out)
    src = Path(normalize_path(source))
    if not src.exists():
        raise DatasetNotFoundError(f"{src} does not exist")
    return module.import_(src, destination, **options)


def _format_module(name: str) -> ModuleType:
    if name not in FORMATS:
        raise DatasetError(f"unknown exchange format {name!r}; use one of {', '.join(FORMATS)}")
    return importlib.import_module(f"protege.datasets.interop.{name}")
