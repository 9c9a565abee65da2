"""Typed configs: the base every policy config extends, the trainer config, and ``--set`` overrides."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from protege.policies.errors import PolicyError

INPUT_SETS = ("state", "vision")


@dataclass
class PolicyConfig:
    """Fields every policy shares. ``obs_keys`` empty means: the ``inputs`` set, drawn from the dataset."""

    obs_keys: list[str] = field(default_factory=list)
    # What the policy sees (with obs_keys empty): "state", every low-dim observation, the simulator's
    # object and goal state included; "vision", every recorded camera and the arm's own sensing (joint
    # positions, end-effector pose, gripper; no velocities), never an observation of kind "privileged".
    inputs: str = "state"
    n_obs_steps: int = 1  # observations the policy sees (current one last)
    horizon: int = 1  # actions predicted per call
    n_action_steps: int = 1  # predicted actions executed before predicting again
    action_norm: str = "minmax"  # "minmax" to [-1, 1] or "meanstd"
    lr: float = 1e-4
    weight_decay: float = 1e-6
    # The last action is the gripper, which every demonstrator (keys, buttons, scripted experts) opens (0)
    # or closes (1): act() sends the nearer of the two. A regressed in-between command half-closes the
    # fingers in the air, where they read like fingers holding a cube (docs/experiments.md).
    binary_gripper: bool = True
    # Share of training samples whose velocities (``*_vel`` keys) read zero, as if the arm were at rest.
    # An expert's motion is smooth, so its velocity predicts its next action: a policy that sees
    # velocities copies its own motion and, once it slows where no demo stood still, stays put
    # (the copycat problem; docs/experiments.md).
    velocity_dropout: float = 0.0
    # Colour jitter of camera images in training (:func:`~protege.policies.encoders.color_jitter`; 0: off):
    # each image's contrast and channel gains within 1 +- this, its brightness within +- half of it. A policy
    # trained on randomised demos memorises their looks; jitter widens them (docs/experiments.md).
    color_jitter: float = 0.2

    @property
    def knows_doubt(self) -> bool:
        """Whether the policy reports its own uncertainty (``Policy.doubt``); none does by default."""
        return False

    def input_keys(self, kinds: dict[str, str]) -> list[str]:
        """``obs_keys``, or the ``inputs`` set drawn from a dataset's
        :attr:`~protege.datasets.Dataset.observation_kinds` (key -> kind, in recorded order)."""
        if self.inputs not in INPUT_SETS:
            raise PolicyError(f"unknown inputs {self.inputs!r} (choose from {', '.join(INPUT_SETS)})")
        if self.obs_keys:
            return list(self.obs_keys)
        if self.inputs == "state":
            return [k for k, kind in kinds.items() if kind in ("lowdim", "privileged")]
        cameras = sorted(k for k, kind in kinds.items() if kind == "image")
        if not cameras:
            raise PolicyError("inputs=vision needs a dataset with cameras (record with --cameras front,wrist)")
        return cameras + [k for k, kind in kinds.items() if kind == "lowdim" and not k.endswith("_vel")]


def check_policy_config(config: PolicyConfig) -> None:
    """Refuse, in one line, a setting no training can use: a learning rate that is not a positive number,
    a negative weight decay or loss weight, a dropout outside [0, 1), a count, window or width below 1 (every
    whole-number field but the committed prefix, which may be 0), an empty list of widths, a committed prefix
    that is negative or fills the whole chunk. Relations between fields are each model's to check."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        name, value = f.name, getattr(config, f.name)
        if hints[name] is int and name != "rtc_train_max_delay" and value < 1:
            raise PolicyError(f"{name} must be at least 1, got {value}")
        if hints[name] == list[int] and (not value or any(not isinstance(w, int) or w < 1 for w in value)):
            raise PolicyError(f"{name} must list widths of at least 1, got {value}")
        if name in ("kl_weight", "temporal_ensemble_coeff") and value is not None and not (
                math.isfinite(value) and value >= 0):
            raise PolicyError(f"{name} must be a number >= 0, got {value}")
        if name == "lr" and not (math.isfinite(value) and value > 0):
            raise PolicyError(f"lr must be a positive number, got {value}")
        if name == "weight_decay" and not (math.isfinite(value) and value >= 0):
            raise PolicyError(f"weight_decay must be >= 0, got {value}")
        if name == "velocity_dropout" and not 0 <= value <= 1:  # 1: every sample reads zero velocities
            raise PolicyError(f"velocity_dropout must be in [0, 1], got {value}")
        if name == "color_jitter" and not 0 <= value < 1:
            raise PolicyError(f"color_jitter must be in [0, 1), got {value}")
        if name == "image_grid" and value is not None and (not isinstance(value, int) or value < 1):
            raise PolicyError(f"image_grid must be a whole number >= 1 (tokens per side), got {value}")
        if name == "dropout" and not 0 <= value < 1:
            raise PolicyError(f"dropout must be in [0, 1), got {value}")
        if name == "rtc_train_max_delay" and not 0 <= value < config.horizon:
            raise PolicyError(f"rtc_train_max_delay must be 0 to horizon - 1 = {config.horizon - 1} actions, "
                              f"got {value}")


