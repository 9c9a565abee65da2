"""Policy rollouts: seeded episodes in parallel worker processes, summarised with a 95% interval.

The policy drives the control loop headlessly. A worker is a plain function of (spec, seeds) that
builds its env and its policy once per process (each spawned process owns its GL context, so
rendering in parallel is safe); with ``ray`` Ray actors run the same workers
(:mod:`protege.teleop.runtime.ray_pool`). Episode k runs with seed ``seed + k`` whichever worker gets it, and
results come back in seed order: the numbers do not depend on the number or kind of workers.

For DAgger, ``expert_beta`` adds the scripted expert: it labels every visited state (the recorded
``action`` is its action) and drives each tick with probability ``beta``. For HG-DAgger, ``gate``
adds a gated operator instead (:mod:`protege.teleop.runtime.gate`): it steps in when its gates fire
and only the frames it drives are marked. ``disturb`` applies seeded disturbances
(:mod:`protege.sim.disturbances`) to every episode.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from protege.datasets import Episode, EpisodeBuffer, EpisodeWriter
from protege.datasets.video import open_mp4
from protege.sim.disturbances import Disturber, describe
from protege.teleop.errors import TeleopError
from protege.teleop.runtime import ray_pool
from protege.teleop.runtime.collect import make_env
from protege.teleop.runtime.gate import GateConfig, GatedArbiter
from protege.teleop.runtime.loop import ControlLoop, check_dataset
from protege.teleop.runtime.pilots import ExpertPilot, MixturePilot, Pilot, PolicyPilot
from protege.teleop.runtime.workers import worker_pool

if TYPE_CHECKING:
    from protege.sim.disturbances import Disturbance
    from protege.sim.spec import EnvSpec


@dataclass(frozen=True)
class RolloutSpec:
    """What every worker needs; picklable, so it travels to spawned processes.

    ``env`` is the env's spec; ``make_policy`` a
    module-level function (or ``functools.partial`` of one) returning an object with ``reset()`` and
    ``act(obs)``. Videos show ``video_camera`` at ``video_size`` pixels for the first ``videos``
    episodes of a run.
    """

    env: EnvSpec
    make_policy: Callable[[], Any]
    success_hold: int = 10
    record: bool = False
    video_dir: str | None = None
    videos: int = 0
    video_camera: str = "front"
    video_size: int = 256
    expert_beta: float | None = None  # None: no expert; else DAgger labelling with this mixture
    # With expert_beta: the expert also takes over for good at a tick drawn from the first half of the time limit.
    expert_handover: bool = False
    disturb: tuple[Disturbance, ...] = ()
    gate: GateConfig | None = None  # a gated operator (the scripted expert) watches and steps in when needed


@dataclass
class EpisodeOutcome:
    seed: int
    success: bool
    length: int
    ret: float
    expert_ticks: int  # ticks the expert drove (DAgger mixture, or the gated operator)
    strikes: int = 0  # disturbances that moved the object or the arm
    takeovers: int = 0  # times the gated operator took over
    chunk_starts: tuple[int, ...] = ()  # ticks at which a chunked policy's new chunk took over
    video: str | None = None
    episode: Episode | None = None  # the recorded episode when the spec records


@dataclass(frozen=True)
class RolloutSummary:
    """The figures a rollout reports: success rate with its Wilson 95% interval, lengths, returns, speed,
    and the disturbances (their specification and how many strikes moved something)."""

    episodes: int
    successes: int
    success_rate: float
    ci95: tuple[float, float]
    mean_length: float
    mean_return: float
    disturb: str  # the disturbances' specification ("": none)
    strikes: int
    seed: int  # the first episode's; episode k ran with seed + k
    envs: int
    seconds: float
    episodes_per_min: float
    lengths: tuple[int, ...]
    success: tuple[bool, ...]
    returns: tuple[float, ...]
    videos: tuple[str, ...]

    @classmethod
    def of(cls, episodes: list[EpisodeOutcome], seed: int, envs: int, seconds: float,
           disturb: str = "") -> RolloutSummary:
        n = len(episodes)
        successes = sum(e.success for e in episodes)
        low, high = wilson_interval(successes, n)
        return cls(
            episodes=n,
            successes=successes,
            success_rate=round(successes / n, 4) if n else 0.0,
            ci95=(round(low, 4), round(high, 4)),
            mean_length=round(float(np.mean([e.length for e in episodes])), 2) if n else 0.0,
            mean_return=round(float(np.mean([e.ret for e in episodes])), 4) if n else 0.0,
            disturb=disturb,
            strikes=sum(e.strikes for e in episodes),
            seed=seed,
            envs=envs,
            seconds=round(seconds, 2),
            episodes_per_min=round(60.0 * n / seconds, 2) if seconds > 0 else 0.0,
            lengths=tuple(e.length for e in episodes),
            success=tuple(e.success for e in episodes),
            returns=tuple(round(e.ret, 4) for e in episodes),
            videos=tuple(e.video for e in episodes if e.video),
        )

    def line(self, task: str) -> str:
        """One line for a person: "<task> [under <disturbances> (n strikes)]: k/n successful (p%, 95% CI ...)"."""
        low, high = self.ci95
        under = f" under {self.disturb} ({self.strikes} strikes)" if self.disturb else ""
        return (f"{task}{under}: {self.successes}/{self.episodes} successful ({100 * self.success_rate:.1f}%, "
                f"95% CI {100 * low:.1f}-{100 * high:.1f}%), mean length {self.mean_length}, "
                f"{self.episodes_per_min} episodes/min with {self.envs} env(s)")


@dataclass
class RolloutResult:
    episodes: list[EpisodeOutcome]
    seed: int
    envs: int
    seconds: float
    disturb: str = ""  # the disturbances' specification ("": none)

    @property
    def summary(self) -> RolloutSummary:
        return RolloutSummary.of(self.episodes, self.seed, self.envs, self.seconds, self.disturb)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% by default); sensible at 0 and n."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


class _Worker:
    """One process's env, policy, control loop and (lazily) video renderer."""

    def __init__(self, spec: RolloutSpec) -> None:
        self.spec = spec
        self.env = make_env(spec.env)
        self.policy = PolicyPilot(spec.make_policy())
        pilots: list[Pilot] = [self.policy]
        labeller = None
        disturber = Disturber(spec.disturb) if spec.disturb else None
        self.gated: GatedArbiter | None = None
        if spec.gate is not None:  # the operator drives when its gates say so; only its frames are labelled
            pilots.insert(0, self._expert())
            self.gated = GatedArbiter(self.env, spec.gate, disturber)
        elif spec.expert_beta is not None:  # the expert labels every frame and drives in the mixture
            labeller = self._expert()
            handover = self.env.unwrapped.max_steps // 2 if spec.expert_handover else None
            pilots.insert(0, MixturePilot(labeller, spec.expert_beta, handover))
        self.buffer = EpisodeBuffer() if spec.record else None
        self.loop = ControlLoop(self.env, pilots, arbiter=self.gated, writer=self.buffer, realtime=False,
                                success_hold=spec.success_hold, labeller=labeller, disturber=disturber)
        self._renderer: Any = None

    def close(self) -> None:
        self.env.close()
        if self._renderer is not None:
            self._renderer.close()

    def run(self, index: int, seed: int) -> EpisodeOutcome:
        loop, spec = self.loop, self.spec
        loop.reset(seed)
        frames: list[np.ndarray] | None = [] if spec.video_dir and index < spec.videos else None
        ret, expert_ticks = 0.0, 0
        while not loop.ended:
            if frames is not None:
                frames.append(self._frame())
            step = loop.step()
            ret += step.reward
            expert_ticks += loop.pilots[step.driver].kind != "policy"
        video = None
        if frames is not None:
            frames.append(self._frame())
            video = self._write_video(frames, Path(spec.video_dir or ".") / f"episode_{seed}.mp4")
        episode = None
        if self.buffer is not None:
            loop.save()
            episode = self.buffer.episodes.pop()
        takeovers = self.gated.takeovers if self.gated is not None else 0
        return EpisodeOutcome(seed, loop.success, loop.ticks, ret, expert_ticks, len(loop.struck), takeovers,
                              self.policy.chunk_starts, video, episode)

    def _expert(self) -> ExpertPilot:
        """The scripted expert, noise-free; stateless, so one pilot can both label and drive."""
        from protege.sim.experts import make_expert

        return ExpertPilot(make_expert(self.env, noise=0.0))

    def _frame(self) -> np.ndarray:
        if self._renderer is None:
            from protege.sim.render import CameraRenderer

            size = self.spec.video_size
            self._renderer = CameraRenderer(self.env.model, [self.spec.video_camera], size, size)
        env = getattr(self.env, "unwrapped", self.env)
        return self._renderer.render(env.data, env.decor)[self.spec.video_camera]  # distractors included

    def _write_video(self, frames: list[np.ndarray], path: Path) -> str:
        height, width = frames[0].shape[:2]
        writer = open_mp4(path, self.env.control_hz, width, height)
        for frame in frames:
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
        writer.release()
        return str(path)


