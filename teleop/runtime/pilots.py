"""Pilots: whoever can drive the arm. The control loop asks each one every tick.

A pilot's ``kind`` says who it is (``human``, ``expert`` or ``policy``): frames driven by anyone
but a policy are marked ``intervention`` = 1, and the mix of drivers sets an episode's source.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Pilot(Protocol):
    kind: str

    def reset(self, seed: int | None = None) -> None:
        """A new episode starts (``seed`` is the episode's, for pilots with their own randomness)."""

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        """The action this pilot proposes for ``obs``, or None when it does not want to drive."""


class ExpertPilot:
    """A scripted expert (``protege.sim.experts``); its noise is reseeded with each episode's seed."""

    kind = "expert"

    def __init__(self, expert: Any) -> None:
        self.expert = expert

    def reset(self, seed: int | None = None) -> None:
        self.expert.reset(seed=seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        return np.asarray(self.expert.act(obs), dtype=np.float64)


class PolicyPilot:
    """Any policy object with ``reset(seed)`` and ``act(obs)`` (no torch needed here); each episode's seed seeds
    the policy's own randomness, so a rollout is the same on any worker."""

    kind = "policy"

    def __init__(self, policy: Any) -> None:
        self.policy = policy

    def reset(self, seed: int | None = None) -> None:
        self.policy.reset(seed=seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        action = self.policy.act(obs)
        return None if action is None else np.asarray(action, dtype=np.float64)

    @property
    def doubt(self) -> float | None:
        """The policy's own uncertainty about its last action, where it has one (e.g. an ensemble's spread)."""
        doubt = getattr(self.policy, "doubt", None)
        return None if doubt is None else float(doubt)

    @property
    def chunk_starts(self) -> tuple[int, ...]:
        """Ticks of this episode at which a new chunk of actions took over, where the policy runs chunks."""
        return tuple(getattr(self.policy, "chunk_starts", ()))


class MixturePilot:
    """Lets ``pilot`` drive each tick with probability ``beta`` (DAgger's beta mixture), else proposes None.

    With ``handover`` (ticks), it also drives every tick from one drawn uniformly from [0, handover) on:
    whoever drives otherwise rolls in, ``pilot`` rolls out. The draws are reseeded with each episode's
    seed, so a mixed rollout is reproducible.
    """

    def __init__(self, pilot: Pilot, beta: float, handover: int | None = None) -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        if handover is not None and handover < 1:
            raise ValueError(f"handover must be at least 1 tick, got {handover}")
        self.pilot = pilot
        self.beta = beta
        self.handover = handover
        self.kind = pilot.kind
        self._rng = np.random.default_rng()
        self._takes_over: int | None = None  # drawn per episode by reset()
        self._tick = 0

    def reset(self, seed: int | None = None) -> None:
        self.pilot.reset(seed=seed)
        self._rng = np.random.default_rng(None if seed is None else [seed, 0xB37A])
        self._takes_over = int(self._rng.integers(self.handover)) if self.handover else None
        self._tick = 0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray | None:
        handed_over = self._takes_over is not None and self._tick >= self._takes_over
        self._tick += 1
        return self.pilot.act(obs) if handed_over or self._rng.random() < self.beta else None
