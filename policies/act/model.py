"""ACT: a CVAE whose decoder is a transformer mapping (latent, state, image tokens) to an action chunk.

Training encodes the ground-truth chunk into a latent (VAE encoder over [CLS, state, actions]) and
minimises L1 + kl_weight * KL. Inference uses the prior mean (z = 0) and, by default, temporal
ensembling: a chunk is predicted every step and the actions predicted for the current step are
averaged with weights exp(-coeff * i), i = 0 for the oldest prediction.

With ``rtc_train_max_delay`` K > 0 the decoder also learns to continue a committed prefix: each training
chunk's first d actions (none for half the chunks, d ~ U{1..K} for the rest) are given to their queries
and left out of the loss, so at inference the actions that will run before a chunk arrives can be handed
to it (training-time real-time chunking, arXiv 2512.05964).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from protege.policies.act.config import ACTConfig
from protege.policies.base import Batch, Policy, Spec, Stats, committed_prefix
from protege.policies.chunking import Chunking, Guide
from protege.policies.encoders import ConvTrunk
from protege.policies.errors import PolicyError


def _encoder(config: ACTConfig, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        config.dim_model, config.n_heads, config.dim_feedforward, config.dropout, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(config.dim_model), enable_nested_tensor=False)


class ACTPolicy(Policy):
    name = "act"
    config_class = ACTConfig

    def __init__(self, config: ACTConfig, spec: Spec, stats: Stats) -> None:
        super().__init__(config, spec, stats)
        if config.n_obs_steps != 1:
            raise PolicyError("act uses the current observation only: set n_obs_steps=1")
        if not spec.lowdim_keys:
            raise PolicyError("act needs at least one low-dim observation key (the robot state)")
        if config.dim_model % config.n_heads:
            raise PolicyError(f"dim_model={config.dim_model} must be divisible by n_heads={config.n_heads}")
        d, a = config.dim_model, spec.action_dim
        # VAE encoder: [CLS, state, action_1..H] -> (mu, logvar)
        self.vae_cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.vae_state = nn.Linear(spec.lowdim_dim, d)
        self.vae_action = nn.Linear(a, d)
        self.vae_pos = nn.Parameter(torch.randn(1, 2 + config.horizon, d) * 0.02)
        self.vae_encoder = _encoder(config, config.n_vae_encoder_layers)
        self.vae_out = nn.Linear(d, 2 * config.latent_dim)
        # Decoder side: tokens [latent, state, image features...] -> encoder -> cross-attended by queries.
        self.latent_in = nn.Linear(config.latent_dim, d)
        self.state_in = nn.Linear(spec.lowdim_dim, d)
        self.backbones = nn.ModuleDict({k: ConvTrunk(config.widths, jitter=config.color_jitter)
                                        for k in spec.image_keys})
        self.image_in = nn.ModuleDict({k: nn.Conv2d(config.widths[-1], d, 1) for k in spec.image_keys})
        self.image_pos = nn.ParameterDict({k: nn.Parameter(torch.randn(1, d, 1, 1) * 0.02) for k in spec.image_keys})
        self.token_pos = nn.Parameter(torch.randn(1, 2, d) * 0.02)
        self.encoder = _encoder(config, config.n_encoder_layers)
        layer = nn.TransformerDecoderLayer(
            d, config.n_heads, config.dim_feedforward, config.dropout, batch_first=True, norm_first=True
        )
        self.decoder = nn.TransformerDecoder(layer, config.n_decoder_layers, norm=nn.LayerNorm(d))
        self.query_pos = nn.Parameter(torch.randn(1, config.horizon, d) * 0.02)
        self.action_head = nn.Linear(d, a)
        self.prefix_in = nn.Linear(a, d) if config.rtc_train_max_delay else None

    def _image_tokens(self, key: str, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, h*w, d) tokens with a fixed 2-D sine position code plus a camera embedding; h = w =
        ``image_grid`` where set."""
        fmap = self.backbones[key](image)
        if self.config.image_grid is not None:
            fmap = F.adaptive_avg_pool2d(fmap, self.config.image_grid)
        fmap = self.image_in[key](fmap)
        _, d, h, w = fmap.shape
        pos = _sine_2d(d, h, w, fmap.device, fmap.dtype) + self.image_pos[key]
        return (fmap + pos).flatten(2).transpose(1, 2)

    def _decode(self, state: torch.Tensor, latent: torch.Tensor, images: dict[str, torch.Tensor],
                prefix: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Normalised (B, H, A) actions; ``prefix`` (normalised actions (B, H, A), mask (B, H)) hands the
        masked positions' actions to their queries."""
        tokens = torch.stack([self.latent_in(latent), self.state_in(state)], dim=1) + self.token_pos
        tokens = torch.cat([tokens, *[self._image_tokens(k, images[k]) for k in self.spec.image_keys]], dim=1)
        memory = self.encoder(tokens)
        queries = self.query_pos.expand(state.shape[0], -1, -1)
        if prefix is not None and self.prefix_in is not None:
            actions, mask = prefix
            queries = queries + self.prefix_in(actions) * mask.unsqueeze(-1).to(actions.dtype)
        return self.action_head(self.decoder(queries, memory))

    def _inputs(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        state = self.lowdim_features(batch)[:, -1]
        images = {k: self.normalizer.normalize(k, batch[k][:, -1]) for k in self.spec.image_keys}
        return state, images

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        state, images = self._inputs(batch)
        target = self.normalizer.normalize("action", batch["action"])
        b = state.shape[0]
        tokens = torch.cat([self.vae_cls.expand(b, -1, -1), self.vae_state(state)[:, None], self.vae_action(target)], 1)
        pad = torch.cat([batch["action_is_pad"].new_zeros(b, 2), batch["action_is_pad"]], dim=1)
        stats = self.vae_out(self.vae_encoder(tokens + self.vae_pos, src_key_padding_mask=pad)[:, 0])
        mu, logvar = stats.chunk(2, dim=-1)
        latent = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        prefix = None
        if self.config.rtc_train_max_delay:  # a random committed prefix, given and left out of the loss
            mask = committed_prefix(b, self.config.horizon, self.config.rtc_train_max_delay, target.device)
            prefix = (target, mask)
            batch = {**batch, "action_is_pad": batch["action_is_pad"] | mask}
        predicted = self._decode(state, latent, images, prefix)
        l1 = self.masked_mean(F.l1_loss(predicted, target, reduction="none"), batch)
        kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(-1).mean()
        return {"loss": l1 + self.config.kl_weight * kl, "l1": l1.detach(), "kl": kl.detach()}

    def predict_chunk(self, obs: Batch, guide: Guide | None = None) -> torch.Tensor:
        state, images = self._inputs(obs)
        latent = state.new_zeros(state.shape[0], self.config.latent_dim)
        prefix = None
        if guide is not None and guide.frozen:
            n = min(guide.frozen, self.config.rtc_train_max_delay, len(guide.actions))
            actions = torch.zeros(1, self.config.horizon, self.spec.action_dim, device=state.device)
            actions[0, :n] = torch.as_tensor(guide.actions[:n], dtype=torch.float32, device=state.device)
            mask = torch.arange(self.config.horizon, device=state.device)[None] < n
            prefix = (self.normalizer.normalize("action", actions), mask)
        return self.normalizer.unnormalize("action", self._decode(state, latent, images, prefix).float())

    @property
    def follows_guides(self) -> bool:
        return self.config.rtc_train_max_delay > 0

    @property
    def default_chunking(self) -> Chunking:
        coeff = self.config.temporal_ensemble_coeff
        return Chunking("sync") if coeff is None else Chunking("ensemble", ensemble_coeff=coeff)


def _sine_2d(d: int, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(1, d, h, w) sine/cosine code: half the channels for y, half for x."""
    quarter = d // 4
    freq = 1.0 / (10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter))
    ys = torch.arange(h, device=device, dtype=torch.float32)[:, None] * freq  # (h, q)
    xs = torch.arange(w, device=device, dtype=torch.float32)[:, None] * freq  # (w, q)
    code = torch.zeros(d, h, w, device=device)
    code[:quarter] = ys.sin().T[:, :, None]
    code[quarter : 2 * quarter] = ys.cos().T[:, :, None]
    code[2 * quarter : 3 * quarter] = xs.sin().T[:, None, :]
    code[3 * quarter : 4 * quarter] = xs.cos().T[:, None, :]
    return code[None].to(dtype)


POLICY = ACTPolicy
