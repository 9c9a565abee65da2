"""The policy interface, the registry of policies and the normaliser they share."""

from __future__ import annotations

import collections
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from protege.datasets.schema import QUAT_SUFFIX, VEL_SUFFIX, is_image_key
from protege.policies import POLICY_NAMES
from protege.policies.chunking import ChunkExecutor, Chunking, FixedDelay, Guide, ThreadedInference
from protege.policies.config import PolicyConfig, check_policy_config
from protege.policies.errors import PolicyError

Stats = dict[str, dict[str, np.ndarray]]
Batch = dict[str, torch.Tensor]


class PolicyProtocol(Protocol):
    """What a control loop needs from a policy: no torch in sight."""

    def reset(self, seed: int | None = None) -> None: ...

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray: ...


@dataclass(frozen=True)
class Spec:
    """Shapes a policy was built for: per-frame observation shapes and the action size."""

    obs_shapes: dict[str, tuple[int, ...]]
    action_dim: int

    @property
    def image_keys(self) -> list[str]:
        return [k for k in self.obs_shapes if is_image_key(k)]

    @property
    def lowdim_keys(self) -> list[str]:
        return [k for k in self.obs_shapes if not is_image_key(k)]

    @property
    def quaternion_keys(self) -> list[str]:
        """Low-dim keys holding unit quaternions (w, x, y, z), one or more per key."""
        return [k for k in self.lowdim_keys
                if k.endswith(QUAT_SUFFIX) and len(self.obs_shapes[k]) == 1 and self.obs_shapes[k][0] % 4 == 0]

    @property
    def velocity_keys(self) -> list[str]:
        return [k for k in self.lowdim_keys if k.endswith(VEL_SUFFIX)]

    @property
    def lowdim_dim(self) -> int:
        """Width of the low-dim features: each quaternion becomes 6 rotation features."""
        quaternions = self.quaternion_keys
        sizes = {k: int(np.prod(self.obs_shapes[k])) for k in self.lowdim_keys}
        return sum(n // 4 * 6 if k in quaternions else n for k, n in sizes.items())


def committed_prefix(batch: int, horizon: int, max_delay: int, device: torch.device) -> torch.Tensor:
    """Training-time real-time chunking: a (batch, horizon) mask of each training chunk's committed first d
    actions, d = 0 for half the chunks (an episode's first chunk, and every chunk of sync, naive and
    ensemble, starts from nothing; with d ~ U{0..K} for all, six in seven carried a prefix and the policy
    fell from 61% to 25% on push at no delay) and d ~ U{1..K} for the rest."""
    delay = torch.randint(1, max_delay + 1, (batch, 1), device=device)
    delay = delay * (torch.rand(batch, 1, device=device) < 0.5)
    return torch.arange(horizon, device=device) < delay


def quat_to_rot6d(q: torch.Tensor) -> torch.Tensor:
    """(..., 4k) quaternions (w, x, y, z) -> (..., 6k): the first two columns of each rotation matrix.

    Unlike quaternions, these features are continuous and the same for q and -q: an end effector
    pointing down sits near w = 0, where the quaternion's sign flips back and forth (Zhou et al. 2019).
    """
    q = q.unflatten(-1, (-1, 4))
    w, x, y, z = (q / q.norm(dim=-1, keepdim=True).clamp_min(1e-8)).unbind(-1)
    rot6d = torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y),
                         2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)], dim=-1)
    return rot6d.flatten(-2)


class Normalizer(nn.Module):
    """Per-key affine normalisation from dataset statistics; images become float CHW in [0, 1].

    Low-dim keys use mean/std, the action uses ``action_norm`` ("minmax" maps [min, max] to [-1, 1]);
    ``quaternion_keys`` become rotation features in [-1, 1] (``quat_to_rot6d``) and need no statistics.
    Buffers are not saved with the weights: they are rebuilt from stats.json on load.
    """

    def __init__(
        self, stats: Stats, lowdim_keys: list[str], action_norm: str, quaternion_keys: list[str] | None = None
    ) -> None:
        super().__init__()
        self.quaternion_keys = set(quaternion_keys or [])
        if action_norm not in ("minmax", "meanstd"):
            raise PolicyError(f"action_norm must be minmax or meanstd, got {action_norm!r}")
        for key in [*(k for k in lowdim_keys if k not in self.quaternion_keys), "action"]:
            if key not in stats:
                raise PolicyError(f"normalisation statistics lack key {key!r}")
            s = {k: np.asarray(v, dtype=np.float64) for k, v in stats[key].items()}
            if key == "action" and action_norm == "minmax":
                span = s["max"] - s["min"]
                offset, scale = (s["max"] + s["min"]) / 2, np.where(span < 1e-6, 1.0, 2.0 / np.maximum(span, 1e-6))
            else:
                offset, scale = s["mean"], np.where(s["std"] < 1e-6, 1.0, 1.0 / np.maximum(s["std"], 1e-6))
            self.register_buffer(f"{key}_offset", torch.as_tensor(offset, dtype=torch.float32), persistent=False)
            self.register_buffer(f"{key}_scale", torch.as_tensor(scale, dtype=torch.float32), persistent=False)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        if is_image_key(key):  # (..., H, W, 3) uint8 -> (..., 3, H, W) float in [0, 1]
            return x.movedim(-1, -3).float().div_(255.0)
        if key in self.quaternion_keys:
            return quat_to_rot6d(x.float())
        return (x.float() - getattr(self, f"{key}_offset")) * getattr(self, f"{key}_scale")

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x / getattr(self, f"{key}_scale") + getattr(self, f"{key}_offset")