_worker: _Worker | None = None  # the worker of this process (set by the pool's initializer)


def _init_worker(spec: RolloutSpec) -> None:
    global _worker
    _worker = _Worker(spec)


def _run_in_worker(index: int, seed: int) -> EpisodeOutcome:
    assert _worker is not None, "rollout worker used before its initializer ran"
    return _worker.run(index, seed)


def _warm_worker(spec: RolloutSpec) -> Callable[[int, int], EpisodeOutcome]:
    return _Worker(spec).run


def _outcomes(spec: RolloutSpec, seeds: list[int], envs: int, ray: str | None = None) -> Iterator[EpisodeOutcome]:
    """Outcomes in seed order, from ``envs`` spawned processes (or this one if 1), or Ray actors at ``ray``."""
    if ray is not None:
        yield from ray_pool.ordered_map(functools.partial(_warm_worker, spec), list(enumerate(seeds)), envs, ray)
        return
    if envs == 1:
        worker = _Worker(spec)
        try:
            for index, seed in enumerate(seeds):
                yield worker.run(index, seed)
        finally:  # its GL contexts go while this thread can still make them current
            worker.close()
        return
    with worker_pool(envs, initializer=_init_worker, initargs=(spec,)) as pool:
        yield from pool.map(_run_in_worker, range(len(seeds)), seeds)


