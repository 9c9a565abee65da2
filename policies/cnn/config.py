"""Config of the image BC policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protege.policies.config import PolicyConfig


@dataclass
class CNNConfig(PolicyConfig):
    """Reactive, as the mlp: one standardised action per tick. From 100 scripted demos on the vision inputs
    it beat 8-action chunks (4 executed, min-max actions) on push (81% against 68%) and stack (85% against
    80%; docs/experiments.md). The image trunk's defaults suit a GPU and 128 px cameras. On one CPU core,
    record 64 px cameras (``protege record ... --image-size 64``) and train with ``CNN_CPU_SETTINGS``
    (``--set widths=16,32,64 --set n_obs_steps=1``): 3,000 steps (batch 64) take 6-7 minutes."""

    n_obs_steps: int = 2
    action_norm: str = "meanstd"
    lr: float = 3e-4
    weight_decay: float = 1e-4
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    image_dim: int = 64  # features per camera and step
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    dropout: float = 0.0
    inputs: str = "vision"


# A small encoder on the current frame only: ~1,000 samples/s on one CPU core with two 64 px cameras.
CNN_CPU_SETTINGS: dict[str, Any] = {"widths": [16, 32, 64], "n_obs_steps": 1}
