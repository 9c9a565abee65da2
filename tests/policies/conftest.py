"""Shared fixtures: small synthetic datasets and tiny model configs that train in seconds on a CPU."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from protege.policies.base import POLICIES
from protege.policies.config import PolicyConfig, TrainConfig
from protege.policies.synthetic import make_dataset

# Tiny models: same code paths as the defaults, a fraction of the compute.
TINY: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": [128, 128]},
    "cnn": {"widths": [8, 16], "image_dim": 16, "hidden": [128]},
    "act": {"dim_model": 32, "n_heads": 2, "dim_feedforward": 64, "n_encoder_layers": 1, "n_vae_encoder_layers": 1,
            "horizon": 8, "kl_weight": 1.0, "dropout": 0.0},
    "diffusion": {"down_dims": [32, 64], "step_embed_dim": 16, "n_groups": 4, "horizon": 8, "n_action_steps": 4,
                  "lr": 3e-3},
}


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    """Tiny models run fastest single-threaded, and shared CI cores punish oversubscription."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def lowdim_dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_dataset(tmp_path_factory.mktemp("data") / "low.zarr", episodes=10, steps=40)


@pytest.fixture(scope="session")
def image_dataset(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("data") / "img.zarr"
    return make_dataset(path, episodes=10, steps=40, cameras=("front",), image_size=32)


def _tiny_config(name: str, **overrides: Any) -> PolicyConfig:
    return dataclasses.replace(POLICIES[name].config_class(), **{"lr": 1e-3, **TINY[name], **overrides})


def _train_config(dataset: str, out: Path, name: str, **overrides: Any) -> TrainConfig:
    base = dict(steps=200, batch_size=32, warmup_steps=20, val_every=100, save_every=1000, log_every=10, progress=False)
    return TrainConfig(dataset=dataset, out=str(out), policy=name, **{**base, **overrides})


@pytest.fixture
def tiny_config() -> Callable[..., PolicyConfig]:
    """tiny_config(name, **overrides): the policy's config shrunk to a tiny model."""
    return _tiny_config


@pytest.fixture
def train_config() -> Callable[..., TrainConfig]:
    """train_config(dataset, out, name, **overrides): a short CPU training run."""
    return _train_config
