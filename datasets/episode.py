"""Episode: one episode as the writer takes it, and EpisodeBuffer, the frame sink that stacks one."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from protege.datasets.schema import Source


@dataclass(frozen=True)
class Episode:
    """Frames stacked per key (key -> (T, ...) array) with the episode's seed, success, source and extra meta:
    what the writer takes and the reader (``Dataset.episode``) returns.

    ``meta`` values (ints, bools, floats) become ``meta/episode_<name>`` arrays (-1 or NaN for
    episodes without them). ``duration`` (seconds) is the stored one when read; when None the writer
    measures it from ``timestamp`` (else frames / fps). The writer keeps the arrays, not copies of
    them, until the episode is committed: do not change them after adding it.
    """

    data: Mapping[str, np.ndarray]
    seed: int
    success: bool
    source: Source | int
    meta: Mapping[str, Any] = field(default_factory=dict)
    duration: float | None = None

    def __len__(self) -> int:
        """Frames in the episode (0 without data)."""
        return len(next(iter(self.data.values()), ()))


class EpisodeBuffer:
    """An in-memory frame sink: each saved episode waits in ``episodes`` as an :class:`Episode`."""

    def __init__(self) -> None:
        self._frames: list[Mapping[str, Any]] = []
        self.episodes: list[Episode] = []

    @property
    def num_frames(self) -> int:
        """Frames added since the last save or discard."""
        return len(self._frames)

    def add_frame(self, frame: Mapping[str, Any]) -> None:
        """Keep a copy of ``frame`` (the caller may reuse its arrays)."""
        self._frames.append({key: np.array(value, copy=True) for key, value in frame.items()})

    def episode(self, seed: int, success: bool, source: Source | int, **extra_meta: Any) -> Episode:
        """The frames added since the last save or discard, stacked (they stay in the buffer)."""
        data = {key: np.stack([frame[key] for frame in self._frames]) for key in self._frames[0]}
        return Episode(data, seed, success, source, extra_meta)

    def save_episode(self, seed: int, success: bool, source: Source | int, **extra_meta: Any) -> int:
        """Append the stacked frames to ``episodes`` as one :class:`Episode`; return its index there."""
        self.episodes.append(self.episode(seed, success, source, **extra_meta))
        self._frames = []
        return len(self.episodes) - 1

    def discard_episode(self) -> None:
        self._frames = []
