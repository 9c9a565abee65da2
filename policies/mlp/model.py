"""MLP policy: flattened normalised observation history -> chunk of normalised actions, MSE loss.

With ``members`` > 1 the policy is an ensemble of independent networks, each trained on its own online
bootstrap of every batch (Poisson(1) sample weights); it acts on their mean, and their spread is its doubt:
the standard deviation across members of the first action, as a share of the largest action the data
holds, in the arm's dimension where they disagree most (the gripper's left out), which is how an operator's
deviation gate measures an action's departure (:func:`protege.teleop.runtime.gate.deviation`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from protege.policies.base import Batch, Policy, Spec, Stats
from protege.policies.chunking import Guide
from protege.policies.encoders import EnsembleMLP, mlp
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
        in_dim, out_dim = config.n_obs_steps * spec.lowdim_dim, config.horizon * spec.action_dim
        self.net = (mlp(in_dim, config.hidden, out_dim, config.dropout) if config.members == 1
                    else EnsembleMLP(config.members, in_dim, config.hidden, out_dim, config.dropout))
        reach = np.maximum(np.abs(stats["action"]["min"]), np.abs(stats["action"]["max"]))
        self.register_buffer("action_reach", torch.as_tensor(reach, dtype=torch.float32).clamp_min(1e-8),
                             persistent=False)

    def _predict(self, batch: Batch) -> torch.Tensor:
        """Normalised action chunks of every member: (B, members, horizon, action_dim)."""
        x = self.lowdim_features(batch).flatten(1)
        out = self.net(x)
        if self.config.members > 1:
            out = out.transpose(0, 1)
        return out.reshape(x.shape[0], self.config.members, self.config.horizon, self.spec.action_dim)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        target = self.normalizer.normalize("action", batch["action"])
        predicted = self._predict(batch)
        error = LOSSES[self.config.loss](predicted, target[:, None].expand_as(predicted), reduction="none")
        if self.config.members > 1:  # each member its own bootstrap of the batch
            error = error * torch.poisson(torch.ones(error.shape[:2], device=error.device))[..., None, None]
        return {"loss": self.masked_mean(error.mean(dim=1), batch)}

    def predict_chunk(self, obs: Batch, guide: Guide | None = None) -> torch.Tensor:
        predicted = self._predict(obs).float()
        if self.config.members > 1:
            spread = self.normalizer.unnormalize("action", predicted[:, :, 0]).std(dim=1) / self.action_reach
            self.doubt = float(spread[:, :-1].max() if self.config.binary_gripper else spread.max())
        return self.normalizer.unnormalize("action", predicted.mean(dim=1))


POLICY = MLPPolicy
