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
from typing import Any

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
    """A daemon thread samples and converts the next batches while the model trains on the current one.

    Batches are sampled into a ring of ``depth + 2`` output batches made once (pinned memory on CUDA), not into
    new arrays: a batch handed out stays as it is until the next call of :meth:`next` (on CUDA, until its copy
    to the device has been made), then its arrays take a later batch. ``reuse=False`` samples into new arrays.
    """

    def __init__(
        self, sampler: SequenceSampler, batch_size: int, seed: int, device: torch.device, depth: int = 4,
        weights: np.ndarray | None = None, rank: int = 0, world_size: int = 1, reuse: bool = True,
    ) -> None:
        self.sampler, self.batch_size, self.device = sampler, batch_size, device
        self._slice = slice(rank * batch_size, (rank + 1) * batch_size)
        self._draw = batch_size * world_size
        self._cdf = None if weights is None else np.cumsum(weights)  # weighted draws by bisection
        self.rng = np.random.default_rng(seed)
        self.wait_s = 0.0
        self._reuse = reuse
        self._pin = device.type == "cuda"
        slots = depth + 2  # the queue, the batch being filled and the one the training step holds
        self._ring: list[tuple[dict[str, np.ndarray], Batch] | None] = [None] * slots
        self._copied: list[Any] = [None] * slots  # CUDA events: the slot's copy to the device is done
        self._free: queue.Queue[int] = queue.Queue()
        for slot in range(slots):
            self._free.put(slot)
        self._held: int | None = None
        self._queue: queue.Queue[tuple[int, Batch] | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, daemon=True, name="protege-prefetch")
        self._thread.start()

    def _indices(self) -> np.ndarray:
        if self._cdf is None:
            return self.rng.integers(0, len(self.sampler), self._draw)[self._slice]
        u = self.rng.random(self._draw)[self._slice] * self._cdf[-1]
        return np.minimum(np.searchsorted(self._cdf, u, side="right"), len(self.sampler) - 1)

    def _fill(self, slot: int, idx: np.ndarray) -> Batch:
        """Sample ``idx`` into ``slot``'s arrays (made on first use), as tensors sharing their memory."""
        if not self._reuse:
            batch = {k: torch.from_numpy(v) for k, v in self.sampler.sample(idx).items()}
            return {k: v.pin_memory() for k, v in batch.items()} if self._pin else batch
        held = self._ring[slot]
        if held is None:
            arrays = self.sampler.sample(idx)
            tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
            if self._pin:  # sample straight into pinned memory from now on
                tensors = {k: v.pin_memory() for k, v in tensors.items()}
                arrays = {k: v.numpy() for k, v in tensors.items()}
            self._ring[slot] = (arrays, tensors)
            return tensors
        event = self._copied[slot]
        if event is not None:
            event.synchronize()
        arrays, tensors = held
        self.sampler.sample(idx, out=arrays)
        return tensors

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                idx = self._indices()
                slot = self._take_free()
                if slot is None:
                    return
                batch = self._fill(slot, idx)
                while not self._stop.is_set():
                    try:
                        self._queue.put((slot, batch), timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # surfaced in the training loop
            self._queue.put(exc)

    def _take_free(self) -> int | None:
        while not self._stop.is_set():
            try:
                return self._free.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def next(self) -> Batch:
        start = time.perf_counter()
        if self._held is not None:  # the training step is done with the previous batch
            self._free.put(self._held)
            self._held = None
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        slot, host = item
        batch = {k: v.to(self.device, non_blocking=True) for k, v in host.items()}
        if self._pin:  # the slot is free once the copy is: the producer waits for this event
            event = torch.cuda.Event()
            event.record()
            self._copied[slot] = event
            self._free.put(slot)
        else:  # the batch is the slot's memory: free it when the next batch is asked for
            self._held = slot
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
