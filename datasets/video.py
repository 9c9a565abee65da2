"""Export one episode's camera images as an mp4, all cameras side by side."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from protege.datasets import schema
from protege.datasets.errors import DatasetError
from protege.datasets.reader import Dataset


def camera_keys(ds: Dataset) -> list[str]:
    """Image keys in the order of the ``cameras`` attribute, then any others alphabetically."""
    images = [key for key in ds.keys if schema.is_image_key(key)]
    listed = [f"{schema.IMAGE_PREFIX}{name}" for name in ds.attrs.get("cameras", [])]
    return [key for key in listed if key in images] + sorted(set(images) - set(listed))


def _side_by_side(frames: list[np.ndarray], height: int) -> np.ndarray:
    import cv2

    scaled = [
        f if f.shape[0] == height else cv2.resize(f, (round(f.shape[1] * height / f.shape[0]), height))
        for f in frames
    ]
    return np.concatenate(scaled, axis=1)


def open_mp4(path: str | os.PathLike[str], fps: float, width: int, height: int) -> Any:
    """An OpenCV mp4v writer to ``path`` (parent folders created); it takes BGR frames."""
    import cv2

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise DatasetError(f"OpenCV cannot write video {path}")
    return writer


def export_video(ds: Dataset, episode: int, out: str | os.PathLike[str], fps: float | None = None) -> dict[str, Any]:
    """Write episode ``episode`` to ``out`` (mp4v codec) at the dataset's rate unless ``fps`` is given."""
    frames = ds.episode_slice(episode)
    keys = camera_keys(ds)
    if not keys:
        raise DatasetError(f"{ds.path} has no camera images (image_<camera> keys)")
    images = ds.episode(episode, keys).data  # whole, so each camera's frames are checked against their checksum
    height = max(ds.shape(key)[1] for key in keys)
    width = sum(round(ds.shape(key)[2] * height / ds.shape(key)[1]) for key in keys)
    out = Path(out)
    rate = float(fps or ds.fps)
    writer = open_mp4(out, rate, width, height)
    try:
        for i in range(frames.stop - frames.start):
            rgb = _side_by_side([images[key][i] for key in keys], height)
            writer.write(np.ascontiguousarray(rgb[..., ::-1]))
    finally:
        writer.release()
    if not out.is_file() or out.stat().st_size == 0:
        raise DatasetError(f"OpenCV wrote no video to {out}")
    return {
        "path": str(out),
        "episode": int(episode),
        "frames": frames.stop - frames.start,
        "fps": rate,
        "width": width,
        "height": height,
        "cameras": [key[len(schema.IMAGE_PREFIX) :] for key in keys],
    }
