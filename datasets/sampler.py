"""SequenceSampler: batched training windows with edge padding, and a train/validation split by episode."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from concurrent.futures import Future

import numpy as np

from protege.datasets.errors import DatasetError
from protege.datasets.gather import take_rows
from protege.datasets.reader import DECODE_WORKERS, Dataset, FrameArray, decode_pool

# A batch needing fewer uncached frames than this reads them in its own thread.
_MISS_JOB_FRAMES = 16


def split_episodes(num_episodes: int, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split of episode ids; with val_ratio > 0 and 2+ episodes each side gets at least one."""
    if not 0.0 <= val_ratio < 1.0:
        raise DatasetError(f"val_ratio must be in [0, 1), got {val_ratio}")
    num_val = 0
    if val_ratio > 0 and num_episodes > 1:
        num_val = min(max(1, round(num_episodes * val_ratio)), num_episodes - 1)
    order = np.random.default_rng(seed).permutation(num_episodes)
    return np.sort(order[num_val:]).astype(np.int64), np.sort(order[:num_val]).astype(np.int64)


def default_warm_bytes() -> int:
    """The disk sampler's default cache budget: half the memory available now (Linux), else 2 GiB."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except (OSError, ValueError, IndexError):
        pass
    return 2 << 30


class WarmingFrames:
    """One key's frames read from the store as batches first need them, kept in RAM: a cache that warms as
    training runs.

    A batch's frames that are cached are gathered from RAM; the others are decoded at once by the decode pool
    (chunk reads side by side), and every episode they belong to is read whole in the background (chunk-aligned,
    checked against its checksums) into the cache, until ``budget`` bytes are spent; episodes beyond the budget
    are read from the store whenever they are needed. Thread-safe for one sampling thread.
    """

    def __init__(self, ds: Dataset, key: str, budget: int) -> None:
        self.array: FrameArray = ds[key]
        n, frame_shape = ds.num_frames, ds.shape(key)[1:]
        frame_bytes = max(1, int(np.prod(frame_shape, dtype=np.int64)) * self.array.dtype.itemsize)
        self.capacity = int(min(n, max(0, budget) // frame_bytes))
        self.frames = np.empty((self.capacity, *frame_shape), self.array.dtype)  # pages commit as they are written
        self.slot = np.full(n, -1, np.int64)  # cache row of each frame, -1: none (yet)
        self.ready = np.zeros(n, bool)  # rows written
        self.starts, self.ends = ds.episode_starts, ds.episode_ends
        self._episode = np.repeat(np.arange(len(self.ends)), self.ends - self.starts)
        self._scheduled = np.zeros(len(self.ends), bool)
        self._next_row = 0
        self._lock = threading.Lock()
        self._parallel = self.array.direct
        self._chunk_frames = max(1, ds.chunks(key)[0])
        self.pending: list[Future[None]] = []  # background episode reads in flight
        self._identity = self.capacity == n  # the whole key fits: frame f is row f
        self._complete = False

    @property
    def warm(self) -> bool:
        """Whether every frame is in RAM."""
        return self._complete or bool(self.ready.all())

    def gather(self, frames: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        """``frames`` (any shape of frame indices) -> ``(*frames.shape, *frame_shape)``, into ``out`` if given."""
        if self._complete:  # every frame cached and checked: the RAM path
            return take_rows(self.frames, frames if self._identity else self.slot[frames], out)
        if self.pending:
            self._poll()
        flat = frames.reshape(-1)
        ready = self.ready[flat]
        if ready.all():
            return take_rows(self.frames, frames if self._identity else self.slot[frames], out)
        result = out if out is not None else np.empty((*frames.shape, *self.frames.shape[1:]), self.frames.dtype)
        view = result.reshape(len(flat), *self.frames.shape[1:])
        if ready.any():
            view[ready] = self.frames[self.slot[flat[ready]]]
        missing = flat[~ready]
        unique, inverse = np.unique(missing, return_inverse=True)
        values = self._read(unique)
        view[~ready] = values[inverse]
        self._warm(unique)
        rows = self.slot[unique]
        kept = rows >= 0  # their episodes have rows: keep what was just read (the episode's read checks it)
        if kept.any():
            self.frames[rows[kept]] = values[kept]
            self.ready[unique[kept]] = True
        return result

    def _read(self, frames: np.ndarray) -> np.ndarray:
        """Sorted unique ``frames`` read from the store: where reads are direct and the frames span several
        chunks, in decode jobs side by side, each job whole chunks (no chunk is decoded twice)."""
        chunks = frames // self._chunk_frames
        if not self._parallel or chunks[-1] == chunks[0] or len(frames) < _MISS_JOB_FRAMES:
            return self.array[frames]
        groups = np.split(frames, np.flatnonzero(np.diff(chunks)) + 1)  # the frames of each chunk
        parts = [np.concatenate(groups[a:b]) for a, b in itertools.pairwise(
            np.linspace(0, len(groups), min(DECODE_WORKERS, len(groups)) + 1).round().astype(int).tolist()) if b > a]
        futures = [decode_pool().submit(self.array.__getitem__, part) for part in parts]
        return np.concatenate([future.result() for future in futures])

    def _poll(self) -> None:
        """Drop the finished background reads, raising the first failure (damage, a checksum) here, in the
        sampling thread; once every episode is read and checked, the cache is complete."""
        for job in [job for job in self.pending if job.done()]:
            job.result()
            self.pending.remove(job)
        if not self.pending and self._scheduled.all() and self.ready.all():
            self._complete = True

    def _warm(self, frames: np.ndarray) -> None:
        """Schedule the episodes of ``frames`` to be read whole into the cache, while the budget lasts."""
        self._poll()
        for episode in np.unique(self._episode[frames]).tolist():
            if self._scheduled[episode]:
                continue
            start, stop = int(self.starts[episode]), int(self.ends[episode])
            with self._lock:
                if self._next_row + stop - start > self.capacity:
                    return  # the budget is spent: later episodes stay on disk
                rows = slice(start, stop) if self._identity else slice(self._next_row, self._next_row + stop - start)
                self._next_row += stop - start
            self.slot[start:stop] = np.arange(rows.start, rows.stop)
            self._scheduled[episode] = True
            self.pending.append(decode_pool(background=True).submit(self._load_episode, start, stop, rows))

    def _load_episode(self, start: int, stop: int, rows: slice) -> None:
        self.frames[rows] = self.array[start:stop]  # a whole-episode read: checked against its checksum
        self.ready[start:stop] = True

    def wait(self) -> None:
        """Block until every scheduled episode is cached (raising the first read's failure)."""
        for job in list(self.pending):
            job.result()
        self._poll()


class SequenceSampler:
    """One window per frame t of the selected episodes.

    Observations come from frames t-n_obs_steps+1..t and actions from t..t+horizon-1, indices
    clipped to the episode (the first/last frame repeats); ``action_is_pad`` marks actions past the
    episode end. ``sample`` gathers a whole batch with one take per key, from RAM when ``cache`` is
    set (loaded whole at the start, images uint8, one copy shared by every sampler of a Dataset), or
    from the store otherwise, through a :class:`WarmingFrames` cache per key that keeps what was read,
    whole episodes at a time, up to ``warm_bytes`` in all (default: half the available memory; 0:
    nothing kept, every batch read from the store).
    """

    def __init__(
        self,
        ds: Dataset,
        obs_keys: Sequence[str],
        action_key: str = "action",
        n_obs_steps: int = 1,
        horizon: int = 1,
        episodes: Sequence[int] | None = None,
        cache: bool = True,
        warm_bytes: int | None = None,
    ) -> None:
        if n_obs_steps < 1 or horizon < 1:
            raise DatasetError(f"n_obs_steps and horizon must be >= 1, got {n_obs_steps} and {horizon}")
        if action_key in obs_keys:
            raise DatasetError(f"{action_key!r} is the action key; it cannot also be an observation key")
        for key in (*obs_keys, action_key):
            ds.dtype(key)  # DatasetError naming an unknown key
        self.ds = ds
        self.obs_keys = list(obs_keys)
        self.action_key = action_key
        self.n_obs_steps, self.horizon = n_obs_steps, horizon
        self.cache = cache
        ids = np.arange(ds.num_episodes) if episodes is None else np.asarray(episodes, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= ds.num_episodes):
            raise DatasetError(f"episode ids must lie in [0, {ds.num_episodes}), got {ids.min()}..{ids.max()}")
        self.episodes = ids
        starts, ends = ds.episode_starts[ids], ds.episode_ends[ids]
        lengths = ends - starts
        self._first = np.repeat(starts, lengths)
        window_offsets = np.cumsum(lengths) - lengths  # where each episode's windows begin
        self._frame = np.arange(lengths.sum(), dtype=np.int64) - np.repeat(window_offsets, lengths) + self._first
        self._last = np.repeat(ends - 1, lengths)
        self._obs_offsets = np.arange(1 - n_obs_steps, 1, dtype=np.int64)
        self._action_offsets = np.arange(horizon, dtype=np.int64)
        keys = (*self.obs_keys, action_key)
        self._arrays = {key: ds.load(key) for key in keys} if cache else {}
        self._warming: dict[str, WarmingFrames] = {}
        if not cache:
            budget = default_warm_bytes() if warm_bytes is None else warm_bytes
            sizes = {key: int(np.prod(ds.shape(key), dtype=np.int64)) * ds.dtype(key).itemsize for key in keys}
            for key in sorted(keys, key=sizes.__getitem__):  # small keys first: each gets what is left
                share = min(sizes[key], budget)
                self._warming[key] = WarmingFrames(ds, key, share)
                budget -= share

    def __len__(self) -> int:
        return len(self._frame)

    @staticmethod
    def _check_out(key: str, out: np.ndarray | None, shape: tuple[int, ...]) -> None:
        if out is not None and out.shape != shape:
            raise DatasetError(f"out[{key!r}] has shape {out.shape}, this batch needs {shape}")

    def _gather(self, key: str, frames: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        self._check_out(key, out, (*frames.shape, *self.ds.shape(key)[1:]))
        if self.cache:
            return take_rows(self._arrays[key], frames, out)  # frames are in range
        return self._warming[key].gather(frames, out)

    @property
    def warm(self) -> bool:
        """Whether every frame a batch can need is in RAM (always, with ``cache``)."""
        return all(frames.warm for frames in self._warming.values())

    def wait_warm(self) -> None:
        """Block until the episodes scheduled for the disk path's cache are read."""
        for frames in self._warming.values():
            frames.wait()

    def sample(
        self, indices: np.ndarray | Sequence[int], out: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """Windows for ``indices``: obs key -> (B, n_obs_steps, ...), action -> (B, horizon, ...),
        ``action_is_pad`` -> (B, horizon).

        ``out``, a batch returned by an earlier call with as many indices, is filled in place
        instead of allocating new arrays (for large image batches that halves the time); its
        previous contents are overwritten.
        """
        idx = np.asarray(indices, dtype=np.int64)
        out = out or {}
        t = self._frame[idx][:, None]
        obs_frames = np.maximum(t + self._obs_offsets, self._first[idx][:, None])
        wanted = t + self._action_offsets
        last = self._last[idx][:, None]
        batch = {key: self._gather(key, obs_frames, out.get(key)) for key in self.obs_keys}
        batch[self.action_key] = self._gather(self.action_key, np.minimum(wanted, last), out.get(self.action_key))
        self._check_out("action_is_pad", out.get("action_is_pad"), wanted.shape)
        batch["action_is_pad"] = np.greater(wanted, last, out=out.get("action_is_pad"))
        return batch

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        return {key: value[0] for key, value in self.sample(np.array([index % len(self)])).items()}
