"""SequenceSampler: batched training windows with edge padding, and a train/validation split by episode."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from protege.datasets.errors import DatasetError
from protege.datasets.reader import Dataset


def split_episodes(num_episodes: int, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random split of episode ids; with val_ratio > 0 and 2+ episodes each side gets at least one."""
    if not 0.0 <= val_ratio < 1.0:
        raise DatasetError(f"val_ratio must be in [0, 1), got {val_ratio}")
    num_val = 0
    if val_ratio > 0 and num_episodes > 1:
        num_val = min(max(1, round(num_episodes * val_ratio)), num_episodes - 1)
    order = np.random.default_rng(seed).permutation(num_episodes)
    return np.sort(order[num_val:]).astype(np.int64), np.sort(order[:num_val]).astype(np.int64)


class SequenceSampler:
    """One window per frame t of the selected episodes.

    Observations come from frames t-n_obs_steps+1..t and actions from t..t+horizon-1, indices
    clipped to the episode (the first/last frame repeats); ``action_is_pad`` marks actions past the
    episode end. ``sample`` gathers a whole batch with one fancy index per key, from RAM when
    ``cache`` is set (images stay uint8, and every sampler of a Dataset shares one copy) or from
    the store otherwise.
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
        self._arrays = {key: ds.load(key) for key in (*self.obs_keys, action_key)} if cache else {}

    def __len__(self) -> int:
        return len(self._frame)

    @staticmethod
    def _check_out(key: str, out: np.ndarray | None, shape: tuple[int, ...]) -> None:
        if out is not None and out.shape != shape:
            raise DatasetError(f"out[{key!r}] has shape {out.shape}, this batch needs {shape}")

    def _gather(self, key: str, frames: np.ndarray, out: np.ndarray | None) -> np.ndarray:
        self._check_out(key, out, (*frames.shape, *self.ds.shape(key)[1:]))
        if self.cache:
            return np.take(self._arrays[key], frames, axis=0, out=out, mode="clip")  # frames are in range
        if out is None:
            return self.ds[key][frames]
        out[...] = self.ds[key][frames]
        return out

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