def run_rollouts(
    spec: RolloutSpec,
    episodes: int,
    seed: int = 0,
    envs: int = 1,
    record_to: str | None = None,
    progress: bool = True,
    ray: str | None = None,
) -> RolloutResult:
    """Roll out ``episodes`` seeded episodes (seeds ``seed``, ``seed + 1``, ...) on ``envs`` processes,
    or as many Ray actors with ``ray`` (an address or ``local``).

    With ``record_to`` every episode is appended to that dataset in seed order (the spec must record).
    """
    if episodes < 1 or envs < 1:
        raise TeleopError(f"episodes and envs must be at least 1, got episodes={episodes}, envs={envs}")
    if record_to is not None and not spec.record:
        raise TeleopError("record_to needs a spec with record=True")
    writer = None
    if record_to is not None:
        attrs = spec.env.to_attrs()
        check_dataset(record_to, spec.env)
        writer = EpisodeWriter(record_to, attrs=attrs, background=True)
    started = time.perf_counter()
    outcomes: list[EpisodeOutcome] = []
    bar = tqdm(total=episodes, unit="ep", desc=f"rollout {spec.env.task}", disable=not progress)
    try:
        for outcome in _outcomes(spec, list(range(seed, seed + episodes)), min(envs, episodes), ray):
            if writer is not None and outcome.episode is not None:
                writer.add_episode(outcome.episode)
                outcome.episode = None  # written: do not keep the frames
            outcomes.append(outcome)
            bar.update(1)
            bar.set_postfix(success=f"{sum(o.success for o in outcomes)}/{len(outcomes)}")
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    seconds = time.perf_counter() - started
    return RolloutResult(outcomes, seed, envs, seconds, describe(spec.disturb))