class Policy(nn.Module):
    """Base of every policy: training loss via ``forward(batch)``, control via ``reset``/``act``.

    ``forward`` takes raw (unnormalised) batches shaped like the sampler's output, on the model's device,
    and returns a dict with a scalar ``loss``. ``predict_chunk`` maps raw observation windows
    ``(B, n_obs_steps, ...)`` to ``(B, horizon, action_dim)`` actions in dataset units; policies that
    ``follows_guides`` also take a :class:`~protege.policies.chunking.Guide` (real-time chunking).
    ``act`` keeps the observation history; its :class:`~protege.policies.chunking.ChunkExecutor` decides
    when to predict and which action of which chunk runs (:meth:`set_chunking`).
    """

    name: ClassVar[str]
    config_class: ClassVar[type[PolicyConfig]]

    def __init__(self, config: PolicyConfig, spec: Spec, stats: Stats) -> None:
        super().__init__()
        if not 1 <= config.n_action_steps <= config.horizon:
            raise PolicyError(f"n_action_steps={config.n_action_steps} must be in [1, horizon={config.horizon}]")
        check_policy_config(config)
        self.config = config
        self.spec = spec
        self.normalizer = Normalizer(stats, spec.lowdim_keys, config.action_norm, spec.quaternion_keys)
        self.doubt: float | None = None  # the policy's own uncertainty about its last prediction (None: it has none)
        self._history: collections.deque[dict[str, torch.Tensor]] = collections.deque(maxlen=config.n_obs_steps)
        self.executor = ChunkExecutor(FixedDelay(self.chunk, 0), self.default_chunking, config.horizon,
                                      config.n_action_steps)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- shared helpers ---------------------------------------------------------------------------
    def lowdim_features(self, batch: Batch) -> torch.Tensor:
        """Normalised low-dim observations concatenated: (B, T, lowdim_dim). In training, a
        ``velocity_dropout`` share of the samples read zero velocities."""
        if self.training and self.config.velocity_dropout > 0 and self.spec.velocity_keys:
            batch = self._drop_velocities(batch)
        parts = [self.normalizer.normalize(k, batch[k]).flatten(2) for k in self.spec.lowdim_keys]
        if not parts:  # images only
            ref = batch[self.spec.image_keys[0]]
            return torch.zeros(*ref.shape[:2], 0, device=ref.device)
        return torch.cat(parts, dim=-1)

    def _drop_velocities(self, batch: Batch) -> Batch:
        """``batch`` with the velocities of a ``velocity_dropout`` share of its samples (whole windows) zeroed."""
        first = batch[self.spec.velocity_keys[0]]
        moving = torch.rand(first.shape[0], 1, 1, device=first.device) >= self.config.velocity_dropout
        return {**batch, **{k: batch[k] * moving.to(batch[k].dtype) for k in self.spec.velocity_keys}}

    @staticmethod
    def masked_mean(error: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Mean of a (B, H, A) error over the actions that are not padding past an episode's end."""
        mask = (~batch["action_is_pad"]).unsqueeze(-1).to(error.dtype)
        return (error * mask).sum() / (mask.sum() * error.shape[-1]).clamp_min(1.0)

    # -- interface every policy implements ---------------------------------------------------------
    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def predict_chunk(self, obs: Batch, guide: Guide | None = None) -> torch.Tensor:
        raise NotImplementedError

    @property
    def follows_guides(self) -> bool:
        """Whether ``predict_chunk`` makes its chunk agree with a guide (what ``rtc`` chunking needs)."""
        return False

    @property
    def default_chunking(self) -> Chunking:
        """How ``act`` runs chunks unless :meth:`set_chunking` says otherwise: each one's first
        ``n_action_steps`` actions, then the next."""
        return Chunking("sync")

    def chunking(self, strategy: str | None, delay: int | None) -> Chunking:
        """Chunking with ``strategy`` at ``delay`` ticks (None: measured). Without a strategy: the policy's
        own with no delay, else the best it has: ``rtc`` where it follows guides, ``ensemble`` where it
        ensembles, else ``naive``."""
        own = self.default_chunking
        if strategy is None and delay == 0:
            return own
        if strategy is None:
            strategy = "rtc" if self.follows_guides else "ensemble" if own.strategy == "ensemble" else "naive"
        return Chunking(strategy, delay, own.ensemble_coeff)

    # -- control loop --------------------------------------------------------------------------------
    def set_chunking(self, chunking: Chunking, hz: float | None = None,
                     idle: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """Run chunks with ``chunking``: a fixed delay in ticks, or (``delay`` None) in a worker thread, the
        delay measured in ticks of ``hz``. ``idle`` maps an action to one that holds the arm still."""
        if chunking.strategy == "rtc" and self.config.horizon > 1 and not self.follows_guides:
            raise PolicyError(f"{self.name} cannot follow a guide: --chunking rtc needs diffusion, or act trained "
                              "with --set rtc_train_max_delay=K")
        if chunking.delay is None and hz is None:
            raise PolicyError("a measured inference delay needs the control rate (hz)")
        inference = FixedDelay(self.chunk, chunking.delay) if chunking.delay is not None else (
            ThreadedInference(self.chunk, hz or 0.0))
        self.close()
        self.executor = ChunkExecutor(inference, chunking, self.config.horizon, self.config.n_action_steps, idle)

    @property
    def chunk_starts(self) -> list[int]:
        """Ticks of the episode at which a new chunk took over."""
        return self.executor.chunk_starts

    def close(self) -> None:
        """Stop the inference thread, if chunks run in one."""
        if isinstance(self.executor.inference, ThreadedInference):
            self.executor.inference.close()

    def reset(self, seed: int | None = None) -> None:
        """Forget the observation history, the chunks and the last doubt (call at each episode start); ``seed``
        seeds the policy's own randomness for the episode, where it has any."""
        self._history.clear()
        self.executor.reset()
        self.doubt = None

    def observe(self, obs: Mapping[str, np.ndarray]) -> Batch:
        """Push one observation into the history; return the window (1, n_obs_steps, ...) on device."""
        frame = {}
        for key, shape in self.spec.obs_shapes.items():
            if key not in obs:
                raise PolicyError(f"observation lacks key {key!r} that the policy needs")
            value = np.asarray(obs[key])
            if value.shape != shape:
                raise PolicyError(f"observation {key!r} has shape {value.shape}, the policy expects {shape}")
            frame[key] = torch.tensor(value)  # a copy: envs may reuse their observation buffers
        while len(self._history) < self.config.n_obs_steps - 1:  # pad the start with the first frame
            self._history.append(frame)
        self._history.append(frame)
        device = self.device
        return {k: torch.stack([f[k] for f in self._history])[None].to(device) for k in frame}

    def act(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """One action (float64, shape (action_dim,)) for the current observation; with ``binary_gripper``
        its gripper command (the last entry) is the nearer of open (0) and closed (1)."""
        action = self.executor.step(self.observe(obs))
        if self.config.binary_gripper:
            action[-1] = float(action[-1] >= 0.5)
        return action

    def chunk(self, window: Batch, guide: Guide | None = None) -> np.ndarray:
        """One (horizon, action_dim) chunk in dataset units; chunk[0] is for the window's last tick. Runs in
        the inference thread too, so it sets its own (thread-local) inference mode."""
        with torch.inference_mode():
            return self.predict_chunk(window, guide)[0].double().cpu().numpy()


class _Registry(Mapping[str, type[Policy]]):
    """``POLICIES[name]`` imports ``protege.policies.<name>.model`` on first use."""

    _names = POLICY_NAMES

    def __getitem__(self, name: str) -> type[Policy]:
        if name not in self._names:
            raise PolicyError(f"unknown policy {name!r} (choose from {', '.join(self._names)})")
        return importlib.import_module(f"protege.policies.{name}.model").POLICY

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


POLICIES: Mapping[str, type[Policy]] = _Registry()


def build_policy(name: str, config: PolicyConfig, spec: Spec, stats: Stats) -> Policy:
    """Instantiate a registered policy."""
    return POLICIES[name](config, spec, stats)


def stats_to_json(stats: Stats) -> dict[str, dict[str, Any]]:
    return {k: {n: np.asarray(v).tolist() for n, v in s.items()} for k, s in stats.items()}


def stats_from_json(data: dict[str, dict[str, Any]]) -> Stats:
    return {k: {n: np.asarray(v, dtype=np.float64) for n, v in s.items()} for k, s in data.items()}
