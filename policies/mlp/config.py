"""Config of the low-dim MLP policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from protege.policies.config import PolicyConfig


@dataclass
class MLPConfig(PolicyConfig):
    """Reactive by default: the current observation in, one action out, standardised. On 100 scripted
    demos it beat two observations, 8-action chunks (4 executed) and min-max actions on every task
    measured (push 96% against 52%, lift 100% against 96%; docs/experiments.md)."""

    n_obs_steps: int = 1
    horizon: int = 1
    n_action_steps: int = 1
    action_norm: str = "meanstd"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    hidden: list[int] = field(default_factory=lambda: [512, 512, 512])
    dropout: float = 0.0
    velocity_dropout: float = 0.5  # stack 88-95.5% -> 94-96.5%, push unchanged (docs/experiments.md)
    loss: str = "mse"  # "mse" (conditional mean) or "l1" (conditional median: does not average two modes)
    members: int = 1  # > 1: an ensemble of independent networks, whose spread is the policy's doubt (model.py)

    @property
    def knows_doubt(self) -> bool:
        return self.members > 1
