"""MLP policy: flattened normalised observation history -> chunk of normalised actions, MSE loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from protege.policies.base import Batch, Policy, Spec, Stats
from protege.policies.encoders import mlp
from protege.policies.errors import PolicyError
from protege.policies.mlp.config import MLPConfig

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


class MLPPolicy(Policy):
    name = "mlp"
    config_class = MLPConfig

    def __init__(self, config: MLPConfig, spec: Spec, stats: Stats) -> None:
        super().__init__(config, spec, stats)
        if spec.image_keys:
            raise PolicyError(f"mlp is low-dim only; drop {', '.join(spec.image_keys)} from obs_keys or use cnn")
        if config.loss not in LOSSES:
            raise PolicyError(f"unknown mlp loss {config.loss!r} (choose from {', '.join(LOSSES)})")
        in_dim = config.n_obs_steps * spec.lowdim_dim
        self.net = mlp(in_dim, config.hidden, config.horizon * spec.action_dim, config.dropout)

    def _predict(self, batch: Batch) -> torch.Tensor:
        x = self.lowdim_features(batch).flatten(1)
        return self.net(x).view(x.shape[0], self.config.horizon, self.spec.action_dim)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        target = self.normalizer.normalize("action", batch["action"])
        error = LOSSES[self.config.loss](self._predict(batch), target, reduction="none")
        return {"loss": self.masked_mean(error, batch)}

    def predict_chunk(self, obs: Batch) -> torch.Tensor:
        return self.normalizer.unnormalize("action", self._predict(obs).float())


POLICY = MLPPolicy
