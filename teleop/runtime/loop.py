"""The one control loop behind recording, rollout, intervention and scripted collection.

Each tick the :class:`Arbiter` asks every pilot for an action and picks who drives, the env steps,
and the frame (observation, action, who drove, measured timestamp, sim state) goes to the writer.
A :class:`Clock` holds the rate: it sleeps to each deadline and counts the ticks whose work ran
past theirs; timestamps are measured, never nominal.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from protege.teleop.errors import TeleopError
from protege.teleop.runtime.pilots import Pilot

if TYPE_CHECKING:
    from protege.datasets import Source
    from protege.sim.disturbances import Disturber, Strike
    from protege.sim.env import ProtegeEnv
    from protege.sim.spec import EnvSpec

_SPIN_S = 0.0015  # the last stretch before a deadline is busy-waited: sleep() overshoots by ~0.1-1 ms


class FrameSink(Protocol):
    """Where frames go: an :class:`~protege.datasets.EpisodeWriter` or an in-memory buffer."""

    def add_frame(self, frame: dict[str, Any]) -> None: ...

    def save_episode(self, seed: int, success: bool, source: Source, **extra_meta: Any) -> int: ...

    def discard_episode(self) -> None: ...


def percentiles_ms(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    p50, p90, p99 = np.percentile(np.asarray(values) * 1e3, [50, 90, 99])
    return {"p50": round(float(p50), 3), "p90": round(float(p90), 3), "p99": round(float(p99), 3),
            "max": round(max(values) * 1e3, 3)}


class Clock:
    """Fixed-rate ticks on ``perf_counter``.

    Call :meth:`start` before the first tick and :meth:`tick` at the end of each tick's work. A tick
    whose work ends after its deadline is late; the schedule then restarts from now instead of
    bursting to catch up. With ``realtime=False`` nothing sleeps (as fast as possible).
    """

    def __init__(self, rate_hz: float, realtime: bool = True) -> None:
        if rate_hz <= 0:
            raise TeleopError(f"loop rate must be positive, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.period = 1.0 / self.rate_hz
        self.realtime = realtime
        self.start()

    def start(self) -> None:
        """Begin a new measurement window; the first tick starts now."""
        self._origin = self._tick_start = time.perf_counter()
        self._deadline = self._origin + self.period
        self.work: list[float] = []  # seconds of work per tick
        self.starts: list[float] = []  # tick start times, seconds since start()
        self.late = 0

    def elapsed(self) -> float:
        return time.perf_counter() - self._origin

    def tick(self) -> None:
        """End the current tick: record its work time, sleep to the next deadline."""
        now = time.perf_counter()
        self.work.append(now - self._tick_start)
        self.starts.append(self._tick_start - self._origin)
        if self.realtime:
            if now > self._deadline:
                self.late += 1
                self._deadline = now
            else:
                _sleep_until(self._deadline)
            self._deadline += self.period
        self._tick_start = time.perf_counter()

    def stats(self) -> dict[str, Any]:
        """Ticks, late ticks, work-time and period percentiles (ms) and the achieved rate."""
        n = len(self.work)
        span = self.starts[-1] + self.work[-1] if n else 0.0
        periods = np.diff(self.starts).tolist() if n > 1 else []
        return {
            "ticks": n,
            "late_ticks": self.late,
            "on_time": round(1.0 - self.late / n, 4) if n else 1.0,
            "target_hz": self.rate_hz,
            "achieved_hz": round((n - 1) / self.starts[-1], 3) if n > 1 and self.starts[-1] > 0 else 0.0,
            "tick_ms": percentiles_ms(self.work),
            "period_ms": percentiles_ms(periods),
            "duration_s": round(span, 3),
        }


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.perf_counter()
    if remaining > _SPIN_S:
        time.sleep(remaining - _SPIN_S)
    while time.perf_counter() < deadline:
        pass


@dataclass
class Decision:
    action: np.ndarray
    driver: int  # index of the pilot that drives
    proposals: list[np.ndarray | None]  # what every pilot proposed this tick


class Arbiter:
    """Pilots are listed by priority: the first one with an action drives (e.g. a human over a policy).

    Every pilot is asked every tick, so stateful policies and labelling experts see every observation.
    """

    def reset(self, seed: int | None = None) -> None:
        """A new episode starts (an arbiter with state of its own, e.g. a gated operator's, starts afresh)."""

    def choose(self, pilots: Sequence[Pilot], obs: dict[str, np.ndarray]) -> Decision:
        proposals = [pilot.act(obs) for pilot in pilots]
        for i, action in enumerate(proposals):
            if action is not None:
                return Decision(np.asarray(action, dtype=np.float64), i, proposals)
        raise TeleopError("no pilot proposed an action this tick")


@dataclass
class Step:
    action: np.ndarray
    driver: int
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]


