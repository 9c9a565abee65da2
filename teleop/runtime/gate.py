"""A gated operator: a simulated person who watches a policy drive and steps in only when needed.

HG-DAgger's human, played by the scripted expert, on the same path as a person in the live window:
the frames it drives are marked ``intervention`` and record its actions, the hand-over re-anchors the
arm's command at its measured pose (``env.hold_pose()``), and its segments join DAgger's aggregate as
episodes of source ``intervention``. Only those frames are labelled: that is the operator's effort.

The operator watches for its gates (:data:`GATES`, any selection of them):

- ``deviation``: the policy's action departs from the operator's own by more than ``threshold`` in
  some dimension, in units of that dimension's largest step (1: a full step, or open against closed),
  for ``deviation_ticks`` ticks in a row;
- ``stall``: the task's dense reward has not risen by :data:`STALL_GAIN` for ``stall_ticks`` ticks;
- ``strike``: a disturbance moved the object or the arm;
- ``doubt``: the policy's own doubt (:attr:`PolicyPilot.doubt <protege.teleop.runtime.pilots.PolicyPilot.doubt>`,
  an ensemble's spread) passes ``doubt``: the robot asks for help at once (ThriftyDAgger, and the live
  window's ``--request-help``), without the operator comparing actions: on slot_push, at the default
  threshold, it finds 94-97% of the deviation gate's firings at precision 0.74-0.77 (three trained
  policies; docs/experiments.md).

Once a gate fires, the operator reacts after ``reaction_s`` seconds (the policy drives on meanwhile),
drives until the policy's proposals have stayed within ``threshold`` of its own for ``agree_ticks``
ticks in a row (it is back on the operator's path), and hands back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from protege.teleop.errors import TeleopError
from protege.teleop.runtime.loop import Arbiter, Decision
from protege.teleop.runtime.pilots import Pilot

if TYPE_CHECKING:
    from protege.sim.disturbances import Disturbance, Disturber
    from protege.sim.env import ProtegeEnv
    from protege.sim.spec import EnvSpec

GATES = ("deviation", "stall", "strike", "doubt")
DEFAULT_GATES = ("deviation", "stall", "strike")
STALL_GAIN = 0.01  # the dense reward's rise that counts as progress


@dataclass(frozen=True)
class GateConfig:
    """When the operator steps in and hands back; the defaults are a person's (README, Taking over)."""

    gates: tuple[str, ...] = DEFAULT_GATES
    threshold: float = 0.5
    doubt: float = 0.07  # slot_push, bench gate, three training seeds: recall 0.94-0.97 at precision 0.74-0.77
    deviation_ticks: int = 3
    stall_ticks: int = 40
    reaction_s: float = 0.3
    agree_ticks: int = 5

    def __post_init__(self) -> None:
        unknown = [g for g in self.gates if g not in GATES]
        if unknown or not self.gates:
            raise TeleopError(f"unknown gate {unknown[0]!r} (choose from {', '.join(GATES)})" if unknown
                              else f"give at least one gate ({', '.join(GATES)})")
        if not self.threshold > 0 or not self.doubt > 0:
            raise TeleopError(f"the gate thresholds must be > 0, got {self.threshold:g} and doubt {self.doubt:g}")
        if not 0 <= self.reaction_s <= 10:
            raise TeleopError(f"the reaction time must be in [0, 10] seconds, got {self.reaction_s:g}")
        for name in ("deviation_ticks", "stall_ticks", "agree_ticks"):
            if getattr(self, name) < 1:
                raise TeleopError(f"{name.replace('_', ' ')} must be at least 1, got {getattr(self, name)}")


def deviation(proposed: np.ndarray, reference: np.ndarray, scale: np.ndarray) -> float:
    """How far ``proposed`` departs from ``reference``: the largest difference of a dimension, in units of
    ``scale`` (the action space's largest step)."""
    return float(np.max(np.abs(proposed - reference) / scale))


