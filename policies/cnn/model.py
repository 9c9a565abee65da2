"""CNN policy: ResNet-style features per camera + normalised proprioception -> MLP -> action chunk."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from protege.policies.base import Batch, Policy, Spec, Stats
from protege.policies.chunking import Guide
from protege.policies.cnn.config import CNNConfig
from protege.policies.encoders import ObsEncoder, mlp
from protege.policies.errors import PolicyError


class CNNPolicy(Policy):
    name = "cnn"
    config_class = CNNConfig

    def __init__(self, config: CNNConfig, spec: Spec, stats: Stats) -> None:
        super().__init__(config, spec, stats)
        if not spec.image_keys:
            given = ", ".join(spec.obs_shapes)
            raise PolicyError(f"cnn needs an image_<camera> observation; it was given only {given}")
        self.encoder = ObsEncoder(spec.image_keys, spec.lowdim_dim, config.widths, config.image_dim,
                                  config.color_jitter)
        in_dim = config.n_obs_steps * self.encoder.out_dim
        self.head = mlp(in_dim, config.hidden, config.horizon * spec.action_dim, config.dropout)

    def _predict(self, batch: Batch) -> torch.Tensor:
        images = {k: self.normalizer.normalize(k, batch[k]) for k in self.spec.image_keys}
        x = self.encoder(images, self.lowdim_features(batch)).flatten(1)
        return self.head(x).view(x.shape[0], self.config.horizon, self.spec.action_dim)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        target = self.normalizer.normalize("action", batch["action"])
        return {"loss": self.masked_mean(F.mse_loss(self._predict(batch), target, reduction="none"), batch)}

    def predict_chunk(self, obs: Batch, guide: Guide | None = None) -> torch.Tensor:
        return self.normalizer.unnormalize("action", self._predict(obs).float())


POLICY = CNNPolicy