@dataclass
class TrainConfig:
    """How to train: data, optimisation, schedule, logging, checkpointing."""

    dataset: str = ""
    out: str = ""
    policy: str = "mlp"
    steps: int = 20_000
    batch_size: int = 64
    warmup_steps: int = 500
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # 0 disables EMA
    # Share of each batch drawn from episodes recorded while a policy ran (DAgger's labelled rollouts,
    # a person's interventions), the rest from demonstrations; None: every frame alike. IWR uses 0.5.
    correction_share: float | None = None
    val_ratio: float = 0.05
    val_every: int = 1000
    val_batches: int = 8
    save_every: int = 5000
    log_every: int = 50
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    cpu_threads: int = 0  # torch threads on CPU; 0: half the cores (1 on a 2-core machine, see resolve_threads)
    compile: bool = False  # torch.compile on CUDA
    device_data: bool = True  # on CUDA keep the dataset on the GPU; false: prefetch thread, pinned memory
    amp: bool = True  # bf16 autocast on CUDA
    progress: bool = True

    def check(self) -> None:
        """Refuse counts that would train nothing or divide by zero (``--steps 0``, ``--set val_every=0``)."""
        for name in ("steps", "batch_size", "val_every", "save_every", "log_every"):
            value = getattr(self, name)
            if value < 1:
                raise PolicyError(f"{name} must be at least 1, got {value}")
        if self.warmup_steps < 0 or not 0 <= self.val_ratio < 1:
            raise PolicyError(f"warmup_steps must be >= 0 and val_ratio in [0, 1), got {self.warmup_steps} and "
                              f"{self.val_ratio}")


def _parse(value: str, hint: Any, key: str) -> Any:
    """Convert a command-line string to the annotated type of a config field."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value.lower() in ("none", "null", ""):
            return None
        return _parse(value, args[0], key)
    if origin is list:
        (item,) = typing.get_args(hint)
        return [_parse(v.strip(), item, key) for v in value.split(",") if v.strip()]
    if hint is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise PolicyError(f"--set {key}: expected true or false, got {value!r}")
    try:
        return hint(value)
    except ValueError:
        raise PolicyError(f"--set {key}: expected {hint.__name__}, got {value!r}") from None


def apply_overrides(configs: list[Any], overrides: list[str]) -> None:
    """Apply ``key=value`` strings to the first config (dataclass instance) that has the field."""
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PolicyError(f"--set expects key=value, got {item!r}")
        for cfg in configs:
            hints = typing.get_type_hints(type(cfg))
            if key in {f.name for f in dataclasses.fields(cfg)}:
                setattr(cfg, key, _parse(value.strip(), hints[key], key))
                break
        else:
            known = sorted({f.name for cfg in configs for f in dataclasses.fields(cfg)})
            raise PolicyError(f"unknown config key {key!r} (known: {', '.join(known)})")


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a config dataclass from saved JSON, refusing unknown fields."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise PolicyError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    return cls(**data)
