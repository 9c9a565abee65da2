"""A small synthetic reaching dataset whose actions are a learnable function of the observations.

Used by the tests and benchmarks: the end effector moves towards an object with a saturated
proportional controller and closes the gripper once near it; the optional camera images show the
object and the end effector as bright squares, so an image policy can learn the same behaviour.
"""

from __future__ import annotations

import os

import numpy as np

from protege.datasets import Episode, EpisodeWriter, Source

ATTRS = {"fps": 20, "robot": "synthetic", "task": "reach", "action_space": "ee_delta", "action_scale": 0.02}


def _draw(points: list[np.ndarray], size: int) -> np.ndarray:
    """A size x size RGB image with one coloured square per (x, y) point in [-0.5, 0.5]."""
    image = np.zeros((size, size, 3), dtype=np.uint8)
    half = max(1, size // 16)
    for channel, p in enumerate(points):
        cx, cy = (np.clip(p[:2] + 0.5, 0, 1) * (size - 1)).astype(int)
        image[max(cy - half, 0) : cy + half + 1, max(cx - half, 0) : cx + half + 1, channel] = 255
    return image


def make_dataset(
    path: str | os.PathLike[str],
    episodes: int = 8,
    steps: int = 40,
    cameras: tuple[str, ...] = (),
    image_size: int = 32,
    seed: int = 0,
) -> str:
    """Write the dataset to ``path`` (a new ``.zarr`` directory) and return its path."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(3, 7))  # joint_pos is a fixed linear function of ee_pos
    with EpisodeWriter(path, attrs={**ATTRS, "cameras": list(cameras)}) as writer:
        for episode in range(episodes):
            obj = rng.uniform(-0.3, 0.3, size=3)
            ee = rng.uniform(-0.3, 0.3, size=3)
            frames: dict[str, list[np.ndarray]] = {}
            for _ in range(steps):
                delta = obj - ee
                grip = float(np.linalg.norm(delta) < 0.05)
                move = np.clip(delta / ATTRS["action_scale"], -1.0, 1.0) * 0.5
                action = np.concatenate([move, np.zeros(3), [grip]])
                frame = {
                    "ee_pos": ee.copy(),
                    "joint_pos": ee @ mixing,
                    "gripper": np.array([grip]),
                    "object_pos": obj.copy(),
                    "action": action,
                    **{f"image_{c}": _draw([obj, ee], image_size) for c in cameras},
                }
                for key, value in frame.items():
                    frames.setdefault(key, []).append(value)
                ee = ee + move * ATTRS["action_scale"]
            data = {k: np.stack(v).astype(np.uint8 if k.startswith("image_") else np.float32)
                    for k, v in frames.items()}
            writer.add_episode(Episode(data, seed=seed + episode, success=True, source=Source.EXPERT))
    return str(path)
