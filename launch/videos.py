"""Rollout videos for a page browsers open from disk: WebM re-encodes, GIF thumbnails, poster frames."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GIF_FPS = 10
GIF_WIDTH = 160
GIF_COLOURS = 128


@dataclass
class VideoAssets:
    source: Path
    webm: Path | None
    gif: Path
    poster: Path


def _read_frames(path: Path) -> tuple[list[Any], float]:
    import cv2

    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 20.0
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames, fps


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 (where native libraries print) to /dev/null for the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def video_assets(source: Path, folder: Path, name: str) -> VideoAssets | None:
    """A WebM copy browsers play (mp4v is not one they do), an animated GIF thumbnail and a poster PNG."""
    import cv2
    from PIL import Image

    frames, fps = _read_frames(source)
    if not frames:
        return None
    height, width = frames[0].shape[:2]
    webm: Path | None = folder / f"{name}.webm"
    with _stderr_silenced():  # FFmpeg prints a warning about the VP80 tag on every file, then writes it fine
        writer = cv2.VideoWriter(str(webm), cv2.VideoWriter.fourcc(*"VP80"), fps, (width, height))
        for frame in frames if writer.isOpened() else []:
            writer.write(frame)
        writer.release()
    if not webm.is_file() or webm.stat().st_size == 0:  # an OpenCV without VP8: the page falls back to the mp4
        webm = None
    every = max(1, round(fps / GIF_FPS))
    scale = min(1.0, GIF_WIDTH / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    images = [Image.fromarray(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)).resize(size) for f in frames[::every]]
    # One palette for every frame, from the first, middle and last: 40x faster than per-frame quantising.
    sample = np.concatenate([np.asarray(images[i]) for i in (0, len(images) // 2, -1)])
    palette = Image.fromarray(sample).quantize(GIF_COLOURS, method=Image.Quantize.FASTOCTREE)
    indexed = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
    gif = folder / f"{name}.gif"
    indexed[0].save(gif, save_all=True, append_images=indexed[1:], duration=round(1000 * every / fps), loop=0)
    poster = folder / f"{name}.png"
    Image.fromarray(cv2.cvtColor(frames[-1], cv2.COLOR_BGR2RGB)).save(poster)
    return VideoAssets(source, webm, gif, poster)


def find_video(path_text: str, run: Path) -> Path | None:
    """A video path as logged: absolute, relative to the working directory, or to the run."""
    path = Path(path_text)
    for candidate in (path, run / path, run / path.name, run / "videos" / path.name):
        if candidate.is_file():
            return candidate
    return None
