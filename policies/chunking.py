"""Running a chunked policy in time: when to ask for its next chunk of actions, and how a chunk that arrives
while the arm is moving takes over.

A chunk requested at tick t, from the observation of tick t, holds the actions for ticks t, t+1, ...,
t+H-1. It becomes usable ``delay`` ticks later. Headless evaluation fixes the delay in ticks
(:class:`FixedDelay`: the same figures on any machine and for any number of envs); windows measure it
(:class:`ThreadedInference`: the next chunk is computed in a worker thread while the arm runs the current
one). The strategies (Black et al. 2025, "Real-Time Execution of Action Chunking Flow Policies"):

- ``sync``: wait. The arm holds still until the chunk arrives, then runs it from its start.
- ``naive``: run the current chunk until the new one arrives, then switch, skipping the actions whose
  ticks have passed.
- ``ensemble``: every tick, a weighted average of what each arrived chunk says for it (ACT's temporal
  ensembling: weights exp(-coeff * i), i = 0 the oldest).
- ``rtc``: real-time chunking: the new chunk is asked to agree with the current one (its first ``delay``
  actions are the ones that will run before it arrives, and a decaying weight holds it near the rest of
  the overlap; :class:`Guide`), then switched to as in ``naive``.

One chunk is computed at a time: a new one is requested every max(n_action_steps, delay) ticks
(``sync``: once n_action_steps of the last one have run). Every strategy waits for an episode's first
chunk: the arm is at rest when an episode starts.
"""

from __future__ import annotations

import concurrent.futures
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from protege.policies.errors import PolicyError

STRATEGIES = ("sync", "naive", "ensemble", "rtc")


@dataclass(frozen=True)
class Guide:
    """What a new chunk should agree with: ``actions`` (n, A), the current chunk's actions from the request
    tick on, in dataset units; the first ``frozen`` of them run before the new chunk arrives."""

    actions: np.ndarray
    frozen: int

    def weights(self, horizon: int) -> np.ndarray:
        """(horizon,) weights of agreement: 1 on the frozen actions, then decaying exponentially to 0 at the
        end of the overlap, 0 beyond it (the soft mask of Black et al., eq. 5)."""
        n, d = min(len(self.actions), horizon), min(self.frozen, horizon)
        weights = np.zeros(horizon)
        weights[:d] = 1.0
        c = (n - np.arange(d, n)) / (n - d + 1)
        weights[d:n] = c * np.expm1(c) / math.expm1(1.0)
        return weights


Predict = Callable[[Any, Guide | None], np.ndarray]  # (observation window, guide) -> (H, A) chunk


@dataclass(frozen=True)
class Chunking:
    """How a chunked policy runs: a :data:`STRATEGIES` name, the delay in ticks from a chunk's request to its
    use (None: measured, in a window), and the temporal-ensembling coefficient."""

    strategy: str = "sync"
    delay: int | None = 0
    ensemble_coeff: float = 0.01

    def check(self, horizon: int, n_action_steps: int) -> None:
        """Refuse, in one line, a strategy or delay a policy that predicts ``horizon`` actions per call and runs
        ``n_action_steps`` of them cannot follow."""
        if self.strategy not in STRATEGIES:
            raise PolicyError(f"unknown chunking {self.strategy!r} (choose from {', '.join(STRATEGIES)})")
        if self.delay is not None and self.delay < 0:
            raise PolicyError(f"the inference delay must be >= 0 ticks, got {self.delay}")
        if self.strategy == "rtc" and horizon == 1:
            raise PolicyError("--chunking rtc needs a policy that predicts chunks; "
                              "this one predicts one action per call")
        most = max_delay(horizon, n_action_steps)
        if self.delay is not None and self.delay > most:
            raise PolicyError(f"an inference delay of {self.delay} ticks is longer than the chunk allows: {horizon} "
                              f"actions per chunk, {n_action_steps} run per request, leave room for at most {most}")


def max_delay(horizon: int, n_action_steps: int) -> int:
    """The longest delay at which the current chunk still covers every tick until the next one arrives:
    a chunk requested every max(n_action_steps, delay) ticks must last that long plus the delay."""
    return max((d for d in range(horizon) if max(n_action_steps, d) + d <= horizon), default=0)


class Inference(Protocol):
    """Computes requested chunks and says when each is usable."""

    delay: int  # the expected delay in ticks, for the guide and the request period

    def submit(self, window: Any, guide: Guide | None, tick: int) -> None: ...

    def ready(self, tick: int) -> np.ndarray | None:
        """The requested chunk if it is usable at ``tick`` (then forgotten), else None."""

    def wait(self) -> np.ndarray:
        """The requested chunk, waiting for it."""

    @property
    def pending(self) -> bool: ...


class FixedDelay:
    """Computes each chunk at once and releases it ``delay`` ticks after its request."""

    def __init__(self, predict: Predict, delay: int) -> None:
        self.predict, self.delay = predict, delay
        self._chunk: np.ndarray | None = None
        self._due = 0

    def submit(self, window: Any, guide: Guide | None, tick: int) -> None:
        self._chunk, self._due = self.predict(window, guide), tick + self.delay

    def ready(self, tick: int) -> np.ndarray | None:
        return self.wait() if self._chunk is not None and tick >= self._due else None

    def wait(self) -> np.ndarray:
        chunk, self._chunk = self._chunk, None
        assert chunk is not None, "no chunk was requested"
        return chunk

    @property
    def pending(self) -> bool:
        return self._chunk is not None


