"""Config of the Action Chunking Transformer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protege.policies.config import PolicyConfig


@dataclass
class ACTConfig(PolicyConfig):
    """On low-dim lift with 100 scripted demos the defaults succeed in 50/50 rollouts after 2,000 steps
    (batch 64; ~18 min on one CPU core), ``ACT_CPU_SETTINGS`` in 49/50 after 2,000 steps (~3 min)."""

    horizon: int = 20  # chunk size
    n_action_steps: int = 1  # with temporal ensembling the policy predicts every step
    action_norm: str = "meanstd"
    lr: float = 1e-4
    weight_decay: float = 1e-4
    dim_model: int = 256
    n_heads: int = 8
    dim_feedforward: int = 1024
    n_encoder_layers: int = 4
    n_decoder_layers: int = 1
    n_vae_encoder_layers: int = 4
    latent_dim: int = 32
    kl_weight: float = 10.0
    dropout: float = 0.1
    temporal_ensemble_coeff: float | None = 0.01  # None: execute n_action_steps from a queue instead
    # > 0: learn to continue a committed prefix of up to this many actions (training-time real-time chunking)
    rtc_train_max_delay: int = 0
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # image backbone, if any cameras
    # each camera's feature map average-pooled to image_grid x image_grid tokens (None: one token per cell of the
    # map, 8 x 8 at 64 px); the transformer over the image tokens is most of a camera step's time on a CPU
    image_grid: int | None = None


# Half the width, half the encoder layers: ~700 samples/s on one CPU core on low-dim lift (defaults: ~120).
ACT_CPU_SETTINGS: dict[str, Any] = {
    "dim_model": 128, "n_heads": 4, "dim_feedforward": 512, "n_encoder_layers": 2, "n_vae_encoder_layers": 2
}
