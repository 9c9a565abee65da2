"""Replay a recorded episode in the sim and measure how far the replay drifts from the recording.

Two modes:

- ``states``: restore ``data/sim_state`` frame by frame and observe. Exact by construction: the
  deviation is 0 unless the dataset was recorded by another MuJoCo build or with another robot file.
- ``actions``: restore the first frame's state (or reset from the episode's seed when the dataset
  has no ``sim_state``), then step the recorded actions open loop and compare every later frame.

The deviation of a frame is the largest absolute difference between the replayed and the recorded
values of the physics state (``qpos`` and ``qvel`` from ``sim_state``) and of every low-dimensional
observation both have (``joint_pos``, ``ee_pos``, ``gripper``, ``object_pos``, ...; units as
stored: metres, radians, m/s); for quaternion keys (``ee_quat``, ``object_quat``) it is the rotation
angle between the two orientations in radians, so q and -q agree. ``max_deviation`` is its maximum
over the episode's frames. Images are not compared (a renderer on another GL backend differs by a
few grey levels).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from protege.datasets import Dataset
from protege.datasets.schema import QUAT_SUFFIX, is_image_key
from protege.datasets.video import open_mp4
from protege.sim.spec import image_key
from protege.teleop.errors import TeleopError
from protege.teleop.runtime.collect import look_seeds

if TYPE_CHECKING:
    from protege.sim.env import ProtegeEnv

MODES = ("states", "actions")
FRAME_KEYS = ("action", "timestamp", "intervention", "sim_state")  # what the control loop adds to observations
STATE_KEYS = ("qpos", "qvel")
VIDEO_CAMERA = "front"  # what a video shows of a dataset recorded without cameras


def make_replay_env(attrs: dict[str, Any], robot: str | None = None,
                    cameras: Sequence[str] | None = None) -> ProtegeEnv:
    """The env a dataset was recorded with, from its root attributes. ``robot`` (a spec path or
    built-in name) replaces the recorded arm, which must be the same arm (name, and hash when
    recorded); ``cameras`` replaces the recorded cameras. Success never ends an episode.
    """
    from protege.sim import EnvSpec, ProtegeEnv, SimError

    spec = EnvSpec.from_attrs(attrs).with_robot(robot)
    if cameras is not None:
        spec = dataclasses.replace(spec, cameras=tuple(cameras))
    try:
        return ProtegeEnv(spec, terminate_on_success=False)
    except SimError as exc:
        hint = "" if robot else " (pass --robot SPEC.yaml for an arm that is not built in)"
        raise SimError(f"cannot build the env of this dataset (task {spec.task!r}, robot {spec.robot!r}): "
                       f"{exc}{hint}") from None


def physics_slices(model: Any) -> dict[str, slice]:
    """Where ``qpos`` and ``qvel`` sit in a ``mjSTATE_INTEGRATION`` state vector (after ``time``)."""
    return {"qpos": slice(1, 1 + model.nq), "qvel": slice(1 + model.nq, 1 + model.nq + model.nv)}


def episode_seed(ds: Dataset, episode: int) -> int:
    return int(ds.meta("seed")[episode])


def reset_episode(env: ProtegeEnv, ds: Dataset, episode: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Reset ``env`` to the start of ``episode``: its seed's task-side choices and, for randomised demos, the
    look drawn when it was recorded (distractors, lights, colours, camera poses;
    :func:`~protege.teleop.runtime.collect.look_seeds`)."""
    from protege.sim.disturbances import Disturber, parse_disturbances

    obs, info = env.reset(seed=episode_seed(ds, episode))
    randomize = ds.attrs.get("randomize")
    if randomize:  # drawn again as `record --randomize` or `dataset relook` drew it
        Disturber(parse_disturbances(str(randomize))).reset(env, int(look_seeds(ds)[episode]))
        obs, info = env.observe()
    return obs, info


