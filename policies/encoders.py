"""Building blocks shared by the policies: a small ResNet-style image encoder and MLPs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def mlp(in_dim: int, hidden: list[int], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
    """Linear-LayerNorm-ReLU stack with a linear head."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.LayerNorm(width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class EnsembleMLP(nn.Module):
    """``members`` independent :func:`mlp` networks (each its own weights and LayerNorm affine) evaluated as one
    batched product per layer: (B, in_dim) -> (members, B, out_dim)."""

    def __init__(self, members: int, in_dim: int, hidden: list[int], out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        dims = list(zip([in_dim, *hidden], [*hidden, out_dim]))  # nn.Linear's initialisation, member by member
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(members, a, b).uniform_(-a**-0.5, a**-0.5))
                                        for a, b in dims)
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(members, 1, b).uniform_(-a**-0.5, a**-0.5))
                                       for a, b in dims)
        self.norm_weights = nn.ParameterList(nn.Parameter(torch.ones(members, 1, w)) for w in hidden)
        self.norm_biases = nn.ParameterList(nn.Parameter(torch.zeros(members, 1, w)) for w in hidden)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.expand(len(self.weights[0]), *x.shape)
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(bias, h, weight)
            if i < len(self.norm_weights):
                h = F.relu(F.layer_norm(h, h.shape[-1:]) * self.norm_weights[i] + self.norm_biases[i])
                h = F.dropout(h, self.dropout, self.training)
        return h


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4) or 1, channels)


class ResBlock(nn.Module):
    """Basic residual block (two 3x3 convs) with GroupNorm, which behaves the same under EMA and batch size 1."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = _group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = _group_norm(c_out)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _group_norm(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)) + self.skip(x))


class SpatialSoftmax(nn.Module):
    """Keypoints: softmax over each feature map, expected (x, y) per keypoint -> (N, 2K)."""

    def __init__(self, channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, num_keypoints, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        n, k, h, w = x.shape
        ys, xs = torch.meshgrid(
            torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype),
            torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype),
            indexing="ij",
        )
        attn = x.flatten(2).softmax(-1)  # (N, K, HW)
        return torch.cat([(attn * xs.flatten()).sum(-1), (attn * ys.flatten()).sum(-1)], dim=-1)


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """DrQ augmentation: replicate-pad by ``pad`` pixels and crop back at a random integer offset per image."""
    n, c, h, w = x.shape
    x = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    offset = torch.randint(0, 2 * pad + 1, (n, 2), device=x.device)
    rows = (offset[:, :1] + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    cols = (offset[:, 1:] + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
    return x.gather(2, rows).gather(3, cols)


def color_jitter(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Photometric augmentation of images in [0, 1]: per image, contrast about its mean and a gain per channel
    each scaled by 1 +- ``strength``, and brightness shifted by +- ``strength`` / 2 (uniform draws)."""
    n = x.shape[0]

    def draw(*shape: int) -> torch.Tensor:
        return (torch.rand(*shape, device=x.device, dtype=x.dtype) * 2 - 1) * strength

    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + draw(n, 1, 1, 1)) + mean
    return (x * (1 + draw(n, x.shape[1], 1, 1)) + 0.5 * draw(n, 1, 1, 1)).clamp(0, 1)


class ConvTrunk(nn.Module):
    """ResNet-style CNN: strided stem, one residual block per width (all strided but the last).

    Maps float images in [0, 1] (N, 3, H, W) to a (N, widths[-1], H/2**len(widths), ...) feature map;
    colour-jitter and random-shift augmentation while training.
    """

    def __init__(self, widths: list[int], shift_pad: int = 4, jitter: float = 0.0) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), _group_norm(widths[0]), nn.ReLU())
        strides = [2] * (len(widths) - 1) + [1]  # 128px -> 64 (stem) -> ... -> 8
        self.stages = nn.Sequential(*[ResBlock(a, b, s) for a, b, s in zip(widths[:1] + widths[:-1], widths, strides)])
        self.shift_pad, self.jitter = shift_pad, jitter
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.jitter > 0:
            x = color_jitter(x, self.jitter)
        if self.training and self.shift_pad > 0:
            x = random_shift(x, self.shift_pad)
        return self.stages(self.stem(x - 0.5))


class ImageEncoder(nn.Module):
    """ConvTrunk + spatial-softmax keypoints + linear: one feature vector per image."""

    def __init__(self, widths: list[int], out_dim: int, num_keypoints: int = 32, jitter: float = 0.0) -> None:
        super().__init__()
        self.trunk = ConvTrunk(widths, jitter=jitter)
        self.pool = SpatialSoftmax(widths[-1], num_keypoints)
        self.head = nn.Sequential(nn.Linear(2 * num_keypoints, out_dim), nn.LayerNorm(out_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.trunk(x)))


class ObsEncoder(nn.Module):
    """One feature vector per time step from low-dim features and one ImageEncoder per camera."""

    def __init__(self, image_keys: list[str], lowdim_dim: int, widths: list[int], image_dim: int,
                 jitter: float = 0.0) -> None:
        super().__init__()
        self.image_keys = image_keys
        self.cameras = nn.ModuleDict({k: ImageEncoder(widths, image_dim, jitter=jitter) for k in image_keys})
        self.out_dim = lowdim_dim + image_dim * len(image_keys)

    def forward(self, images: dict[str, torch.Tensor], lowdim: torch.Tensor) -> torch.Tensor:
        """images: {key: (B, T, 3, H, W) float}; lowdim: (B, T, D) -> (B, T, out_dim)."""
        b, t = lowdim.shape[:2]
        feats = [self.cameras[k](images[k].flatten(0, 1)).view(b, t, -1) for k in self.image_keys]
        return torch.cat([lowdim, *feats], dim=-1)
