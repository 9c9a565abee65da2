"""Diffusion policy: epsilon-predicting 1-D conv U-Net over the action chunk, FiLM-conditioned on the
observation history; DDPM training with a squared-cosine schedule, deterministic sampling with the
second-order multistep DPM-Solver++ (Lu et al. 2022; its first step, and any first-order step, is DDIM).

A :class:`~protege.policies.chunking.Guide` (real-time chunking) steers sampling by inpainting: at every
step the predicted clean chunk takes the committed actions as they are, and is pulled towards the rest of
the overlap by the guide's decaying weights times the step's noise level (a full pull there held the new
chunk on the old plan: push fell from 61% to 20% at no delay), so the chunk ends on the committed actions
and eases away from the current chunk while the policy still corrects it. With ``rtc_train_max_delay`` K > 0
the U-Net also reads a mask channel and learns to continue a clean committed prefix (none for half the
chunks, d ~ U{1..K} for the rest; left out of the loss; arXiv 2512.05964); a guide's committed actions
are then given as that prefix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from protege.policies.base import Batch, Policy, Spec, Stats, committed_prefix
from protege.policies.chunking import Guide
from protege.policies.diffusion.config import DiffusionConfig
from protege.policies.encoders import ObsEncoder
from protege.policies.errors import PolicyError


def squared_cosine_alphas_cumprod(steps: int, max_beta: float = 0.999) -> torch.Tensor:
    """alpha-bar_t of the 'squaredcos_cap_v2' schedule (Nichol & Dhariwal 2021)."""
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    betas = torch.tensor([min(1 - f((i + 1) / steps) / f(i / steps), max_beta) for i in range(steps)])
    return torch.cumprod(1.0 - betas, dim=0)


def sampling_schedule(alphas_cumprod: torch.Tensor, steps: int) -> list[tuple[int, float, float, float]]:
    """(timestep, alpha, sigma, log-SNR lambda) at ``steps`` timesteps evenly spaced from the noisiest to the
    cleanest, then the clean end (alpha 1, sigma 0)."""
    last = len(alphas_cumprod) - 1
    schedule = []
    for t in torch.linspace(last, 0, steps).round().long().tolist():
        ab = float(alphas_cumprod[t])
        alpha, sigma = math.sqrt(ab), math.sqrt(1.0 - ab)
        schedule.append((t, alpha, sigma, math.log(alpha / sigma)))
    return [*schedule, (0, 1.0, 0.0, math.inf)]


class SinusoidalEmbedding(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freq = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / (half - 1))
        x = t.float()[:, None] * freq[None]
        return torch.cat([x.sin(), x.cos()], dim=-1)


_ONEDNN = torch.backends.mkldnn.is_available()


class Conv1d(nn.Conv1d):
    """An ``nn.Conv1d`` that runs its wide layers (in x out channels of 256 x 256 or more) through oneDNN
    when no gradient is taken. At batch 1 PyTorch sends every convolution to its native kernel, which on
    one CPU core is 2.4x slower than oneDNN for 256 channels at length 4 (and 4x faster for 64 channels at
    length 16, where it stays): a chunk samples about 20% faster."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (_ONEDNN and self.in_channels * self.out_channels >= 256 * 256 and not torch.is_grad_enabled()
                and x.device.type == "cpu" and x.dtype == torch.float32 and self.padding_mode == "zeros"):
            return torch.mkldnn_convolution(x, self.weight, self.bias, self.padding, self.stride, self.dilation,
                                            self.groups)
        return super().forward(x)


