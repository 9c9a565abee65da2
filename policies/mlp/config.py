"""Config of the low-dim MLP policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from protege.policies.config import PolicyConfig


@dataclass
class MLPConfig(PolicyConfig):
    n_obs_steps: int = 2
    horizon: int = 8
    n_action_steps: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    hidden: list[int] = field(default_factory=lambda: [512, 512, 512])
    dropout: float = 0.0
    loss: str = "mse"  # "mse" (conditional mean) or "l1" (conditional median: does not average two modes)
