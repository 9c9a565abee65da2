"""Batches for training: a prefetch thread over the dataset sampler (CPU), or windows gathered on the GPU.

Both loaders draw window indices with replacement from their own seeded generator, uniformly or with
the probabilities of :func:`correction_weights`, and return dicts of tensors on the training device,
shaped like ``SequenceSampler.sample``. Under data-parallel training every rank draws the same global
batch of ``batch_size x world_size`` indices from the same seed and keeps slice ``rank`` of it.
``wait_s`` accumulates the time the training loop spent blocked on data.
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np
import torch

from protege.datasets import Dataset, SequenceSampler
from protege.datasets.schema import Source
from protege.policies.base import Batch
from protege.policies.errors import PolicyError

ON_POLICY_SOURCES = (Source.POLICY, Source.INTERVENTION)


def correction_weights(ds: Dataset, episodes: np.ndarray, share: float | None) -> np.ndarray | None:
    """Sampling probability of each window of ``episodes`` (in sampler order) that gives the frames of
    episodes recorded while a policy ran ``share`` of every batch, demonstrations the rest (None: uniform)."""
    if share is None:
        return None
    if not 0.0 < share < 1.0:
        raise PolicyError(f"correction_share must be in (0, 1), got {share}")
    lengths = ds.episode_ends[episodes] - ds.episode_starts[episodes]
    on_policy = np.repeat(np.isin(ds.meta("source")[episodes], ON_POLICY_SOURCES), lengths)
    corrections, demos = int(on_policy.sum()), int((~on_policy).sum())
    if corrections == 0 or demos == 0:
        raise PolicyError(f"correction_share needs both demonstrations and policy rollouts or interventions to "
                          f"train on; {ds.path} has {demos} and {corrections} frames of them")
    return np.where(on_policy, share / corrections, (1.0 - share) / demos)


class PrefetchLoader:
    """A daemon thread samples and converts the next batches while the model trains on the current one."""

    def __init__(
        self, sampler: SequenceSampler, batch_size: int, seed: int, device: torch.device, depth: int = 4,
        weights: np.ndarray | None = None, rank: int = 0, world_size: int = 1,
    ) -> None:
        self.sampler, self.batch_size, self.device = sampler, batch_size, device
        self._slice = slice(rank * batch_size, (rank + 1) * batch_size)
        self._draw = batch_size * world_size
        self._cdf = None if weights is None else np.cumsum(weights)  # weighted draws by bisection
        self.rng = np.random.default_rng(seed)
        self.wait_s = 0.0
        self._queue: queue.Queue[Batch | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True, name="protege-prefetch")
        self._thread.start()

    def _work(self) -> None:
        pin = self.device.type == "cuda"
        try:
            while not self._stop.is_set():
                if self._cdf is None:
                    idx = self.rng.integers(0, len(self.sampler), self._draw)[self._slice]
                else:
                    u = self.rng.random(self._draw)[self._slice] * self._cdf[-1]
                    idx = np.minimum(np.searchsorted(self._cdf, u, side="right"), len(self.sampler) - 1)
                batch = {k: torch.from_numpy(v) for k, v in self.sampler.sample(idx).items()}
                if pin:
                    batch = {k: v.pin_memory() for k, v in batch.items()}
                while not self._stop.is_set():
                    try:
                        self._queue.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # surfaced in the training loop
            self._queue.put(exc)

    def next(self) -> Batch:
        start = time.perf_counter()
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        batch = {k: v.to(self.device, non_blocking=True) for k, v in item.items()}
        self.wait_s += time.perf_counter() - start
        return batch

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _upload(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """Move a whole array to the device; floats as float32 (the models' input precision)."""
    tensor = torch.from_numpy(array)
    return tensor.to(device, torch.float32 if tensor.is_floating_point() else None)


class DeviceLoader:
    """The selected keys live on the device once; each batch is one index gather per key there.

    Same windows as ``SequenceSampler``: observations t-n_obs_steps+1..t and actions t..t+horizon-1,
    clipped to the episode, with ``action_is_pad`` past its end.
    """

    def __init__(
        self,
        ds: Dataset,
        obs_keys: list[str],
        n_obs_steps: int,
        horizon: int,
        episodes: np.ndarray,
        batch_size: int,
        seed: int,
        device: torch.device,
        weights: np.ndarray | None = None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.batch_size, self.device = batch_size, device
        self._slice = slice(rank * batch_size, (rank + 1) * batch_size)
        self._draw = batch_size * world_size
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=device)
        self.arrays = {k: _upload(ds.load(k), device) for k in [*obs_keys, "action"]}
        starts, ends = ds.episode_starts[episodes], ds.episode_ends[episodes]
        frames = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)]) if len(episodes) else np.zeros(0, int)
        lengths = ends - starts
        self.frame = torch.as_tensor(frames, dtype=torch.long, device=device)
        self.first = torch.as_tensor(np.repeat(starts, lengths), dtype=torch.long, device=device)
        self.last = torch.as_tensor(np.repeat(ends - 1, lengths), dtype=torch.long, device=device)
        self.obs_offsets = torch.arange(1 - n_obs_steps, 1, device=device)
        self.action_offsets = torch.arange(horizon, device=device)
        self.obs_keys = obs_keys
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.wait_s = 0.0

    def __len__(self) -> int:
        return len(self.frame)

    def sample(self, idx: torch.Tensor) -> Batch:
        t = self.frame[idx, None]
        obs_frames = torch.maximum(t + self.obs_offsets, self.first[idx, None])
        wanted = t + self.action_offsets
        last = self.last[idx, None]
        batch = {k: self.arrays[k][obs_frames] for k in self.obs_keys}
        batch["action"] = self.arrays["action"][torch.minimum(wanted, last)]
        batch["action_is_pad"] = wanted > last
        return batch

    def next(self) -> Batch:
        start = time.perf_counter()
        if self.weights is None:
            idx = torch.randint(0, len(self), (self._draw,), device=self.device, generator=self.generator)
        else:
            idx = torch.multinomial(self.weights, self._draw, replacement=True, generator=self.generator)
        batch = self.sample(idx[self._slice])
        self.wait_s += time.perf_counter() - start
        return batch

    def close(self) -> None:
        self.arrays.clear()
