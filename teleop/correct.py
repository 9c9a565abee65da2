"""Rewind and correct: restore the sim to a recorded frame, drive on from there, keep the take.

A correction restores the exact physics state of frame ``frame`` of episode ``episode`` (its
observation equals the recorded one bit for bit), then runs the control loop with a corrector
(keyboard, gamepad or the scripted expert) in front; when the corrector hands back, a policy (any
object with ``reset()``/``act(obs)``) may drive on. The take is saved as a new episode with
source ``intervention`` whose first ``sim_state`` is the restored state and whose per-episode
metadata ``parent_episode``/``parent_frame`` name where it started (-1 for episodes that are no
correction; the writer fills that in by itself).

Headless, a script drives it: a YAML or JSON list of
``{episode, frame, source: keyboard|gamepad|expert, ticks, keys: [[tick, key, hold], ...]}``.
Every correction is checked, and every take run, before anything is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from protege.datasets import Dataset, Episode, EpisodeBuffer, EpisodeWriter, Source
from protege.datasets.schema import user_attrs
from protege.sim.spec import EnvSpec
from protege.teleop.errors import TeleopError
from protege.teleop.replay import FRAME_KEYS, check_frame, episode_seed, make_replay_env, restore
from protege.teleop.runtime.collect import look_seeds
from protege.teleop.runtime.loop import ControlLoop, check_dataset
from protege.teleop.runtime.pilots import ExpertPilot, Pilot, PolicyPilot

if TYPE_CHECKING:
    from protege.sim.env import ProtegeEnv

SOURCES = ("keyboard", "gamepad", "expert")


@dataclass(frozen=True)
class Correction:
    """One scripted correction: rewind to (episode, frame), let ``source`` drive ``ticks`` ticks
    (None: until the episode ends), with ``keys`` = (tick, key name, ticks held) presses for a keyboard."""

    episode: int
    frame: int
    source: str = "expert"
    ticks: int | None = None
    keys: tuple[tuple[int, str, int], ...] = ()


def parse_corrections(items: Any, where: str = "script") -> list[Correction]:
    """Corrections from a parsed YAML/JSON list; one-line TeleopError naming the first bad entry."""
    if not isinstance(items, list) or not items:
        raise TeleopError(f"{where}: expected a non-empty list of {{episode, frame, source, ticks}} corrections")
    corrections = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise TeleopError(f"{where}: correction {i} is not a mapping")
        unknown = sorted(set(item) - {"episode", "frame", "source", "ticks", "keys"})
        missing = [name for name in ("episode", "frame") if name not in item]
        if unknown or missing:
            raise TeleopError(f"{where}: correction {i} " + (f"has unknown key(s) {', '.join(unknown)}" if unknown
                                                              else f"lacks {', '.join(missing)}"))
        source = item.get("source", "expert")
        if source not in SOURCES:
            raise TeleopError(f"{where}: correction {i}: unknown source {source!r} (choose from {', '.join(SOURCES)})")
        ticks = item.get("ticks")
        numbers = [item["episode"], item["frame"], *([] if ticks is None else [ticks])]
        if any(isinstance(n, bool) or not isinstance(n, int) for n in numbers) or item["frame"] < 0:
            raise TeleopError(f"{where}: correction {i}: episode, frame and ticks must be integers, frame >= 0")
        if ticks is not None and ticks < 1:
            raise TeleopError(f"{where}: correction {i}: ticks must be at least 1, got {ticks}")
        try:
            keys = tuple((int(t), str(k), int(h)) for t, k, h in item.get("keys", []))
        except (TypeError, ValueError):
            raise TeleopError(f"{where}: correction {i}: keys must be [tick, key, hold] triples") from None
        if keys and source != "keyboard":
            raise TeleopError(f"{where}: correction {i}: keys only drive a keyboard source")
        corrections.append(Correction(item["episode"], item["frame"], source, ticks, keys))
    return corrections


def load_script(path: str | os.PathLike[str]) -> list[Correction]:
    """Corrections from a YAML or JSON file."""
    file = Path(path)
    if not file.is_file():
        raise TeleopError(f"correction script not found: {path}")
    try:
        items = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise TeleopError(f"correction script {path} is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    return parse_corrections(items, str(path))


class HandOver:
    """A pilot that drives until it hands back (after ``ticks`` ticks, or when told); from then on it
    proposes nothing, so the pilot below it (a policy) drives."""

    def __init__(self, pilot: Pilot, ticks: int | None = None) -> None:
        self.pilot = pilot
        self.kind = pilot.kind
        self.ticks = ticks
        self.active = True
        self.driven = 0

    def reset(self, seed: int | None = None) -> None:
        self.pilot.reset(seed=seed)
        self.active = True
        self.driven = 0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        if not self.active:
            return None
        action = self.pilot.act(obs)
        self.driven += 1
        if self.ticks is not None and self.driven >= self.ticks:
            self.active = False
        return action


class Rewinder:
    """An env built from a dataset's attributes that can be put in the state of any recorded frame."""

    def __init__(self, ds: Dataset, robot: str | None = None) -> None:
        self.ds = ds
        self.env = make_replay_env(ds.attrs, robot=robot)
        produced = set(self.env.observation_space.spaces) | set(FRAME_KEYS)
        missing = sorted(set(ds.keys) - produced)
        if missing:
            raise TeleopError(f"{ds.path} stores {', '.join(missing)}, which a correction cannot record")

    def check(self, episode: int, frame: int) -> None:
        if "sim_state" not in self.ds:
            raise TeleopError(f"rewind needs sim_state: {self.ds.path} was recorded without data/sim_state")
        check_frame(self.ds, episode, frame)

    def restore(self, episode: int, frame: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Put the env in the recorded state of (episode, frame); return its observation and info."""
        self.check(episode, frame)
        return restore(self.env, self.ds, episode, frame)

    def recorded(self, episode: int, frame: int) -> dict[str, np.ndarray]:
        """The recorded frame: observation keys, action, sim_state, ..."""
        index = self.ds.episode_slice(episode).start + frame
        return {key: self.ds[key][index] for key in self.ds.keys}

    def close(self) -> None:
        self.env.close()


@dataclass
class Take:
    """A finished correction, not yet written: its frames and what its episode records."""

    data: dict[str, np.ndarray]
    seed: int
    success: bool
    parent_episode: int
    parent_frame: int
    corrected_ticks: int
    look_seed: int | None = None  # the parent's, where `dataset relook` drew it


class CorrectionSession:
    """One correction: the restored env driven by ``corrector`` (then ``policy``, if any), tick by tick.

    ``before_tick(tick)`` runs before each tick (a headless script posts its key events there).
    The session ends when the episode does (success held, time limit) or, without a policy, when
    the corrector hands back. ``time_limit`` (seconds, 0: none) replaces what is left of the task's
    limit. With ``wait_for_input`` a device corrector's take starts at its first input: until then
    the sim stands still and nothing is timed or recorded.
    """

    def __init__(self, rewinder: Rewinder, episode: int, frame: int, corrector: Pilot, policy: Any = None,
                 ticks: int | None = None, success_hold: int = 10, realtime: bool = False,
                 before_tick: Callable[[int], None] | None = None, time_limit: float | None = None,
                 wait_for_input: bool = False) -> None:
        rewinder.check(episode, frame)
        self.rewinder = rewinder
        self.episode, self.frame = episode % rewinder.ds.num_episodes, frame
        self.hand_over = HandOver(corrector, ticks)
        self.policy = policy
        pilots: list[Pilot] = [self.hand_over, *([PolicyPilot(policy)] if policy is not None else [])]
        self.buffer = EpisodeBuffer()
        self.loop = ControlLoop(rewinder.env, pilots, writer=self.buffer, realtime=realtime, success_hold=success_hold,
                                time_limit=time_limit)
        self.wait_for_input = wait_for_input and hasattr(corrector, "touched")
        self.before_tick = before_tick
        self.seed = episode_seed(rewinder.ds, self.episode)
        self.loop.reset(self.seed)  # pilots and counters; the env is then put in the recorded state
        self.loop.obs, self.loop.info = rewinder.restore(self.episode, frame)
        if hasattr(corrector, "gripper"):  # a device starts from the gripper command in effect
            corrector.gripper = self._gripper_in_effect()
        self.stopped = False
        self._take: Take | None = None

    def _gripper_in_effect(self) -> float:
        if self.frame == 0:
            return 0.0
        return float(self.rewinder.recorded(self.episode, self.frame - 1)["action"][-1])

    @property
    def ended(self) -> bool:
        return self.stopped or self.loop.ended or (not self.hand_over.active and self.policy is None)

    @property
    def waiting(self) -> bool:
        """Whether the take waits for the corrector's first input (or hand-back) to start."""
        return self.wait_for_input and self.hand_over.active and not self.hand_over.pilot.touched

    @property
    def driver(self) -> str:
        return self.hand_over.kind if self.hand_over.active else "policy"

    def hand_back(self) -> None:
        """The corrector lets go: the policy drives on, or (without one) the take ends."""
        self.hand_over.active = False

    def step(self) -> None:
        if self.before_tick is not None:
            self.before_tick(self.loop.ticks)
        if not self.waiting:
            self.loop.step()

    def run(self) -> None:
        """Step until the session ends, holding the loop's rate."""
        self.loop.clock.start()
        while not self.ended:
            self.step()
            self.loop.clock.tick()

    def take(self) -> Take:
        """The recorded frames as a :class:`Take`, which ends the session (TeleopError if there are none)."""
        if self._take is None:
            if self.loop.ticks == 0:
                raise TeleopError("nothing recorded to save: the correction ran no ticks")
            index = self.buffer.save_episode(seed=self.seed, success=self.loop.success, source=Source.INTERVENTION)
            data = self.buffer.episodes[index].data
            ds = self.rewinder.ds
            self._take = Take({key: data[key].astype(ds.dtype(key), copy=False) for key in ds.keys}, self.seed,
                              self.loop.success, self.episode, self.frame, self.hand_over.driven,
                              int(look_seeds(ds)[self.episode]) if "look_seed" in ds.meta_names else None)
            self.stopped = True
        return self._take


def open_writer(ds: Dataset, out: str | os.PathLike[str] | None = None) -> EpisodeWriter:
    """The writer corrections of ``ds`` go to: ``out`` (created with the attributes of ``ds``) or ``ds`` itself."""
    if out is not None:
        check_dataset(out, EnvSpec.from_attrs(ds.attrs))
    return EpisodeWriter(out or ds.path, attrs=user_attrs(ds.attrs))


def write_takes(takes: Sequence[Take], writer: EpisodeWriter) -> list[int]:
    """Append ``takes`` as intervention episodes naming their parent episode and frame."""
    return [writer.add_episode(Episode(take.data, seed=take.seed, success=take.success, source=Source.INTERVENTION,
                                       meta={"parent_episode": take.parent_episode, "parent_frame": take.parent_frame,
                                             **({} if take.look_seed is None else {"look_seed": take.look_seed})}))
            for take in takes]


def make_corrector(source: str, env: ProtegeEnv, bindings: Any = None) -> Pilot:
    """The pilot a correction source names: a keyboard or gamepad device, or the scripted expert."""
    if source == "expert":
        from protege.sim.experts import make_expert

        return ExpertPilot(make_expert(env))
    if source not in SOURCES:
        raise TeleopError(f"unknown correction source {source!r} (choose from {', '.join(SOURCES)})")
    if env.controller.name != "ee_delta":
        raise TeleopError(f"{source} corrections need the ee_delta action space, "
                          f"this dataset uses {env.controller.name!r}")
    import pygame

    from protege.teleop.devices import load_bindings, make_device

    pygame.display.init()  # the event queue devices read from
    return make_device(source, bindings or load_bindings(), env.action_space.high[:6])


def _event_pump(device: Any, keys: Sequence[tuple[int, str, int]]) -> Callable[[int], None]:
    """Before each tick: post the scripted key events of that tick and feed the queue to ``device``."""
    import pygame

    from protege.teleop.scripted_input import ScriptedInput

    script = ScriptedInput()
    for tick, key, hold in keys:
        script.key(tick, key, hold=hold)
    pygame.event.clear()

    def pump(tick: int) -> None:
        script.post(tick)
        for event in pygame.event.get():
            device.handle(event)

    return pump


def run_script(path: str | os.PathLike[str], corrections: Sequence[Correction], out: str | None = None,
               policy: Any = None, robot: str | None = None, success_hold: int = 10,
               time_limit: float | None = None) -> dict[str, Any]:
    """Run scripted corrections on the dataset at ``path`` and write them to ``out`` (default: the same
    dataset); ``time_limit`` (seconds, 0: none) replaces what is left of the task's limit. Everything
    is checked and every take run before the first episode is written."""
    ds = Dataset(path)
    if "sim_state" not in ds:
        raise TeleopError(f"rewind needs sim_state: {ds.path} was recorded without data/sim_state; nothing written")
    for correction in corrections:
        check_frame(ds, correction.episode, correction.frame)
    if out is not None:
        check_dataset(out, EnvSpec.from_attrs(ds.attrs))
    rewinder = Rewinder(ds, robot=robot)
    try:
        correctors = [make_corrector(c.source, rewinder.env) for c in corrections]
        takes = []
        for correction, corrector in zip(corrections, correctors, strict=True):
            pump = _event_pump(corrector, correction.keys) if correction.source != "expert" else None
            session = CorrectionSession(rewinder, correction.episode, correction.frame, corrector, policy=policy,
                                        ticks=correction.ticks, success_hold=success_hold, before_tick=pump,
                                        time_limit=time_limit)
            session.run()
            takes.append(session.take())
    finally:
        rewinder.close()
    with open_writer(ds, out) as writer:
        indices = write_takes(takes, writer)
    return {
        "dataset": ds.path,
        "out": str(out or ds.path),
        "corrections": [
            {"episode": take.parent_episode, "frame": take.parent_frame, "source": c.source,
             "new_episode": index, "ticks": len(take.data["action"]), "corrected_ticks": take.corrected_ticks,
             "success": take.success}
            for c, take, index in zip(corrections, takes, indices, strict=True)
        ],
    }