class Conv1dBlock(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int) -> None:
        super().__init__(Conv1d(c_in, c_out, kernel, padding=kernel // 2), nn.GroupNorm(groups, c_out), nn.Mish())


class FiLMResBlock(nn.Module):
    """Two conv blocks; the conditioning vector scales and shifts the first one's output per channel.

    The scale and shift are a linear map of the conditioning. Chi et al. put a Mish before it, which
    folds negative normalised low-dim observations onto each other (Mish(-0.5) ~ Mish(-2)): on lift the
    policy then misplaced the cube by centimetres and succeeded in 30/50 episodes instead of 49/50.
    """

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.block1 = Conv1dBlock(c_in, c_out, kernel, groups)
        self.block2 = Conv1dBlock(c_out, c_out, kernel, groups)
        self.film = nn.Linear(cond_dim, 2 * c_out)
        self.skip = Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """``film``: ``self.film`` of the conditioning, (B, 2 * c_out)."""
        scale, bias = film.unsqueeze(-1).chunk(2, dim=1)
        return self.block2(self.block1(x) * scale + bias) + self.skip(x)


class UNet1D(nn.Module):
    """Conditional 1-D U-Net: (B, H, in_dim) noisy actions (and any extra channels) and the FiLM terms of
    timesteps (B,) and cond (B, C) -> noise (B, H, action_dim). The terms are a separate call so that
    sampling computes every solver step's at once."""

    def __init__(self, action_dim: int, cond_dim: int, config: DiffusionConfig, in_dim: int | None = None) -> None:
        super().__init__()
        k, g, e = config.kernel_size, config.n_groups, config.step_embed_dim
        self.step_embed = nn.Sequential(SinusoidalEmbedding(e), nn.Linear(e, 4 * e), nn.Mish(), nn.Linear(4 * e, e))
        cond_dim += e
        dims = [in_dim or action_dim, *config.down_dims]
        self.down = nn.ModuleList()
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            last = i == len(dims) - 2
            self.down.append(nn.ModuleList([
                FiLMResBlock(a, b, cond_dim, k, g),
                FiLMResBlock(b, b, cond_dim, k, g),
                Conv1d(b, b, 3, 2, 1) if not last else nn.Identity(),
            ]))
        mid = dims[-1]
        self.mid = nn.ModuleList([FiLMResBlock(mid, mid, cond_dim, k, g), FiLMResBlock(mid, mid, cond_dim, k, g)])
        self.up = nn.ModuleList()
        for a, b in zip(reversed(dims[2:]), reversed(dims[1:-1])):
            self.up.append(nn.ModuleList([
                FiLMResBlock(2 * a, b, cond_dim, k, g),
                FiLMResBlock(b, b, cond_dim, k, g),
                nn.ConvTranspose1d(b, b, 4, 2, 1),
            ]))
        self.out = nn.Sequential(Conv1dBlock(dims[1], dims[1], k, g), Conv1d(dims[1], action_dim, 1))

    def films(self, t: torch.Tensor, cond: torch.Tensor) -> list[torch.Tensor]:
        """Every residual block's FiLM scale and shift, in the order ``forward`` runs the blocks."""
        cond = torch.cat([self.step_embed(t), cond], dim=-1)
        blocks = [*(b for res1, res2, _ in self.down for b in (res1, res2)), *self.mid,
                  *(b for res1, res2, _ in self.up for b in (res1, res2))]
        return [block.film(cond) for block in blocks]

    def forward(self, x: torch.Tensor, films: list[torch.Tensor]) -> torch.Tensor:
        film = iter(films)
        x = x.transpose(1, 2)
        skips = []
        for res1, res2, down in self.down:
            x = res2(res1(x, next(film)), next(film))
            skips.append(x)
            x = down(x)
        for res in self.mid:
            x = res(x, next(film))
        for res1, res2, up in self.up:
            x = up(res2(res1(torch.cat([x, skips.pop()], dim=1), next(film)), next(film)))
        return self.out(x).transpose(1, 2)


class DiffusionPolicy(Policy):
    name = "diffusion"
    config_class = DiffusionConfig

    def __init__(self, config: DiffusionConfig, spec: Spec, stats: Stats) -> None:
        super().__init__(config, spec, stats)
        if config.action_norm != "minmax":
            raise PolicyError("diffusion samples in [-1, 1]: set action_norm=minmax")
        if config.horizon % 2 ** (len(config.down_dims) - 1):
            raise PolicyError(f"horizon={config.horizon} must be divisible by 2**(len(down_dims)-1)")
        if config.inference_steps > config.train_timesteps:
            raise PolicyError(f"inference_steps={config.inference_steps} must be at most train_timesteps="
                              f"{config.train_timesteps}")
        if config.kernel_size % 2 == 0:
            raise PolicyError(f"kernel_size={config.kernel_size} must be odd (a chunk keeps its length)")
        if any(width % config.n_groups for width in config.down_dims):
            raise PolicyError(f"n_groups={config.n_groups} must divide every width of down_dims={config.down_dims}")
        if config.step_embed_dim < 4 or config.step_embed_dim % 2:
            raise PolicyError(f"step_embed_dim={config.step_embed_dim} must be even and at least 4")
        self.obs_encoder = ObsEncoder(spec.image_keys, spec.lowdim_dim, config.widths, config.image_dim,
                                      config.color_jitter)
        in_dim = spec.action_dim + 1 if config.rtc_train_max_delay else None  # + the committed-prefix mask
        self.unet = UNet1D(spec.action_dim, config.n_obs_steps * self.obs_encoder.out_dim, config, in_dim)
        self.register_buffer("alphas_cumprod", squared_cosine_alphas_cumprod(config.train_timesteps), persistent=False)
        self.sampling = sampling_schedule(self.alphas_cumprod, config.inference_steps)
        self.noise: torch.Generator | None = None  # the sampling noise's, seeded per episode by reset(seed)

    @property
    def follows_guides(self) -> bool:
        return True

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self.noise = None if seed is None else torch.Generator(self.device).manual_seed(seed)

    def _denoise(self, x: torch.Tensor, films: list[torch.Tensor], mask: torch.Tensor | None) -> torch.Tensor:
        if self.config.rtc_train_max_delay:
            x = torch.cat([x, (mask if mask is not None else x.new_zeros(x.shape[:2])).unsqueeze(-1).to(x.dtype)], -1)
        return self.unet(x, films)

    def _condition(self, batch: Batch) -> torch.Tensor:
        images = {k: self.normalizer.normalize(k, batch[k]) for k in self.spec.image_keys}
        return self.obs_encoder(images, self.lowdim_features(batch)).flatten(1)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        target = self.normalizer.normalize("action", batch["action"])
        noise = torch.randn_like(target)
        t = torch.randint(0, self.config.train_timesteps, (target.shape[0],), device=target.device)
        ab = self.alphas_cumprod[t].view(-1, 1, 1)
        noisy = ab.sqrt() * target + (1 - ab).sqrt() * noise
        mask = None
        if self.config.rtc_train_max_delay:  # a random committed prefix: clean, marked, left out of the loss
            mask = committed_prefix(len(target), self.config.horizon, self.config.rtc_train_max_delay, target.device)
            noisy = torch.where(mask.unsqueeze(-1), target, noisy)
            batch = {**batch, "action_is_pad": batch["action_is_pad"] | mask}
        pred = self._denoise(noisy, self.unet.films(t, self._condition(batch)), mask)
        return {"loss": self.masked_mean(F.mse_loss(pred, noise, reduction="none"), batch)}

    def predict_chunk(self, obs: Batch, guide: Guide | None = None) -> torch.Tensor:
        cond = self._condition(obs)
        shape = (cond.shape[0], self.config.horizon, self.spec.action_dim)
        x = torch.randn(shape, device=cond.device, generator=self.noise)
        target, weights, mask = self._guidance(guide, shape, cond.device)
        steps = len(self.sampling) - 1  # every step's FiLM terms in one pass: (steps * B, .) -> steps x (B, .)
        timesteps = torch.tensor([t for t, *_ in self.sampling[:-1]], device=cond.device).repeat_interleave(shape[0])
        films = zip(*(f.chunk(steps) for f in self.unet.films(timesteps, cond.repeat(steps, 1))))
        x0_last, h_last = None, 0.0
        for (_, alpha, sigma, lam), (_, alpha_next, sigma_next, lam_next) in zip(self.sampling, self.sampling[1:]):
            if mask is not None:  # the committed prefix, clean
                x = torch.where(mask.unsqueeze(-1), target, x)
            eps = self._denoise(x, list(next(films)), mask).float()
            x0 = ((x - sigma * eps) / alpha).clamp(-1, 1)
            if weights is not None:  # inpainting: the committed actions held, the rest pulled while still noisy
                x0 = x0 + torch.where(weights >= 1.0, weights, weights * sigma) * (target - x0)
            if sigma_next == 0.0:  # the last step lands on the clean chunk
                x = x0
                break
            h = lam_next - lam
            data = x0 if x0_last is None else x0 + (x0 - x0_last) * h / (2 * h_last)  # DPM-Solver++(2M)
            x = (sigma_next / sigma) * x - alpha_next * math.expm1(-h) * data
            x0_last, h_last = x0, h
        if mask is not None:
            x = torch.where(mask.unsqueeze(-1), target, x)
        return self.normalizer.unnormalize("action", x)

    def _guidance(self, guide: Guide | None, shape: tuple[int, int, int], device: torch.device
                  ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(normalised guide actions (1, H, A), inpainting weights (1, H, 1) or None, prefix mask (1, H) or
        None), all None without a guide: a policy trained with committed prefixes takes the guide's
        committed actions as one."""
        if guide is None:
            return None, None, None
        target = torch.zeros(1, *shape[1:], device=device)
        n = min(len(guide.actions), shape[1])
        target[0, :n] = self.normalizer.normalize(
            "action", torch.as_tensor(guide.actions[:n], dtype=torch.float32, device=device)).clamp(-1, 1)
        if self.config.rtc_train_max_delay:
            frozen = min(guide.frozen, self.config.rtc_train_max_delay, n)
            return target, None, torch.arange(shape[1], device=device)[None] < frozen
        weights = torch.as_tensor(guide.weights(shape[1]), dtype=torch.float32, device=device)
        return target, weights.view(1, -1, 1), None


POLICY = DiffusionPolicy