class GatedArbiter(Arbiter):
    """Picks the operator (pilot 0, an expert) or the policy (pilot 1) each tick, by :class:`GateConfig`.

    ``takeovers`` counts this episode's take-overs; ``fired`` names the gate behind each (a gate that
    fires within the reaction time of the episode's end leads to no take-over).
    """

    def __init__(self, env: ProtegeEnv, config: GateConfig, disturber: Disturber | None = None) -> None:
        self.env = env
        self.config = config
        self.disturber = disturber
        self.scale = np.asarray(env.action_space.high, dtype=np.float64)
        self.reaction_ticks = round(config.reaction_s * env.control_hz)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self.driving = False
        self.fired: list[str] = []
        self._pending: str | None = None  # the gate that fired, until the operator takes over
        self._countdown = 0  # ticks until it does
        self._apart = self._agree = 0
        self._best, self._since_best = -np.inf, 0
        self._strikes = 0

    @property
    def takeovers(self) -> int:
        return len(self.fired)

    def choose(self, pilots: Sequence[Pilot], obs: dict[str, np.ndarray]) -> Decision:
        if len(pilots) != 2:
            raise TeleopError("a gated operator watches one policy: pilots are (operator, policy)")
        proposals = [pilot.act(obs) for pilot in pilots]
        operator, policy = (np.asarray(p, dtype=np.float64) for p in proposals)
        close = deviation(policy, operator, self.scale) <= self.config.threshold
        gate = self._gate(close, getattr(pilots[1], "doubt", None))
        if self.driving:
            self._agree = self._agree + 1 if close else 0
            if self._agree >= self.config.agree_ticks:  # back on the operator's path: hand back
                self.driving, self._agree, self._apart, self._since_best = False, 0, 0, 0
        elif self._pending is not None:
            self._countdown -= 1
        elif gate is not None:
            self._pending, self._countdown = gate, self.reaction_ticks
        if self._pending is not None and self._countdown <= 0:
            self.fired.append(self._pending)
            self.driving, self._pending, self._agree = True, None, 0
            self.env.hold_pose()  # a person's take-over starts from the arm's measured pose
        return Decision(operator if self.driving else policy, 0 if self.driving else 1, proposals)

    def _gate(self, close: bool, doubt: float | None) -> str | None:
        """The first selected gate that fires this tick (its counters advance every tick)."""
        self._apart = 0 if close else self._apart + 1
        reward = self.env.task.reward(self.env.data)
        if reward > self._best + STALL_GAIN:
            self._best, self._since_best = reward, 0
        else:
            self._since_best += 1
        strikes = len(self.disturber.applied) if self.disturber is not None else 0
        struck, self._strikes = strikes > self._strikes, strikes
        fires = {"deviation": self._apart >= self.config.deviation_ticks,
                 "stall": self._since_best >= self.config.stall_ticks and not self.env.task.is_success(self.env.data),
                 "strike": struck,
                 "doubt": doubt is not None and doubt > self.config.doubt}
        return next((g for g in self.config.gates if fires[g]), None)


def onsets(flags: Sequence[bool], ticks: int) -> list[int]:
    """The ticks at which a gate watching ``flags`` (one per tick) fires: the ``ticks``-th flagged tick in a
    row, once per run of flagged ticks."""
    fired, run = [], 0
    for tick, flag in enumerate(flags):
        run = run + 1 if flag else 0
        if run == ticks:
            fired.append(tick)
    return fired


def precision_recall(predicted: Sequence[int], actual: Sequence[int], window: int,
                     asking: Sequence[int] | None = None) -> tuple[float, float]:
    """How well ``predicted`` firings (ticks) find the ``actual`` ones: precision, the share of predicted
    firings with an actual one within ``window`` ticks; recall, the share of actual firings with a
    predicted one within ``window`` ticks (1.0 where there is nothing to find). Given ``asking``, the ticks at
    which the predicting gate's condition held, an actual firing is also found by one of those: a gate that
    has been asking for help since before the window found it too."""
    def near(tick: int, others: Sequence[int]) -> bool:
        return any(abs(tick - other) <= window for other in others)

    found = predicted if asking is None else asking
    precision = sum(near(t, actual) for t in predicted) / len(predicted) if predicted else 1.0
    recall = sum(near(t, found) for t in actual) / len(actual) if actual else 1.0
    return precision, recall