@dataclass
class EpisodeResult:
    seed: int
    ticks: int
    success: bool
    source: Source
    timing: dict[str, Any] = field(default_factory=dict)


def episode_source(kinds: set[str]) -> Source:
    """Who an episode came from, given the kinds of pilot that drove its frames."""
    from protege.datasets import Source  # here: the loop's module stays light for the command line's parsers

    if "policy" in kinds:
        return Source.INTERVENTION if kinds - {"policy"} else Source.POLICY
    return Source.HUMAN if "human" in kinds else Source.EXPERT


class ControlLoop:
    """Drive ``env`` with ``pilots`` at ``rate_hz`` (default: the env's control rate).

    ``success_hold`` ends an episode once the task's success has held that many ticks (0: never,
    the episode runs to termination or the time limit). ``time_limit`` (seconds of episode time, 0:
    none) replaces the task's limit, as a person's (:func:`person_time_limit`); None keeps the task's,
    at which the env truncates the episode (scripted collection, evaluation). Frames go to ``writer`` if given; saving
    or discarding them is the caller's choice (:meth:`save`, ``writer.discard_episode()``).
    A ``labeller`` (DAgger's expert) is asked every tick without driving: each frame then records
    its action for the observation as ``action``, whoever drove. A ``disturber``
    (:mod:`protege.sim.disturbances`) delays actions, strikes the scene and adds observation noise;
    the pilots and the recorded frames see the disturbed observations, ``sim_state`` the true state.
    """

    def __init__(
        self,
        env: ProtegeEnv,
        pilots: Sequence[Pilot],
        arbiter: Arbiter | None = None,
        writer: FrameSink | None = None,
        rate_hz: float | None = None,
        realtime: bool = True,
        success_hold: int = 10,
        labeller: Pilot | None = None,
        time_limit: float | None = None,
        disturber: Disturber | None = None,
    ) -> None:
        if not pilots:
            raise TeleopError("the control loop needs at least one pilot")
        if time_limit is not None and time_limit < 0:
            raise TeleopError(f"the time limit must be >= 0 seconds (0: none), got {time_limit:g}")
        self.env = env
        self.pilots = list(pilots)
        self.arbiter = arbiter or Arbiter()
        self.writer = writer
        self.clock = Clock(rate_hz or env.control_hz, realtime)
        self.success_hold = success_hold
        self.labeller = labeller
        self.limit_ticks = None if time_limit is None else round(time_limit * self.clock.rate_hz)  # 0: none
        self.disturber = disturber
        self.seed = 0
        self.obs: dict[str, np.ndarray] = {}
        self.info: dict[str, Any] = {}

    def reset(self, seed: int) -> dict[str, np.ndarray]:
        """Start an episode from ``seed``: reset the env and every pilot. The episode clock starts
        with the first :meth:`step`."""
        self.seed = seed
        self.obs, self.info = self.env.reset(seed=seed)
        if self.disturber is not None:
            self.disturber.reset(self.env, seed)
            if self.disturber.visual:  # the episode's first images show its look
                self.obs, self.info = getattr(self.env, "unwrapped", self.env).observe()
            self.obs = self.disturber.observe(self.obs)
        for pilot in self._all_pilots():
            pilot.reset(seed=seed)
        self.arbiter.reset(seed=seed)
        self.ticks = 0
        self.success_ticks = 0
        self.ended = False
        self.timestamp = 0.0  # of the last frame
        self._kinds: set[str] = set()
        self._t0: float | None = None
        return self.obs

    def skip_time(self, seconds: float) -> None:
        """Leave ``seconds`` (a pause) out of the episode's wall-clock timestamps."""
        if self._t0 is not None and self.clock.realtime:
            self._t0 += seconds

    def _all_pilots(self) -> list[Pilot]:
        return self.pilots if self.labeller is None else [*self.pilots, self.labeller]

    def _timestamp(self) -> float:
        """Seconds since the episode's first tick: wall clock when realtime, else simulated time."""
        now = time.perf_counter() if self.clock.realtime else float(self.env.data.time)
        if self._t0 is None:
            self._t0 = now
        return now - self._t0

    def step(self) -> Step:
        """One tick: arbitrate, record the frame, step the env."""
        timestamp = self.timestamp = self._timestamp()
        decision = self.arbiter.choose(self.pilots, self.obs)
        kind = self.pilots[decision.driver].kind
        if self.writer is not None:
            label = decision.action if self.labeller is None else self.labeller.act(self.obs)
            self.writer.add_frame({
                **self.obs,
                "action": label,
                "timestamp": timestamp,
                "intervention": np.uint8(kind != "policy"),
                "sim_state": self.env.get_state(),
            })
        self._kinds.add(kind)
        action = decision.action if self.disturber is None else self.disturber.delay(decision.action)
        self.obs, reward, terminated, truncated, self.info = self.env.step(action)
        self.ticks += 1
        if self.disturber is not None:
            if self.disturber.strike(self.env, self.ticks):
                self.obs, self.info = self.env.observe()
            self.obs = self.disturber.observe(self.obs)
        self.success_ticks = self.success_ticks + 1 if self.info["success"] else 0
        held = self.success_hold > 0 and self.success_ticks >= self.success_hold
        if self.limit_ticks is not None:  # the person's limit replaces the task's
            truncated = bool(self.limit_ticks) and self.ticks >= self.limit_ticks
        self.ended = bool(terminated or truncated or held)
        return Step(decision.action, decision.driver, float(reward), bool(terminated), bool(truncated), self.info)

    @property
    def time_left(self) -> float | None:
        """Seconds of episode time left before the person's limit (None: none, or the task's)."""
        return (self.limit_ticks - self.ticks) / self.clock.rate_hz if self.limit_ticks else None

    @property
    def success(self) -> bool:
        return bool(self.info.get("success", False))

    @property
    def struck(self) -> list[Strike]:
        """The disturber's strikes that moved something in this episode, in order (none without one)."""
        return self.disturber.applied if self.disturber is not None else []

    @property
    def source(self) -> Source:
        return episode_source(self._kinds)

    def save(self, **extra_meta: Any) -> int:
        """Save the recorded frames as an episode with this loop's seed, success and source."""
        if self.writer is None:
            raise TeleopError("this control loop has no episode writer to save to")
        return self.writer.save_episode(seed=self.seed, success=self.success, source=self.source, **extra_meta)

    def run_episode(self, seed: int, max_ticks: int | None = None) -> EpisodeResult:
        """Reset and step until the episode ends (or ``max_ticks``), holding the rate."""
        self.reset(seed)
        self.clock.start()
        while not self.ended and (max_ticks is None or self.ticks < max_ticks):
            self.step()
            self.clock.tick()
        return EpisodeResult(seed, self.ticks, self.success, self.source, self.clock.stats())


