"""Config of the image BC policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protege.policies.config import PolicyConfig


@dataclass
class CNNConfig(PolicyConfig):
    """Defaults suit a GPU and 128 px cameras. On one CPU core, record 64 px cameras
    (``protege record ... --image-size 64``) and train with ``CNN_CPU_SETTINGS``
    (``--set widths=16,32,64 --set n_obs_steps=1``): on lift with 100 scripted demos, front + wrist
    cameras and proprioception, 48-50/50 rollouts succeed after 3,000 steps (batch 64, ~3.5 min); the
    defaults on the same 64 px data: 50/50 after 3,000 steps (~16.5 min)."""

    n_obs_steps: int = 2
    horizon: int = 8
    n_action_steps: int = 4
    lr: float = 3e-4
    weight_decay: float = 1e-4
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    image_dim: int = 64  # features per camera and step
    hidden: list[int] = field(default_factory=lambda: [512, 512])
    dropout: float = 0.0
    inputs: str = "vision"


# A small encoder on the current frame only: ~1,000 samples/s on one CPU core with two 64 px cameras.
CNN_CPU_SETTINGS: dict[str, Any] = {"widths": [16, 32, 64], "n_obs_steps": 1}