class Watcher(Arbiter):
    """Lets the policy (pilot 1) drive and records, each tick, how far it departs from the operator (pilot 0)
    and its doubt: what the deviation and doubt gates would see, over the same rollouts."""

    def __init__(self, scale: np.ndarray) -> None:
        self.scale = scale
        self.deviations: list[list[float]] = []
        self.doubts: list[list[float]] = []

    def reset(self, seed: int | None = None) -> None:
        self.deviations.append([])
        self.doubts.append([])

    def choose(self, pilots: Sequence[Pilot], obs: dict[str, np.ndarray]) -> Decision:
        proposals = [pilot.act(obs) for pilot in pilots]
        operator, policy = (np.asarray(p, dtype=np.float64) for p in proposals)
        doubt = getattr(pilots[1], "doubt", None)
        if doubt is None:
            raise TeleopError("the policy has no doubt to watch: train an mlp with --set members=5")
        self.deviations[-1].append(deviation(policy, operator, self.scale))
        self.doubts[-1].append(float(doubt))
        return Decision(policy, 1, proposals)


@dataclass(frozen=True)
class GateComparison:
    """The doubt gate at one threshold against the deviation gate, over the same rollouts."""

    doubt: float
    firings: int  # the doubt gate's
    deviation_firings: int
    precision: float
    recall: float


def compare_gates(watcher: Watcher, config: GateConfig, doubts: Sequence[float], window: int) -> list[GateComparison]:
    """The doubt gate at each threshold in ``doubts`` scored against ``config``'s deviation gate (the firings
    an operator comparing actions would make) in every episode ``watcher`` saw, matched within ``window`` ticks.

    Precision counts the doubt gate's firings (the first doubtful tick of each doubtful stretch) near a
    deviation firing. Recall counts the deviation firings near a doubtful tick: one inside a stretch where the
    policy has been asking for help for longer than the window was found (the live gate, ``--request-help``,
    has the person driving by then), not missed."""
    actual = [onsets([d > config.threshold for d in episode], config.deviation_ticks)
              for episode in watcher.deviations]
    rows = []
    for threshold in doubts:
        asking = [[d > threshold for d in episode] for episode in watcher.doubts]
        predicted = [onsets(flags, 1) for flags in asking]
        hits = [precision_recall(p, a, window, [t for t, flag in enumerate(flags) if flag])
                for p, a, flags in zip(predicted, actual, asking)]
        fired, truth = sum(map(len, predicted)), sum(map(len, actual))
        precision = sum(h[0] * len(p) for h, p in zip(hits, predicted)) / fired if fired else 1.0
        recall = sum(h[1] * len(a) for h, a in zip(hits, actual)) / truth if truth else 1.0
        rows.append(GateComparison(threshold, fired, truth, round(precision, 3), round(recall, 3)))
    return rows


def watch(spec: EnvSpec, make_policy: Callable[[], Any], episodes: int, seed: int,
          disturb: tuple[Disturbance, ...] = ()) -> Watcher:
    """Roll the policy out on seeds ``seed``, ``seed + 1``, ... with the scripted expert watching every tick
    (it never drives); the :class:`Watcher` holds what the deviation and doubt gates would have seen."""
    from protege.sim.disturbances import Disturber
    from protege.sim.experts import make_expert
    from protege.teleop.runtime.collect import make_env
    from protege.teleop.runtime.loop import ControlLoop
    from protege.teleop.runtime.pilots import ExpertPilot, PolicyPilot

    env = make_env(spec)
    watcher = Watcher(np.asarray(env.action_space.high, dtype=np.float64))
    loop = ControlLoop(env, [ExpertPilot(make_expert(env)), PolicyPilot(make_policy())], arbiter=watcher,
                       realtime=False, disturber=Disturber(disturb) if disturb else None)
    for k in range(episodes):
        loop.run_episode(seed + k)
    env.close()
    return watcher