PERSON_TIME_FACTOR = 5  # a person's default time limit, in task time limits


def person_time_limit(env: ProtegeEnv, given: float | None) -> float:
    """The time limit (seconds, 0: none) a person gets: ``given``, else :data:`PERSON_TIME_FACTOR`
    times the task's (lift: 40 s); a negative one is refused."""
    if given is not None and given < 0:
        raise TeleopError(f"--time-limit must be >= 0 seconds (0: none), got {given:g}")
    return PERSON_TIME_FACTOR * float(env.task.time_limit) if given is None else float(given)


def check_dataset(path: str | os.PathLike[str], spec: EnvSpec) -> None:
    """Refuse an existing dataset recorded in another env than ``spec`` (its cameras and image size
    included: :func:`~protege.sim.spec.check_compatible`) before any work is done."""
    from protege.datasets import Dataset, DatasetError
    from protege.sim.spec import EnvSpec, check_compatible

    if not os.path.exists(path):
        return
    try:
        stored = Dataset(path).attrs
    except DatasetError:
        return  # not a dataset: the writer says why
    check_compatible(EnvSpec.from_attrs(stored), spec, f"{path} holds episodes of", images=True)


def first_seed(path: str | os.PathLike[str] | None, given: int | None, start: int = 0) -> int:
    """The given seed, else one past the largest seed already stored at ``path`` and at least ``start``:
    appending to a dataset never repeats a seed."""
    from protege.datasets import Dataset, DatasetError

    if given is not None:
        return given
    try:
        seeds = Dataset(path).meta("seed") if path is not None else np.zeros(0, np.int64)
    except DatasetError:
        return start
    return max(start, int(seeds.max()) + 1) if len(seeds) else start
