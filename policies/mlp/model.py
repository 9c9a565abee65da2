"""MLP policy: flattened normalised observation history -> chunk of normalised actions, MSE loss.

With ``heads`` > 1 the last layer is an ensemble of action heads on the shared trunk, each trained on
its own online bootstrap of every batch (Poisson(1) sample weights); the policy acts on their mean, and
their spread (standard deviation across heads of the first action, in standardised units, averaged over
its dimensions) is its doubt.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from protege.policies.base import Batch, Policy, Spec, Stats
from protege.policies.chunking import Guide
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
        if config.heads < 1:
            raise PolicyError(f"heads must be at least 1, got {config.heads}")
        in_dim = config.n_obs_steps * spec.lowdim_dim
        self.net = mlp(in_dim, config.hidden, config.heads * config.horizon * spec.action_dim, config.dropout)

    def _predict(self, batch: Batch) -> torch.Tensor:
        """Normalised action chunks of every head: (B, heads, horizon, action_dim)."""
        x = self.lowdim_features(batch).flatten(1)
        return self.net(x).view(x.shape[0], self.config.heads, self.config.horizon, self.spec.action_dim)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        target = self.normalizer.normalize("action", batch["action"])
        predicted = self._predict(batch)
        error = LOSSES[self.config.loss](predicted, target[:, None].expand_as(predicted), reduction="none")
        if self.config.heads > 1:  # each head its own bootstrap of the batch
            error = error * torch.poisson(torch.ones(error.shape[:2], device=error.device))[..., None, None]
        return {"loss": self.masked_mean(error.mean(dim=1), batch)}

    def predict_chunk(self, obs: Batch, guide: Guide | None = None) -> torch.Tensor:
        predicted = self._predict(obs).float()
        if self.config.heads > 1:
            self.doubt = float(predicted[:, :, 0].std(dim=1).mean())
        return self.normalizer.unnormalize("action", predicted.mean(dim=1))


POLICY = MLPPolicy
