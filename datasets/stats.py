"""Normalisation statistics per key (mean, std, min, max, q01, q99), cached in the dataset's root attrs.

Low-dim keys get per-feature statistics over all frames (quantiles interpolated linearly).
Image keys get per-channel statistics over all pixels, in uint8 units, computed exactly from
a histogram (quantiles are the lowest value reaching the fraction). The cache is keyed by a
fingerprint of meta/episode_ends, so appending episodes invalidates it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from protege.datasets import schema
from protege.datasets.errors import DatasetError
from protege.datasets.reader import Dataset

Stats = dict[str, dict[str, np.ndarray]]
STAT_NAMES = ("mean", "std", "min", "max", "q01", "q99")
CACHE_ATTR = "stats"
_IMAGE_BLOCK_BYTES = 8 * 1024 * 1024


def fingerprint(episode_ends: np.ndarray) -> str:
    """Identifies the committed episodes: changes whenever episodes are added or removed."""
    ends = np.asarray(episode_ends, dtype=np.int64)
    frames = int(ends[-1]) if len(ends) else 0
    return f"{len(ends)}:{frames}:{hashlib.sha1(ends.tobytes()).hexdigest()[:16]}"


def _low_dim_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    x = np.asarray(values, dtype=np.float64)
    q01, q99 = np.quantile(x, [0.01, 0.99], axis=0)
    return {"mean": x.mean(0), "std": x.std(0), "min": x.min(0), "max": x.max(0), "q01": q01, "q99": q99}


def _image_stats(ds: Dataset, key: str) -> dict[str, np.ndarray]:
    frames = ds[key]
    frame_bytes = int(np.prod(frames.shape[1:]))
    block = max(1, _IMAGE_BLOCK_BYTES // frame_bytes)
    counts = np.zeros((3, 256), dtype=np.int64)
    for start in range(0, len(frames), block):
        pixels = frames[start : start + block].reshape(-1, 3)
        for channel in range(3):
            counts[channel] += np.bincount(pixels[:, channel], minlength=256)
    values = np.arange(256, dtype=np.float64)
    total = counts.sum(1)
    mean = counts @ values / total
    cdf = np.cumsum(counts, axis=1) / total[:, None]
    return {
        "mean": mean,
        "std": np.sqrt(np.maximum(counts @ values**2 / total - mean**2, 0.0)),
        "min": np.argmax(counts > 0, axis=1).astype(np.float64),
        "max": (255 - np.argmax(counts[:, ::-1] > 0, axis=1)).astype(np.float64),
        "q01": np.argmax(cdf >= 0.01, axis=1).astype(np.float64),
        "q99": np.argmax(cdf >= 0.99, axis=1).astype(np.float64),
    }


def _key_stats(ds: Dataset, key: str) -> dict[str, np.ndarray]:
    if schema.is_image_key(key):
        return _image_stats(ds, key)
    return _low_dim_stats(ds[key][:])


def _cached(ds: Dataset) -> Stats:
    entry = ds.cached_attr(CACHE_ATTR)
    if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint(ds.episode_ends):
        return {}
    return {
        key: {name: np.asarray(values[name], dtype=np.float64) for name in STAT_NAMES}
        for key, values in entry.get("keys", {}).items()
    }


def load_stats(ds: Dataset, keys: Sequence[str] | None = None) -> Stats | None:
    """The cached statistics of ``keys`` (default all keys), or None if any is missing or stale."""
    cached = _cached(ds)
    wanted = ds.keys if keys is None else list(keys)
    return {key: cached[key] for key in wanted} if all(key in cached for key in wanted) else None


def compute_stats(ds: Dataset, keys: Sequence[str] | None = None) -> Stats:
    """Statistics of ``keys`` (default all data keys), read from the cache or computed and cached."""
    if ds.num_frames == 0:
        raise DatasetError(f"{ds.path} has no frames to compute statistics from")
    wanted = ds.keys if keys is None else list(keys)
    for key in wanted:
        ds.dtype(key)  # DatasetError naming an unknown key
    cached = _cached(ds)
    fresh = {key: _key_stats(ds, key) for key in wanted if key not in cached}
    if fresh:
        merged = {**cached, **fresh}
        ds.cache_attr(
            CACHE_ATTR,
            {
                "fingerprint": fingerprint(ds.episode_ends),
                "keys": {key: {name: v[name].tolist() for name in STAT_NAMES} for key, v in merged.items()},
            },
        )
        cached = merged
    return {key: cached[key] for key in wanted}