def check_episode(ds: Dataset, episode: int) -> None:
    n = ds.num_episodes
    if not n:
        raise TeleopError(f"{ds.path} has no episodes to replay")
    if not -n <= episode < n:
        raise TeleopError(f"episode {episode} out of range: {ds.path} has {n} episodes (0..{n - 1}, or -{n}..-1 "
                          "counting from the end)")


def check_frame(ds: Dataset, episode: int, frame: int) -> None:
    check_episode(ds, episode)
    frames = ds.episode_slice(episode)
    length = frames.stop - frames.start
    if not 0 <= frame < length:
        raise TeleopError(f"frame {frame} out of range: episode {episode} has {length} frames (0..{length - 1})")


def restore(env: ProtegeEnv, ds: Dataset, episode: int, frame: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Put ``env`` exactly in the state of ``frame`` of ``episode``; return the observation and info there.

    The env is first reset for the episode (:func:`reset_episode`: task-side choices, the recorded look),
    then the recorded physics state is set: the observation equals the recorded one bit for bit.
    """
    if "sim_state" not in ds:
        raise TeleopError(f"rewind needs sim_state: {ds.path} was recorded without data/sim_state")
    check_frame(ds, episode, frame)
    start = ds.episode_slice(episode).start
    reset_episode(env, ds, episode)
    env.set_state(ds["sim_state"][start + frame])
    return env.observe()


def low_dim_keys(ds: Dataset, obs: dict[str, np.ndarray]) -> list[str]:
    """Observation keys the dataset records and the env produces, images excluded."""
    return [key for key in obs if not is_image_key(key) and key in ds and key not in FRAME_KEYS]


def deviation(key: str, replayed: np.ndarray, recorded: np.ndarray) -> float:
    """Largest absolute difference, or for quaternion keys the largest rotation angle (radians) between them."""
    a, b = np.asarray(replayed, np.float64), np.asarray(recorded, np.float64)
    if not key.endswith(QUAT_SUFFIX):
        return float(np.max(np.abs(a - b), initial=0))
    a, b = a.reshape(-1, 4), b.reshape(-1, 4)
    b = b * np.where(np.sum(a * b, axis=1, keepdims=True) < 0, -1.0, 1.0)
    # 4 atan2(|a - b|, |a + b|) is the rotation angle, exactly 0 for equal quaternions (unlike arccos)
    angles = 4 * np.arctan2(np.linalg.norm(a - b, axis=1), np.linalg.norm(a + b, axis=1))
    return float(np.max(angles, initial=0))


@dataclass
class DeviationTracker:
    """Per-key and overall maximum :func:`deviation` between replayed and recorded frames."""

    per_key: dict[str, float] = field(default_factory=dict)
    max_deviation: float = 0.0
    worst_frame: int = 0

    def add(self, frame: int, replayed: dict[str, np.ndarray], recorded: dict[str, np.ndarray]) -> None:
        worst = 0.0
        for key, value in replayed.items():
            diff = deviation(key, value, recorded[key])
            self.per_key[key] = max(self.per_key.get(key, 0.0), diff)
            worst = max(worst, diff)
        if worst > self.max_deviation:
            self.max_deviation, self.worst_frame = worst, frame


@dataclass
class ReplayResult:
    episode: int
    mode: str
    frames: int
    max_deviation: float
    worst_frame: int
    per_key: dict[str, float]
    seconds: float
    video: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "episode": self.episode, "mode": self.mode, "frames": self.frames,
            "max_deviation": self.max_deviation, "worst_frame": self.worst_frame,
            "per_key": {k: float(f"{v:.3e}") for k, v in self.per_key.items()},
            "frames_per_s": round(self.frames / self.seconds, 1) if self.seconds > 0 else 0.0,
            "video": self.video,
        }


# (frame, env in its replayed state, obs) -> False to stop the replay there
FrameCallback = Callable[[int, Any, dict[str, np.ndarray]], bool | None]


def check_replay(ds: Dataset, episode: int, mode: str) -> None:
    """Refuse an unknown mode, an episode out of range, or states mode without ``sim_state``."""
    if mode not in MODES:
        raise TeleopError(f"unknown replay mode {mode!r} (choose from {', '.join(MODES)})")
    check_episode(ds, episode)
    if mode == "states" and "sim_state" not in ds:
        raise TeleopError(f"{ds.path} has no data/sim_state: states mode needs it (try --mode actions)")


def replay_episode(ds: Dataset, episode: int, mode: str = "states", env: ProtegeEnv | None = None,
                   on_frame: FrameCallback | None = None, robot: str | None = None) -> ReplayResult:
    """Replay ``episode`` of ``ds`` in ``env`` (default: one built from the dataset's attributes)
    and measure its deviation; ``on_frame`` sees the env at every replayed frame (video, window)
    and may stop the replay early by returning False."""
    check_replay(ds, episode, mode)
    episode = episode % ds.num_episodes
    env = env if env is not None else make_replay_env(ds.attrs, robot=robot, cameras=())
    frames = ds.episode_slice(episode)
    obs, _ = reset_episode(env, ds, episode)
    keys = low_dim_keys(ds, obs)
    recorded = {key: ds[key][frames] for key in [*keys, "action", *(["sim_state"] if "sim_state" in ds else [])]}
    slices = physics_slices(env.model)
    n = frames.stop - frames.start
    tracker = DeviationTracker()
    started = time.perf_counter()
    for t in range(n):
        if mode == "states" or t == 0:
            if "sim_state" in recorded:
                env.set_state(recorded["sim_state"][t])
            obs = env.observe()[0]
        else:
            obs = env.step(recorded["action"][t - 1])[0]
        replayed = {key: obs[key] for key in keys}
        expected = {key: recorded[key][t] for key in keys}
        if "sim_state" in recorded:
            state = env.get_state()
            for name, where in slices.items():
                replayed[name], expected[name] = state[where], recorded["sim_state"][t][where]
        tracker.add(t, replayed, expected)
        if on_frame is not None and on_frame(t, env, obs) is False:
            n = t + 1
            break
    return ReplayResult(episode, mode, n, tracker.max_deviation, tracker.worst_frame, tracker.per_key,
                        time.perf_counter() - started)


def camera_images(env: ProtegeEnv, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The env's camera images: from ``obs`` when it has them, else rendered now."""
    if env.cameras and all(image_key(c) in obs for c in env.cameras):
        return {c: obs[image_key(c)] for c in env.cameras}
    return env.render_cameras()


class VideoSink:
    """Writes the replayed env's cameras, side by side, to an mp4 (OpenCV, mp4v)."""

    def __init__(self, path: str | os.PathLike[str], fps: float) -> None:
        self.path = Path(path)
        self.fps = fps
        self._writer: Any = None

    def __call__(self, frame: int, env: ProtegeEnv, obs: dict[str, np.ndarray]) -> None:
        image = np.concatenate(list(camera_images(env, obs).values()), axis=1)
        if self._writer is None:
            self._writer = open_mp4(self.path, self.fps, image.shape[1], image.shape[0])
        self._writer.write(np.ascontiguousarray(image[..., ::-1]))

    def close(self) -> str | None:
        if self._writer is None:
            return None
        self._writer.release()
        return str(self.path)


class ReplayWindow:
    """Shows the replay at the recording rate and keeps the states and camera images it showed, so that
    the person can pause (Space), step (Left/Right), loop (L) and, once the episode has ended, look back
    over it (main view included) until Esc."""

    KEYS = "Space play/pause  Left/Right step  L loop  Esc close"

    def __init__(self, env: ProtegeEnv, title: str, fps: float, frames: int) -> None:
        from protege.teleop.runtime.loop import Clock
        from protege.teleop.window import Window

        self.env = env
        self.window = Window(env, title, what="replay")
        self.clock = Clock(fps)
        self.frames = frames
        self.shown: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []  # (sim state, camera images) per frame
        self.index = 0
        self.playing = True
        self.looping = False
        self.closed = False
        self._advance = False  # paused mid-replay: let the replay compute one more frame

    def __call__(self, frame: int, env: ProtegeEnv, obs: dict[str, np.ndarray]) -> bool:
        images = {f"image_{c}": image.copy() for c, image in camera_images(env, obs).items()}
        self.shown.append((env.get_state(), images))
        self.index = len(self.shown) - 1
        self._advance = False
        self._show()
        while not (self.playing or self.closed or self._advance):
            self._show()
        if self.index != len(self.shown) - 1:
            env.set_state(self.shown[-1][0])  # the replay goes on from its last frame
        return not self.closed

    def hold(self) -> None:
        """After the replay: stay on the last frame until Esc (playing again from the start on Space, or
        round and round with L)."""
        self.playing = self.looping
        while not self.closed:
            if self.playing:
                if self.index + 1 < len(self.shown):
                    self.index += 1
                elif self.looping:
                    self.index = 0
                else:
                    self.playing = False
            self._show()
        self.window.close()

    def _show(self) -> None:
        from protege.teleop.window import GREY, WHITE, YELLOW

        self._handle_events()
        state, images = self.shown[self.index]
        if self.index != len(self.shown) - 1:
            self.env.set_state(state)
        ended = len(self.shown) == self.frames and self.index == self.frames - 1 and not self.playing
        status = "end of episode" if ended else "playing" if self.playing else "paused"
        self.window.draw_views(images)
        self.window.line(0, [(f"frame {self.index}/{self.frames - 1}", WHITE),
                             (f"{self.index / self.clock.rate_hz:6.2f} s", WHITE),
                             (status, WHITE if self.playing else YELLOW),
                             (f"loop {'on' if self.looping else 'off'}", GREY)])
        self.window.line(2, [(self.KEYS, WHITE)])
        self.window.flip()
        self.clock.tick()

    def _handle_events(self) -> None:
        import pygame

        last = len(self.shown) - 1
        for event in pygame.event.get():
            if self.window.handle(event):
                continue
            if event.type == pygame.QUIT or (event.type == pygame.KEYDOWN and event.key == pygame.K_ESCAPE):
                self.closed = True
            elif event.type != pygame.KEYDOWN:
                continue
            elif event.key == pygame.K_SPACE:
                if not self.playing and self.index == self.frames - 1:
                    self.index = 0  # at the end: play again from the start
                self.playing = not self.playing
            elif event.key == pygame.K_l:
                self.looping = not self.looping
            elif event.key == pygame.K_LEFT:
                self.playing, self.index = False, max(0, self.index - 1)
            elif event.key == pygame.K_RIGHT:
                self.playing = False
                if self.index < last:
                    self.index += 1
                elif last < self.frames - 1:
                    self._advance = True


def replay(path: str | os.PathLike[str], episode: int, mode: str = "states", video: str | None = None,
           window: bool = False, robot: str | None = None) -> ReplayResult:
    """Replay one episode of the dataset at ``path``, optionally to an mp4 and/or in a window."""
    ds = Dataset(path)
    check_replay(ds, episode, mode)
    cameras: list[str] = []  # rendering costs: only for a video or the window's thumbnails
    if video or window:
        cameras = list(ds.attrs.get("cameras") or ([VIDEO_CAMERA] if video else []))
    env = make_replay_env(ds.attrs, robot=robot, cameras=cameras)
    callbacks: list[FrameCallback] = []
    sink = VideoSink(video, ds.fps) if video else None
    if sink is not None:
        callbacks.append(sink)
    viewer = None
    if window:
        frames = ds.episode_slice(episode)
        viewer = ReplayWindow(env, f"protege replay: {Path(ds.path).name} episode {episode} ({mode})", ds.fps,
                              frames.stop - frames.start)
        callbacks.append(viewer)

    def on_frame(t: int, e: Any, o: dict[str, np.ndarray]) -> bool:
        return all([callback(t, e, o) is not False for callback in callbacks])

    try:
        result = replay_episode(ds, episode, mode, env=env, on_frame=on_frame if callbacks else None)
        if viewer is not None:
            viewer.hold()
    finally:
        result_video = sink.close() if sink is not None else None
        env.close()
    result.video = result_video
    return result

