"""Config of the diffusion policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from protege.policies.config import PolicyConfig


@dataclass
class DiffusionConfig(PolicyConfig):
    """On low-dim lift with 100 scripted demos, 5,000 steps (batch 64; ~6 min on one CPU core) succeed in
    49-50/50 rollouts (with 10 DDIM steps and 8 executed actions, the defaults before session 16)."""

    n_obs_steps: int = 2
    horizon: int = 16  # must be divisible by 2 ** (len(down_dims) - 1)
    n_action_steps: int = 4  # 8 (Chi et al.'s) loses on push and stack: an open-loop push cannot be taken back
    lr: float = 1e-3  # for this small U-Net (1e-4 is Chi et al.'s, for a 250M one)
    weight_decay: float = 1e-6
    down_dims: list[int] = field(default_factory=lambda: [64, 128, 256])
    kernel_size: int = 3  # 5 in Chi et al.; 3 keeps a solver step near 4 ms on one CPU core
    n_groups: int = 8
    step_embed_dim: int = 128
    train_timesteps: int = 100
    inference_steps: int = 5  # DPM-Solver++(2M) steps: 21-24 ms a chunk on one CPU core
    # > 0: learn to continue a committed prefix of up to this many actions (training-time real-time chunking)
    rtc_train_max_delay: int = 0
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # image backbone, if any cameras
    image_dim: int = 64
