"""`protege bench train|inference`: training throughput and data-wait share, per-action latency on CPU."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protege.datasets import Dataset, compute_stats
from protege.policies.act.config import ACT_CPU_SETTINGS
from protege.policies.base import POLICIES, Spec
from protege.policies.cnn.config import CNN_CPU_SETTINGS
from protege.policies.config import TrainConfig
from protege.policies.synthetic import make_dataset
from protege.policies.trainer import train

IMAGE_SIZE = 128


@dataclass(frozen=True)
class InferenceCase:
    """One policy to measure; ``overrides`` change its default config."""

    label: str
    policy: str
    cameras: tuple[str, ...] = ()
    image_size: int = IMAGE_SIZE
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainCase(InferenceCase):
    batch_size: int = 64
    cpu_steps: int = 20
    cuda_steps: int = 300


# Default configs, plus the cnn and act as the lift slow tests train them on one CPU core (CPU settings).
# Steps keep each case to a few seconds on a CPU.
TRAIN_CASES = [
    TrainCase("mlp (low-dim)", "mlp", batch_size=256, cpu_steps=200, cuda_steps=2000),
    TrainCase("cnn (2x128px)", "cnn", ("front", "wrist"), cpu_steps=8),
    TrainCase("cnn (2x64px, CPU settings)", "cnn", ("front", "wrist"), 64, CNN_CPU_SETTINGS, cpu_steps=30),
    TrainCase("act (low-dim)", "act", cpu_steps=10),
    TrainCase("act (low-dim, CPU settings)", "act", overrides=ACT_CPU_SETTINGS, cpu_steps=40),
    TrainCase("diffusion (low-dim)", "diffusion", cpu_steps=40),
]
INFERENCE_CASES = [
    InferenceCase("mlp", "mlp"),
    InferenceCase("act", "act"),
    InferenceCase("diffusion", "diffusion"),
    InferenceCase("cnn+2cam", "cnn", ("front", "wrist")),
    InferenceCase("cnn+2cam 64px CPU", "cnn", ("front", "wrist"), 64, CNN_CPU_SETTINGS),
    InferenceCase("act+1cam", "act", ("front",)),
]


def run_train_bench(json: bool = False) -> dict[str, Any]:
    """Train each case briefly on a synthetic dataset; report samples/s and the share of time waiting for data."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results: dict[str, Any] = {"device": device, "torch_threads": torch.get_num_threads(), "cases": []}
    with tempfile.TemporaryDirectory(prefix="protege-bench-") as tmp:
        for i, case in enumerate(TRAIN_CASES):
            dataset = make_dataset(
                Path(tmp) / f"{i}.zarr", episodes=20, steps=60, cameras=case.cameras, image_size=case.image_size
            )
            config = TrainConfig(
                dataset=dataset, out=str(Path(tmp) / f"run-{i}"), policy=case.policy, batch_size=case.batch_size,
                steps=case.cuda_steps if device == "cuda" else case.cpu_steps, warmup_steps=10, val_ratio=0.0,
                save_every=10**9, log_every=10**9, progress=False, device=device,
            )
            policy_config = dataclasses.replace(POLICIES[case.policy].config_class(), **case.overrides)
            summary = train(config, policy_config)
            results["cases"].append({
                "label": case.label,
                "policy": case.policy,
                "samples_per_s": round(summary.samples_per_s, 1),
                "data_wait_share": round(summary.data_wait_share, 4),
                "batch_size": case.batch_size,
                "cameras": len(case.cameras),
                "image_size": case.image_size if case.cameras else None,
                "overrides": case.overrides,
            })
            if not json:
                print(f"train {case.label:<27} {summary.samples_per_s:>9,.0f} samples/s   waiting for data "
                      f"{100 * summary.data_wait_share:4.1f}% of step time (target < 10%)", flush=True)
    return results


def latency(policy: torch.nn.Module, obs: dict[str, np.ndarray], n: int) -> tuple[float, float]:
    """(mean ms per act() call over an episode-like run, median ms of one full prediction)."""
    policy.reset()
    for _ in range(5):
        policy.act(obs)
    per_action = []
    for _ in range(n):
        start = time.perf_counter()
        policy.act(obs)
        per_action.append(time.perf_counter() - start)
    window = policy.observe(obs)
    per_prediction = []
    with torch.inference_mode():
        for _ in range(7):
            start = time.perf_counter()
            policy.predict_chunk(window)
            per_prediction.append(time.perf_counter() - start)
    return float(np.mean(per_action)) * 1000, float(np.median(per_prediction)) * 1000


def run_inference_bench(json: bool = False) -> dict[str, Any]:
    """Per-action CPU latency of each policy with its default config (untrained weights; the cost is the same).

    Single-threaded, as a rollout worker runs when evaluation uses one process per core.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _inference_bench(json)
    finally:
        torch.set_num_threads(threads)


def _inference_bench(json: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"device": "cpu", "torch_threads": 1}
    with tempfile.TemporaryDirectory(prefix="protege-bench-") as tmp:
        for i, case in enumerate(INFERENCE_CASES):
            name, cameras = case.policy, case.cameras
            ds = Dataset(make_dataset(Path(tmp) / f"{i}.zarr", episodes=2, steps=10, cameras=cameras,
                                      image_size=case.image_size))
            stats = compute_stats(ds, ["ee_pos", "joint_pos", "gripper", "object_pos", "action"])
            frame = {k: v[0] for k, v in ds.episode(0).data.items()}
            config = POLICIES[name].config_class()
            lowdim = ["joint_pos", "ee_pos", "gripper"] if cameras else config.input_keys(ds.observation_kinds)
            keys = [f"image_{c}" for c in cameras] + lowdim
            config = dataclasses.replace(config, obs_keys=keys, **case.overrides)
            spec = Spec({k: tuple(ds.shape(k)[1:]) for k in keys}, int(ds.shape("action")[1]))
            torch.manual_seed(0)
            policy = POLICIES[name](config, spec, stats).eval()
            per_action, per_prediction = latency(policy, {k: frame[k] for k in keys}, n=100 if name != "cnn" else 40)
            results[case.label] = {
                "ms_per_action": round(per_action, 3),
                "ms_per_prediction": round(per_prediction, 3),
                "actions_per_prediction": (1 if policy.executor.chunking.strategy == "ensemble"
                                           else config.n_action_steps),
            }
            if not json:
                extra = f" ({config.inference_steps} solver steps)" if name == "diffusion" else ""
                print(f"inference {case.label:<18} {per_action:7.2f} ms/action (mean)   "
                      f"{per_prediction:7.2f} ms per prediction{extra}", flush=True)
    return results
