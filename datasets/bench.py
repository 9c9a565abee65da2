"""`protege bench dataset`: write throughput with two 128x128 cameras, sampler throughput, and
export/import rates to and from LeRobot v3.0 and robomimic HDF5 (when the interop extra is installed).

Synthetic data shaped like the peer comparison: state 10 + action 7 float32, two 128x128x3 uint8
cameras, episodes of 200 frames, windows of 2 observations + 16 actions, batches of 256.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

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


def _samples_per_second(sampler: SequenceSampler, budget_s: float, reuse: bool) -> float:
    """Random batches for ``budget_s``; each batch is kept until the next one exists, as a trainer would."""
    rng = np.random.default_rng(2)
    batch = sampler.sample(rng.integers(0, len(sampler), BATCH))  # warm up
    batches, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < budget_s or batches < 2:
        batch = sampler.sample(rng.integers(0, len(sampler), BATCH), out=batch if reuse else None)
        batches += 1
    return batches * BATCH / elapsed


def _bench_sampling(path: Path, obs_keys: list[str], cache: bool, budget_s: float, reuse: bool = False) -> float:
    sampler = SequenceSampler(Dataset(path), obs_keys, n_obs_steps=N_OBS_STEPS, horizon=HORIZON, cache=cache)
    return _samples_per_second(sampler, budget_s, reuse)


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
            "sample_low_dim_cache_per_s": _bench_sampling(root / "low_dim.zarr", ["state"], True, 1.0),
            "sample_low_dim_disk_per_s": _bench_sampling(root / "low_dim.zarr", ["state"], False, 1.0),
            "sample_images_cache_per_s": _bench_sampling(root / "images.zarr", image_keys, True, 2.0),
            "sample_images_cache_reuse_per_s": _bench_sampling(root / "images.zarr", image_keys, True, 2.0, reuse=True),
            "sample_images_disk_per_s": _bench_sampling(root / "images.zarr", image_keys, False, 2.0),
            "sample_images_disk_per_s_format3": _bench_sampling(root / "images3.zarr", image_keys, False, 2.0),
            **_bench_exchange(root),
        }
    result = {name: None if value is None else round(value, 1) for name, value in result.items()}
    if not json:
        _print(result)
    window = {"n_obs_steps": N_OBS_STEPS, "horizon": HORIZON, "batch": BATCH}
    return {**result, "window": window, "cpu_count": os.cpu_count()}


def _print(r: dict[str, Any]) -> None:
    print(f"write    two {IMAGE_SIZE}x{IMAGE_SIZE} cameras + state/action, frames/s (80 = 4x real time at 20 Hz):")
    print(f"         format 2 {r['write_frames_per_s']:>8,.0f}   format 3 {r['write_frames_per_s_format3']:>8,.0f}")
    print(f"sample   windows of {N_OBS_STEPS} obs + {HORIZON} actions, batches of {BATCH}, samples/s:")
    low_dim_cache, low_dim_disk = r["sample_low_dim_cache_per_s"], r["sample_low_dim_disk_per_s"]
    print(f"         low-dim   cache {low_dim_cache:>12,.0f}   disk {low_dim_disk:>10,.0f}")
    print(
        f"         2 cameras cache {r['sample_images_cache_per_s']:>12,.0f}"
        f"   disk {r['sample_images_disk_per_s']:>10,.0f}"
        f"   disk, format 3 {r['sample_images_disk_per_s_format3']:>8,.0f}"
    )
    print(f"         2 cameras cache, refilling the previous batch (out=) {r['sample_images_cache_reuse_per_s']:,.0f}")
    print("exchange two cameras + state/action, frames/s:")
    for name in ("lerobot", "robomimic"):
        rates = [r[f"{way}_{name}_frames_per_s"] for way in ("export", "import")]
        if None in rates:
            print(f"         {name:<9} needs pip install 'protege[interop]'")
        else:
            print(f"         {name:<9} export {rates[0]:>8,.0f}   import {rates[1]:>8,.0f}")
