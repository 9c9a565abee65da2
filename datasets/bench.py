"""`protege bench dataset`: write throughput with two 128x128 cameras, sampler throughput, and
export/import rates to and from LeRobot v3.0 and robomimic HDF5 (when the interop extra is installed).

Synthetic data shaped like the peer comparison: state 10 + action 7 float32, two 128x128x3 uint8
cameras, episodes of 200 frames, windows of 2 observations + 16 actions, batches of 256.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from protege.datasets.episode import Episode
from protege.datasets.errors import MissingExtraError
from protege.datasets.reader import Dataset
from protege.datasets.sampler import SequenceSampler
from protege.datasets.schema import Source
from protege.datasets.writer import EpisodeWriter

EPISODE_FRAMES = 200
LOW_DIM_EPISODES = 100
IMAGE_EPISODES = 12
EXCHANGE_EPISODES = 4
IMAGE_SIZE = 128
N_OBS_STEPS, HORIZON, BATCH = 2, 16, 256
CAMERAS = ("front", "wrist")
COLD_START_S = 3.0  # the disk sampler from a cold start is measured over this long
ROUNDS = 3  # each sampling figure and its limit are measured alternately this many times; medians reported
_ATTRS = {"fps": 20, "robot": "default", "task": "bench", "action_space": "ee_delta", "cameras": list(CAMERAS)}


def _camera_frames(seed: int, count: int = 64) -> np.ndarray:
    """Smooth images with a moving block and sensor noise: compress like renders, not like pure noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:IMAGE_SIZE, :IMAGE_SIZE]
    frames = np.empty((count, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    for i in range(count):
        frames[i, ..., 0] = (x + 2 * i) % 256
        frames[i, ..., 1] = (y * 2) % 256
        frames[i, ..., 2] = 96
        top, left = (7 * i) % 96, (11 * i) % 96
        frames[i, top : top + 32, left : left + 32] = (200, 40, 40)
    return frames + rng.integers(0, 4, frames.shape, dtype=np.uint8)


def _bench_write(path: Path, zarr_format: int, episodes: int = IMAGE_EPISODES) -> float:
    """Frames per second through add_frame + save_episode (compression and writing included)."""
    images = {camera: _camera_frames(seed) for seed, camera in enumerate(CAMERAS)}
    rng = np.random.default_rng(0)
    state = rng.standard_normal((EPISODE_FRAMES, 10)).astype(np.float32)
    action = rng.standard_normal((EPISODE_FRAMES, 7)).astype(np.float32)
    start = time.perf_counter()
    with EpisodeWriter(path, _ATTRS, format=zarr_format) as writer:
        for episode in range(episodes):
            for t in range(EPISODE_FRAMES):
                frame = {"state": state[t], "action": action[t], "timestamp": t / 20.0, "intervention": 0}
                for camera, pool in images.items():
                    frame[f"image_{camera}"] = pool[(t + episode) % len(pool)]
                writer.add_frame(frame)
            writer.save_episode(seed=episode, success=True, source=Source.EXPERT)
    return episodes * EPISODE_FRAMES / (time.perf_counter() - start)


def _write_low_dim(path: Path) -> None:
    rng = np.random.default_rng(1)
    with EpisodeWriter(path, {**_ATTRS, "cameras": []}) as writer:
        for episode in range(LOW_DIM_EPISODES):
            writer.add_episode(Episode(
                {
                    "state": rng.standard_normal((EPISODE_FRAMES, 10)).astype(np.float32),
                    "action": rng.standard_normal((EPISODE_FRAMES, 7)).astype(np.float32),
                    "timestamp": np.arange(EPISODE_FRAMES) / 20.0,
                },
                seed=episode,
                success=True,
                source=Source.EXPERT,
            ))


def _rate(draw: Callable[[np.ndarray], Any], size: int, budget_s: float) -> float:
    """Windows per second of ``draw(indices)`` on random batches for ``budget_s`` (one warm-up batch first)."""
    rng = np.random.default_rng(2)
    draw(rng.integers(0, size, BATCH))
    batches, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < budget_s or batches < 2:
        draw(rng.integers(0, size, BATCH))
        batches += 1
    return batches * BATCH / elapsed


def _rates(first: Callable[[np.ndarray], Any], second: Callable[[np.ndarray], Any], size: int,
           budget_s: float) -> tuple[float, float]:
    """Windows per second of two draws taking turns batch by batch on the same random batches, for about
    ``budget_s`` in all (one warm-up batch each first): both see the same load on a shared machine."""
    rng = np.random.default_rng(2)
    first(rng.integers(0, size, BATCH))
    second(rng.integers(0, size, BATCH))
    spent, batches, start = [0.0, 0.0], 0, time.perf_counter()
    while time.perf_counter() - start < budget_s or batches < 2:
        indices = rng.integers(0, size, BATCH)
        for i, draw in enumerate((first, second)):
            t = time.perf_counter()
            draw(indices)
            spent[i] += time.perf_counter() - t
        batches += 1
    return batches * BATCH / spent[0], batches * BATCH / spent[1]


def _sampler_draw(sampler: SequenceSampler, reuse: bool) -> Callable[[np.ndarray], Any]:
    """Each batch is kept until the next one exists, as a trainer would; with ``reuse`` it is refilled."""
    batch: dict[str, np.ndarray] | None = None

    def draw(indices: np.ndarray) -> None:
        nonlocal batch
        batch = sampler.sample(indices, out=batch if reuse else None)

    return draw


class _Windows:
    """The frames of each window, as a hand-written numpy loader computes them (the limits' index work)."""

    def __init__(self, ds: Dataset) -> None:
        starts, ends = ds.episode_starts, ds.episode_ends
        lengths = ends - starts
        self.frame = np.arange(int(lengths.sum()), dtype=np.int64)
        self.first, self.last = np.repeat(starts, lengths), np.repeat(ends - 1, lengths)

    def frames(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = self.frame[indices][:, None]
        obs = np.maximum(t + np.arange(1 - N_OBS_STEPS, 1), self.first[indices][:, None])
        return obs, np.minimum(t + np.arange(HORIZON), self.last[indices][:, None])


def _numpy_draw(ds: Dataset, obs_keys: list[str], reuse: bool) -> Callable[[np.ndarray], Any]:
    """The limit of the cached sampler: plain numpy fancy indexing of arrays in RAM (``reuse``: ``np.take``
    into the previous batch's arrays, the limit of the sampler refilling its output)."""
    arrays = {key: ds.load(key) for key in (*obs_keys, "action")}
    windows = _Windows(ds)
    out: dict[str, np.ndarray] = {}

    def draw(indices: np.ndarray) -> None:
        obs, act = windows.frames(indices)
        for key, array in arrays.items():
            frames = act if key == "action" else obs
            if reuse and key in out:
                np.take(array, frames, axis=0, out=out[key], mode="clip")
            else:
                out[key] = array[frames]

    return draw


def _file_read_draw(ds: Dataset, obs_keys: list[str]) -> Callable[[np.ndarray], Any]:
    """The limit of the disk path: a plain read of the stored chunk files that hold each batch's frames
    (format 2, the files' bytes only: no decompression, no gathering)."""
    windows = _Windows(ds)
    keys = [*obs_keys, "action"]
    chunk_frames = {key: ds.chunks(key)[0] for key in keys}
    suffix = {key: ".0" * (len(ds.shape(key)) - 1) for key in keys}

    def draw(indices: np.ndarray) -> None:
        obs, act = windows.frames(indices)
        for key in keys:
            frames = act if key == "action" else obs
            for chunk in np.unique(frames // chunk_frames[key]).tolist():
                with open(os.path.join(ds.path, "data", key, f"{chunk}{suffix[key]}"), "rb") as f:
                    f.read()

    return draw


def _paired(first: Callable[[], float], second: Callable[[], float], rounds: int) -> tuple[float, float, float]:
    """Median of each of two rates measured alternately ``rounds`` times, and the median of their ratios."""
    a, b = [], []
    for _ in range(rounds):
        a.append(first())
        b.append(second())
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return float(np.median(a)), float(np.median(b)), float(np.median(ratios))


def _paired_batches(ours: Callable[[np.ndarray], Any], limit: Callable[[np.ndarray], Any], size: int, budget_s: float,
                    rounds: int) -> tuple[float, float, float]:
    """Medians over ``rounds`` of :func:`_rates` (batch by batch turns) and of their ratios."""
    runs = [_rates(ours, limit, size, budget_s) for _ in range(rounds)]
    return (float(np.median([a for a, _ in runs])), float(np.median([b for _, b in runs])),
            float(np.median([a / b for a, b in runs])))


def _bench_sampling(path: Path, obs_keys: list[str], budget_s: float, rounds: int = ROUNDS) -> dict[str, float]:
    """Each sampler path beside its limit on the dataset at ``path``, taking turns batch by batch (:func:`_rates`).

    Disk paths, refilling the previous batch as the trainer does: ``disk_cold`` keeps nothing (every batch decoded,
    by the decode pool); ``disk_warm`` is the default disk sampler once its cache holds the dataset; ``disk`` is
    the default disk sampler from a cold start for the budget (a new one each round, then the plain reads for as
    long: what a run that long sees while the cache warms)."""
    ds = Dataset(path)
    name = "images" if len(obs_keys) > 1 else "low_dim"

    def sampler(**kwargs: Any) -> SequenceSampler:
        return SequenceSampler(Dataset(path), obs_keys, n_obs_steps=N_OBS_STEPS, horizon=HORIZON, **kwargs)

    cached = SequenceSampler(ds, obs_keys, n_obs_steps=N_OBS_STEPS, horizon=HORIZON, cache=True)
    warm = sampler(cache=False)
    warm.sample(np.arange(len(warm)))
    warm.wait_warm()
    n = len(cached)
    numpy_fresh, numpy_out, files = (_numpy_draw(ds, obs_keys, False), _numpy_draw(ds, obs_keys, True),
                                     _file_read_draw(ds, obs_keys))
    turns = {  # path: (its draw, its limit's draw, the limit's name)
        "cache": (_sampler_draw(cached, False), numpy_fresh, "numpy_fancy"),
        "cache_reuse": (_sampler_draw(cached, True), numpy_out, "numpy_take_out"),
        "disk_cold": (_sampler_draw(sampler(cache=False, warm_bytes=0), True), files, "file_read"),
        "disk_warm": (_sampler_draw(warm, True), numpy_out, "numpy_take_out"),
    }
    result: dict[str, float] = {}

    def record(what: str, limit_name: str, figures: tuple[float, float, float]) -> None:
        result[f"sample_{name}_{what}_per_s"], result[f"{limit_name}_{name}_per_s"] = figures[:2]
        result[f"sample_{name}_{what}_to_limit"] = figures[2]

    for what, (ours, limit, limit_name) in turns.items():
        record(what, limit_name, _paired_batches(ours, limit, n, budget_s, rounds))

    warmups: list[float] = []

    def from_cold() -> float:
        """A new disk sampler each round, drawing for COLD_START_S: what a run that long sees while its cache
        warms (how long it took to warm is kept)."""
        draw_from = sampler(cache=False)
        draw, rng = _sampler_draw(draw_from, True), np.random.default_rng(3)
        batches, warm_at, start = 0, math.inf, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < COLD_START_S:
            draw(rng.integers(0, n, BATCH))
            batches += 1
            if warm_at == math.inf and draw_from.warm:
                warm_at = time.perf_counter() - start
        warmups.append(warm_at)
        return batches * BATCH / elapsed

    record("disk", "file_read_cold", _paired(from_cold, lambda: _rate(files, n, budget_s), rounds))
    result[f"disk_warmup_{name}_s"] = float(np.median(warmups))
    return result


def _replay_buffer_copy(path: Path, keys: list[str]) -> dict[str, np.ndarray]:
    """diffusion_policy's ``ReplayBuffer.copy_from_path`` into numpy: every array read whole through zarr."""
    group = zarr.open_group(str(path), mode="r")
    return {key: np.asarray(group["data"][key][:]) for key in keys}


def _bench_load(path: Path, keys: list[str], rounds: int = ROUNDS) -> dict[str, float]:
    """Seconds for ``Dataset.load`` of ``keys`` (checksums checked) beside diffusion_policy's ReplayBuffer copy
    into memory, alternating on the same dataset; medians, and the median ratio of their rates."""
    def load() -> float:
        start, ds = time.perf_counter(), Dataset(path)
        for key in keys:
            ds.load(key)
        return 1 / (time.perf_counter() - start)

    def replay_buffer() -> float:
        start = time.perf_counter()
        _replay_buffer_copy(path, keys)
        return 1 / (time.perf_counter() - start)

    ours, limit, ratio = _paired(load, replay_buffer, rounds)
    return {"load_images_s": 1 / ours, "replay_buffer_copy_s": 1 / limit, "load_to_replay_buffer": ratio}


def _bench_disk_format3(path: Path, obs_keys: list[str], budget_s: float) -> float:
    """The default disk sampler on a format 3 (sharded) dataset, from a cold start, refilling its batch."""
    sampler = SequenceSampler(Dataset(path), obs_keys, n_obs_steps=N_OBS_STEPS, horizon=HORIZON, cache=False)
    return _rate(_sampler_draw(sampler, True), len(sampler), max(budget_s, COLD_START_S))


def _bench_exchange(root: Path) -> dict[str, float | None]:
    """Frames per second exported to and imported from each format (None without the interop extra)."""
    from protege.datasets.interop import export_dataset, import_dataset

    path = root / "exchange.zarr"
    _bench_write(path, zarr_format=2, episodes=EXCHANGE_EPISODES)
    frames = EXCHANGE_EPISODES * EPISODE_FRAMES
    rates: dict[str, float | None] = {}
    for name, out in (("lerobot", root / "exchange_lerobot"), ("robomimic", root / "exchange.hdf5")):
        try:
            start = time.perf_counter()
            export_dataset(path, name, out, progress=False)
            exported = time.perf_counter()
            import_dataset(out, name, root / f"back_{name}.zarr", progress=False)
            rates[f"export_{name}_frames_per_s"] = frames / (exported - start)
            rates[f"import_{name}_frames_per_s"] = frames / (time.perf_counter() - exported)
        except MissingExtraError:  # the interop extra is not installed
            rates[f"export_{name}_frames_per_s"] = rates[f"import_{name}_frames_per_s"] = None
    return rates


def run_bench(json: bool = False) -> dict[str, Any]:
    """Measure and return the figures; print them as text unless ``json`` (the caller prints the JSON)."""
    image_keys = ["state", *(f"image_{camera}" for camera in CAMERAS)]
    with tempfile.TemporaryDirectory(prefix="protege-bench-") as tmp:
        root = Path(tmp)
        _write_low_dim(root / "low_dim.zarr")
        result = {
            "write_frames_per_s": _bench_write(root / "images.zarr", zarr_format=2),
            "write_frames_per_s_format3": _bench_write(root / "images3.zarr", zarr_format=3),
            **_bench_sampling(root / "low_dim.zarr", ["state"], 0.5),
            **_bench_sampling(root / "images.zarr", image_keys, 1.0),
            "sample_images_disk_per_s_format3": _bench_disk_format3(root / "images3.zarr", image_keys, 2.0),
            **_bench_load(root / "images.zarr", [f"image_{camera}" for camera in CAMERAS]),
            **_bench_exchange(root),
        }
    result = {name: None if value is None or not math.isfinite(value) else
              round(value, 3 if name.endswith(("_s", "_limit", "_buffer")) else 1) for name, value in result.items()}
    if not json:
        _print(result)
    window = {"n_obs_steps": N_OBS_STEPS, "horizon": HORIZON, "batch": BATCH, "rounds": ROUNDS}
    return {**result, "window": window, "cpu_count": os.cpu_count()}


def _print(r: dict[str, Any]) -> None:
    print(f"write    two {IMAGE_SIZE}x{IMAGE_SIZE} cameras + state/action, frames/s (80 = 4x real time at 20 Hz):")
    print(f"         format 2 {r['write_frames_per_s']:>8,.0f}   format 3 {r['write_frames_per_s_format3']:>8,.0f}")
    print(f"sample   windows of {N_OBS_STEPS} obs + {HORIZON} actions, batches of {BATCH}, samples/s, each beside its "
          f"limit measured in this run (median of {ROUNDS} alternating runs):")
    rows = (
        ("cache", "numpy_fancy", "numpy fancy indexing in RAM"),
        ("cache_reuse", "numpy_take_out", "numpy take into the previous batch"),
        ("disk_cold", "file_read", "plain read of the chunk files; nothing kept"),
        ("disk", "file_read_cold", f"plain read of the chunk files; the first {COLD_START_S:g} s from cold"),
        ("disk_warm", "numpy_take_out", "numpy take into the previous batch; cache warm"),
    )
    for name, label in (("low_dim", "low-dim"), ("images", "2 cameras")):
        for what, limit, text in rows:
            shown = f"{label} {what.replace('_', ' ')}"
            print(f"         {shown:<24} {r[f'sample_{name}_{what}_per_s']:>11,.0f}   "
                  f"limit {r[f'{limit}_{name}_per_s']:>11,.0f}"
                  f"  ({text}; ratio {r[f'sample_{name}_{what}_to_limit']:.2f})")
    print(f"         2 cameras disk, format 3 (from cold) {r['sample_images_disk_per_s_format3']:>11,.0f}")
    warmups = [f"{r[f'disk_warmup_{name}_s']:.2f} s" if r[f"disk_warmup_{name}_s"] is not None
               else f"not within {COLD_START_S:g} s" for name in ("images", "low_dim")]
    print(f"         sampling from a cold start, the disk cache held everything after {warmups[0]} (2 cameras), "
          f"{warmups[1]} (low-dim)")
    print(f"load     both cameras into RAM: Dataset.load {r['load_images_s']:.2f} s, diffusion_policy's ReplayBuffer "
          f"copy {r['replay_buffer_copy_s']:.2f} s (load's speed / the copy's: {r['load_to_replay_buffer']:.2f})")
    print("exchange two cameras + state/action, frames/s:")
    for name in ("lerobot", "robomimic"):
        rates = [r[f"{way}_{name}_frames_per_s"] for way in ("export", "import")]
        if None in rates:
            print(f"         {name:<9} needs pip install 'protege[interop]'")
        else:
            print(f"         {name:<9} export {rates[0]:>8,.0f}   import {rates[1]:>8,.0f}")
