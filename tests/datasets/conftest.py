"""Shared builders for the datasets tests: deterministic frames and small datasets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from protege.datasets import EpisodeWriter, Source

ATTRS = {
    "fps": 20,
    "robot": "default",
    "task": "lift",
    "action_space": "ee_delta",
    "action_scale": [0.01, 0.01, 0.01, 0.05, 0.05, 0.05, 1.0],
    "cameras": ["front", "wrist"],
}


def make_frame(episode: int, t: int, size: int = 8) -> dict[str, np.ndarray | float | int]:
    """A frame whose every value encodes (episode, t), so any mix-up is visible."""
    base = 1000.0 * episode + t
    return {
        "action": (base + np.arange(7)).astype(np.float32),
        "joint_pos": (base - np.arange(6)).astype(np.float32),
        "gripper": base / 7.0,
        "timestamp": 0.05 * t + 0.001 * (t % 3),
        "intervention": int(t % 4 == 1),
        "sim_state": base + np.linspace(0.0, 1.0, 12),
        "image_front": np.full((size, size, 3), (episode * 31 + t) % 256, dtype=np.uint8),
        "image_wrist": np.arange(size * size * 3, dtype=np.uint8).reshape(size, size, 3) + np.uint8(t % 50),
    }


def episode_arrays(episode: int, length: int, size: int = 8) -> dict[str, np.ndarray]:
    frames = [make_frame(episode, t, size) for t in range(length)]
    return {key: np.stack([np.asarray(f[key]) for f in frames]) for key in frames[0]}


def write_dataset(
    path: Path | str,
    lengths: Sequence[int],
    zarr_format: int = 2,
    chunk_frames: int | None = None,
    first_episode: int = 0,
) -> None:
    """Episodes of the given lengths; episode i has seed 100+i, success on even i, source i % 4."""
    with EpisodeWriter(path, ATTRS, format=zarr_format, chunk_frames=chunk_frames) as writer:
        for offset, length in enumerate(lengths):
            i = first_episode + offset
            for t in range(length):
                writer.add_frame(make_frame(i, t))
            writer.save_episode(seed=100 + i, success=i % 2 == 0, source=Source(i % 4))


def tree_state(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``path`` with its size and mtime, to prove nothing was written."""
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in Path(path).rglob("*")
        if p.is_file()
    }


@pytest.fixture
def attrs() -> dict:
    return {**ATTRS, "cameras": list(ATTRS["cameras"]), "action_scale": list(ATTRS["action_scale"])}


@pytest.fixture
def frame() -> Callable[..., dict]:
    return make_frame


@pytest.fixture
def expected_episode() -> Callable[..., dict[str, np.ndarray]]:
    return episode_arrays


@pytest.fixture
def write() -> Callable[..., None]:
    return write_dataset


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, tuple[int, int]]]:
    return tree_state


@pytest.fixture
def small_dataset(tmp_path: Path) -> Callable[..., Path]:
    """Build ``tmp_path/name`` with episodes of the given lengths (see write_dataset)."""

    def build(lengths: Sequence[int] = (5, 3, 7), zarr_format: int = 2, name: str = "d.zarr", **kwargs: object) -> Path:
        path = tmp_path / name
        write_dataset(path, lengths, zarr_format, **kwargs)
        return path

    return build