class ThreadedInference:
    """Computes each chunk in a worker thread while the control loop goes on; a chunk is usable at the first
    tick after it is done. The expected delay is the slowest of the last ``window`` predictions, in ticks
    of ``hz`` rounded up."""

    def __init__(self, predict: Predict, hz: float, window: int = 10) -> None:
        self.predict, self.hz = predict, hz
        self.seconds: deque[float] = deque(maxlen=window)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self._future: concurrent.futures.Future[np.ndarray] | None = None

    @property
    def delay(self) -> int:
        return math.ceil(max(self.seconds) * self.hz - 1e-9) if self.seconds else 0

    def _timed(self, window: Any, guide: Guide | None) -> np.ndarray:
        started = time.perf_counter()
        chunk = self.predict(window, guide)
        self.seconds.append(time.perf_counter() - started)
        return chunk

    def submit(self, window: Any, guide: Guide | None, tick: int) -> None:
        self._future = self._pool.submit(self._timed, window, guide)

    def ready(self, tick: int) -> np.ndarray | None:
        return self.wait() if self._future is not None and self._future.done() else None

    def wait(self) -> np.ndarray:
        future, self._future = self._future, None
        assert future is not None, "no chunk was requested"
        return future.result()

    @property
    def pending(self) -> bool:
        return self._future is not None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class ChunkExecutor:
    """One action per tick from a chunked policy's chunks, with a :class:`Chunking` strategy.

    ``idle`` maps the last action taken from a chunk to one that holds the arm still (``sync`` waits with it,
    and so does any strategy whose chunk runs out before the next arrives); without it that action repeats.
    """

    def __init__(self, inference: Inference, chunking: Chunking, horizon: int, n_action_steps: int,
                 idle: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        chunking.check(horizon, n_action_steps)
        self.inference, self.chunking = inference, chunking
        self.horizon, self.n_action_steps = horizon, n_action_steps
        self.idle = idle
        self.reset()

    def reset(self) -> None:
        if self.inference.pending:
            self.inference.wait()  # a chunk of the last episode: never used
        self.tick = 0
        self.chunks: deque[tuple[int, np.ndarray]] = deque()  # (tick of chunk[0], chunk); ensemble keeps several
        self.next_request = 0
        self.last: np.ndarray | None = None  # the last action taken from a chunk
        self._requested = 0
        self.chunk_starts: list[int] = []  # ticks at which a new chunk took over

    def step(self, window: Any) -> np.ndarray:
        """The action for this tick, given the observation window of this tick."""
        t = self.tick
        if not self.chunks:  # an episode's first chunk is waited for
            self._request(window, t)
            self._adopt(self.inference.wait(), t)
        for _ in range(2):  # a chunk that arrives now; then one requested now, if it is usable at once
            if (chunk := self.inference.ready(t)) is not None:
                self._adopt(chunk, t)
            if t < self.next_request or self.inference.pending:
                break
            self._request(window, t)
        action = self._action(t)
        self.tick += 1
        return action

    def _request(self, window: Any, t: int) -> None:
        guide = None
        if self.chunking.strategy == "rtc" and self.chunks:
            start, chunk = self.chunks[-1]
            guide = Guide(chunk[t - start:], self.inference.delay)
        self._requested = t
        self.inference.submit(window, guide, t)
        self.next_request = math.inf  # set when the chunk arrives (sync) or now
        if self.chunking.strategy != "sync":
            self.next_request = t + max(self.n_action_steps, self.inference.delay)

    def _adopt(self, chunk: np.ndarray, t: int) -> None:
        requested = self._requested
        if self.chunking.strategy == "sync":  # the arm waited: the chunk runs from its start
            self.chunks = deque([(t, chunk)])
            self.next_request = t + self.n_action_steps
        elif self.chunking.strategy == "ensemble":
            self.chunks.append((requested, chunk))
        else:
            self.chunks = deque([(requested, chunk)])
        self.chunk_starts.append(t)

    def _action(self, t: int) -> np.ndarray:
        if self.chunking.strategy == "ensemble":
            while len(self.chunks) > 1 and self.chunks[0][0] + len(self.chunks[0][1]) <= t:
                self.chunks.popleft()  # every action of it is past
            covering = [chunk[t - start] for start, chunk in self.chunks if t - start < len(chunk)]  # oldest first
            if covering:
                weights = np.exp(-self.chunking.ensemble_coeff * np.arange(len(covering)))
                self.last = (weights[:, None] * np.stack(covering)).sum(0) / weights.sum()
                return self.last.copy()
        start, chunk = self.chunks[-1]
        waiting = self.chunking.strategy == "sync" and self.inference.pending
        if waiting or t - start >= len(chunk):  # hold still until the next chunk
            assert self.last is not None
            return self.idle(self.last) if self.idle is not None else self.last.copy()
        self.last = chunk[t - start]
        return self.last.copy()
