"""Episodes of one camera concatenated into mp4 files (PyAV, yuv420p), and frames read back by time."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from protege.datasets.errors import CorruptDatasetError, DatasetError
from protege.datasets.interop.common import require

# Encoder name -> (codec name LeRobot's info.json records, options), in order of preference. g=2 keeps random
# access cheap, as LeRobot does. h264 first: SVT-AV1's flush at the end of a file hung now and then in the tests.
ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "libx264": ("h264", {"g": "2", "crf": "23"}),
    "libsvtav1": ("av1", {"g": "2", "crf": "30", "preset": "12"}),
}
PIX_FMT = "yuv420p"
SVT_LOG_ERRORS = "1"  # SVT-AV1's log level: errors only


def pick_encoder(name: str | None = None) -> str:
    """``name`` if PyAV's FFmpeg has it, else the first available of AV1 (SVT) and h264 (x264)."""
    av = require("av")
    wanted = [name] if name else list(ENCODERS)
    for encoder in wanted:
        if encoder not in ENCODERS:
            raise DatasetError(f"unknown video encoder {encoder!r}; use one of {', '.join(ENCODERS)}")
        try:
            av.codec.Codec(encoder, "w")
        except Exception:  # PyAV raises UnknownCodecError or ValueError by version
            continue
        return encoder
    raise DatasetError(f"PyAV's FFmpeg has no {' or '.join(wanted)} encoder")


class VideoFile:
    """One mp4 being written: frames appended across episodes with pts counting frames at ``fps``."""

    def __init__(self, path: Path, fps: int, width: int, height: int, encoder: str) -> None:
        av = require("av")
        if width % 2 or height % 2:
            raise DatasetError(f"{PIX_FMT} video needs even image sizes, got {width}x{height}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.frames = 0  # frames given to the encoder
        self._packets = self._bytes = 0  # what has come out of it so far (it holds some frames back)
        self._container = av.open(str(path), "w")
        try:
            self._stream = self._container.add_stream(encoder, rate=fps, options=ENCODERS[encoder][1])
            self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, PIX_FMT
            self._stream.time_base = Fraction(1, fps)
            _open_quietly(self._stream.codec_context)
        except Exception as exc:
            self._container.close()
            raise DatasetError(f"cannot encode {width}x{height} video with {encoder}: {exc}") from None
        self._frame_type = av.VideoFrame

    def write(self, images: np.ndarray) -> None:
        """Append uint8 RGB frames (T, H, W, 3)."""
        for image in images:
            frame = self._frame_type.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.frames
            self.frames += 1
            self._mux(self._stream.encode(frame))

    def _mux(self, packets: list[Any]) -> None:
        self._packets += len(packets)
        self._bytes += sum(packet.size for packet in packets)
        self._container.mux(packets)

    def size_bytes(self) -> float:
        """The file's size once every frame given so far is encoded, extrapolated from the packets out."""
        return self._bytes * self.frames / self._packets if self._packets else 0.0

    def close(self) -> None:
        self._mux(self._stream.encode(None))
        self._container.close()


def _open_quietly(codec_context: Any) -> None:
    """Open an encoder with SVT-AV1 logging errors only (it reads ``SVT_LOG`` as it opens, and prints its whole
    configuration per stream otherwise); the process environment is as it was after, a user's SVT_LOG kept."""
    kept = "SVT_LOG" in os.environ
    os.environ.setdefault("SVT_LOG", SVT_LOG_ERRORS)
    try:
        codec_context.open()
    finally:
        if not kept:
            del os.environ["SVT_LOG"]


def video_info(encoder: str, fps: int, height: int, width: int) -> dict[str, Any]:
    """The ``info`` block LeRobot keeps for a video feature."""
    return {
        "video.height": height,
        "video.width": width,
        "video.codec": ENCODERS[encoder][0],
        "video.pix_fmt": PIX_FMT,
        "video.is_depth_map": False,
        "video.fps": fps,
        "video.channels": 3,
        "has_audio": False,
    }


class FrameReader:
    """Decode one video file forward, handing out the frame nearest each requested time (seconds)."""

    def __init__(self, path: Path, tolerance_s: float) -> None:
        av = require("av")
        try:
            self._container = av.open(str(path))
        except (OSError, av.error.FFmpegError) as exc:
            raise CorruptDatasetError(f"cannot open video {path}: {exc}") from None
        self.path = path
        self._tolerance = tolerance_s
        self._frames: Iterator[Any] = self._container.decode(video=0)
        self._previous: tuple[float, np.ndarray] | None = None
        self._next: tuple[float, np.ndarray] | None = self._advance()
        self.last_time = -np.inf

    def _advance(self) -> tuple[float, np.ndarray] | None:
        frame = next(self._frames, None)
        if frame is None:
            return None
        return float(frame.pts * frame.time_base), frame.to_ndarray(format="rgb24")

    def frame_at(self, time: float) -> np.ndarray:
        """The frame nearest ``time``; times must not decrease between calls."""
        self.last_time = time
        while self._next is not None and self._next[0] < time:
            self._previous, self._next = self._next, self._advance()
        candidates = [c for c in (self._previous, self._next) if c is not None]
        if not candidates:
            raise CorruptDatasetError(f"{self.path} has no video frames")
        best = min(candidates, key=lambda c: abs(c[0] - time))
        if abs(best[0] - time) > self._tolerance:
            raise CorruptDatasetError(f"{self.path} has no frame within {self._tolerance:g} s of {time:.4f} s")
        return best[1]

    def close(self) -> None:
        self._container.close()
