"""The episode browser's model: which episode and frame are shown, playback, and what there is to draw.

Pure state without pixels: :mod:`protege.teleop.browser_view` draws it in a pygame window, and
tests drive it directly. It reads any protege dataset; keys it does not find (images,
``intervention``, ``gripper``, ``sim_state``, from which the scene is shown) are simply not shown.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from protege.datasets import Dataset
from protege.datasets.schema import source_name
from protege.datasets.video import camera_keys
from protege.teleop.errors import TeleopError
from protege.teleop.runtime.collect import look_seeds

SPEEDS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # playback speed, times the recording rate
IMAGE_BLOCK = 32  # image frames read (and decompressed) at once while playing


@dataclass(frozen=True)
class EpisodeEntry:
    """One row of the episode list."""

    index: int
    source: str  # human, expert, policy, intervention
    success: bool
    length: int
    seed: int
    parent: tuple[int, int] | None = None  # (episode, frame) a correction started from
    look_seed: int | None = None  # the seed its look was drawn from, where `dataset relook` drew another


def segments(flags: np.ndarray) -> list[tuple[int, int]]:
    """The ``[start, end)`` frame ranges where ``flags`` is non-zero."""
    padded = np.concatenate([[0], (np.asarray(flags) != 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2], strict=True)]


class BrowserModel:
    """Episode list, current episode and frame, playback (play/pause, speed), scrubbing, and the
    current episode's series (actions, gripper, intervention segments) and camera images."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = str(path)
        self.episode = 0
        self.frame = 0
        self.playing = False
        self.speed = 1.0
        self.message = ""
        self._carry = 0.0  # fractional frames of playback not shown yet
        self.reload()

    # -- dataset -------------------------------------------------------------------------------

    def reload(self) -> None:
        """(Re)open the dataset, e.g. after a correction was appended; keeps the selection in range."""
        ds = Dataset(self.path)
        if ds.num_episodes == 0:
            raise TeleopError(f"{ds.path} has no episodes to browse")
        self.ds = ds
        meta = {name: ds.meta(name) for name in ds.meta_names}
        lengths = np.diff(np.concatenate([[0], ds.episode_ends]))
        parents = meta.get("parent_episode"), meta.get("parent_frame")
        looks = look_seeds(ds)
        self.episodes = [
            EpisodeEntry(
                index=i,
                source=source_name(meta["source"][i]),
                success=bool(meta["success"][i]),
                length=int(lengths[i]),
                seed=int(meta["seed"][i]),
                parent=(int(parents[0][i]), int(parents[1][i]))
                if parents[0] is not None and parents[1] is not None and parents[0][i] >= 0 else None,
                look_seed=int(looks[i]) if looks[i] != meta["seed"][i] else None,
            )
            for i in range(ds.num_episodes)
        ]
        self.cameras = [key.removeprefix("image_") for key in camera_keys(ds)]
        self.can_rewind = "sim_state" in ds
        self.select(min(self.episode, ds.num_episodes - 1), keep_frame=True)

    @property
    def fps(self) -> float:
        return self.ds.fps

    @property
    def entry(self) -> EpisodeEntry:
        return self.episodes[self.episode]

    @property
    def length(self) -> int:
        return self.entry.length

    @property
    def sources(self) -> dict[str, int]:
        """Episodes per source name."""
        counts: dict[str, int] = {}
        for entry in self.episodes:
            counts[entry.source] = counts.get(entry.source, 0) + 1
        return counts

    # -- navigation ----------------------------------------------------------------------------

    def select(self, index: int, keep_frame: bool = False) -> None:
        """Show episode ``index`` (from its first frame unless ``keep_frame``)."""
        if not 0 <= index < len(self.episodes):
            raise TeleopError(f"episode {index} out of range: {self.path} has {len(self.episodes)} episodes")
        self.episode = index
        frames = self.ds.episode_slice(index)
        self._start = frames.start
        self.series = {key: self.ds[key][frames]
                       for key in ("action", "gripper", "timestamp", "intervention", "sim_state") if key in self.ds}
        self._blocks: dict[str, tuple[int, np.ndarray]] = {}
        self.frame = min(self.frame, self.length - 1) if keep_frame else 0
        self._carry = 0.0

    def next_episode(self, step: int = 1) -> None:
        self.select(int(np.clip(self.episode + step, 0, len(self.episodes) - 1)))

    def scrub(self, frame: int) -> None:
        """Jump to ``frame`` (clamped to the episode)."""
        self.frame = int(np.clip(frame, 0, self.length - 1))
        self._carry = 0.0

    def scrub_fraction(self, fraction: float) -> None:
        """Jump to a point of the timeline, 0 (first frame) .. 1 (last)."""
        self.scrub(round(float(np.clip(fraction, 0.0, 1.0)) * (self.length - 1)))

    def step(self, frames: int = 1) -> None:
        """Pause and move ``frames`` frames (negative: back)."""
        self.playing = False
        self.scrub(self.frame + frames)

    def toggle_play(self) -> None:
        if not self.playing and self.frame == self.length - 1:
            self.frame = 0  # play again from the start
        self.playing = not self.playing
        self._carry = 0.0

    def faster(self) -> None:
        self.speed = SPEEDS[min(SPEEDS.index(self.speed) + 1, len(SPEEDS) - 1)]

    def slower(self) -> None:
        self.speed = SPEEDS[max(SPEEDS.index(self.speed) - 1, 0)]

    def advance(self, seconds: float) -> int:
        """Let ``seconds`` of wall time pass; while playing, move on at ``speed`` times the recording
        rate and pause on the last frame. Returns the frames moved."""
        if not self.playing:
            return 0
        self._carry += seconds * self.fps * self.speed
        frames = int(self._carry)
        self._carry -= frames
        before = self.frame
        self.frame = min(self.frame + frames, self.length - 1)
        if self.frame == self.length - 1:
            self.playing = False
        return self.frame - before

    # -- what to show --------------------------------------------------------------------------

    def intervention_segments(self, episode: int | None = None) -> list[tuple[int, int]]:
        """``[start, end)`` frame ranges where a person or the expert took over from a policy within the
        episode: none where one pilot drove throughout (a demo, a plain rollout, a whole correction)."""
        if "intervention" not in self.ds:
            return []
        if episode is None or episode == self.episode:
            flags = self.series["intervention"]
        else:
            flags = self.ds["intervention"][self.ds.episode_slice(episode)]
        return segments(flags) if 0 < np.count_nonzero(flags) < len(flags) else []

    @property
    def timestamp(self) -> float:
        """Seconds since the episode start at the current frame (nominal when not recorded)."""
        if "timestamp" in self.series:
            return float(self.series["timestamp"][self.frame])
        return self.frame / self.fps

    @property
    def sim_state(self) -> np.ndarray | None:
        """The current frame's recorded physics state (None where the dataset has no ``sim_state``)."""
        return self.series["sim_state"][self.frame] if "sim_state" in self.series else None

    def images(self) -> dict[str, np.ndarray]:
        """Camera name -> the current frame's image."""
        return {camera: self._image(f"image_{camera}") for camera in self.cameras}

    def _image(self, key: str) -> np.ndarray:
        index = self._start + self.frame
        first, block = self._blocks.get(key, (-1, np.empty(0)))
        if not first <= index < first + len(block):
            first = self._start + (self.frame // IMAGE_BLOCK) * IMAGE_BLOCK
            block = self.ds[key][first:min(first + IMAGE_BLOCK, self._start + self.length)]
            self._blocks[key] = (first, block)
        return block[index - first]

    def frame_values(self) -> dict[str, np.ndarray]:
        """The current frame's low-dimensional values (action, gripper, sim_state, ...)."""
        return {key: values[self.frame] for key, values in self.series.items()}
