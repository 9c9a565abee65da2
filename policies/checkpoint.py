"""Run directories: safetensors weights, JSON config and statistics; loading never unpickles.

RUN/model.safetensors   raw weights            RUN/config.json   :class:`RunMeta`: policy name and config, train
RUN/ema.safetensors     EMA weights (if any)                     config, inputs, action size, dataset attrs, step
RUN/optim.safetensors   optimiser state        RUN/stats.json    normalisation statistics

This module is the one place config.json is written and read. The dataset's attributes (``dataset`` in
config.json, :attr:`RunMeta.env`) are kept as they are: they hold the env spec the policy was trained
in, which the launch layer reads back as an ``EnvSpec`` (``protege.launch.runs``); policies never do.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from protege.datasets.schema import observation_kinds, user_attrs
from protege.policies.base import POLICIES, Policy, Spec, Stats, stats_from_json, stats_to_json
from protege.policies.config import PolicyConfig, TrainConfig, from_dict
from protege.policies.errors import CorruptCheckpointError, IncompatiblePolicyError, PolicyError, RunNotFoundError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Feature:
    """One observation a policy reads: its key, kind (``lowdim``, ``image``, ``privileged``) and per-frame shape."""

    key: str
    kind: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class RunMeta:
    """A training run's config.json, typed.

    ``env`` is the dataset's attributes as recorded (the env spec the policy was trained in, which
    ``protege.launch.runs`` reads as an ``EnvSpec``); ``optimizer_groups`` the optimiser's param groups.
    """

    policy: str
    policy_config: PolicyConfig
    train_config: TrainConfig
    inputs: tuple[Feature, ...]
    action_dim: int
    env: Mapping[str, Any]
    step: int
    world_size: int = 1
    has_ema: bool = False
    optimizer_groups: tuple[Mapping[str, Any], ...] = ()

    @property
    def spec(self) -> Spec:
        """The observation shapes and action size the policy is built for."""
        return Spec({f.key: f.shape for f in self.inputs}, self.action_dim)

    def check_fits(self, obs_shapes: Mapping[str, tuple[int, ...]], action_dim: int) -> None:
        """Refuse, naming the first problem, an env whose observations or action size the policy does not fit."""
        for feature in self.inputs:
            if feature.key not in obs_shapes:
                raise IncompatiblePolicyError(f"checkpoint needs observation {feature.key!r}, which the env does not "
                                              "provide")
            if tuple(obs_shapes[feature.key]) != feature.shape:
                raise IncompatiblePolicyError(f"observation {feature.key!r}: checkpoint expects shape {feature.shape},"
                                              f" the env gives {tuple(obs_shapes[feature.key])}")
        if self.action_dim != int(action_dim):
            raise IncompatiblePolicyError(f"checkpoint predicts {self.action_dim}-D actions, the env takes "
                                          f"{action_dim}-D")

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "policy": self.policy,
            "step": self.step,
            "world_size": self.world_size,
            "policy_config": dataclasses.asdict(self.policy_config),
            "train_config": dataclasses.asdict(self.train_config),
            "inputs": [{"key": f.key, "kind": f.kind, "shape": list(f.shape)} for f in self.inputs],
            "action_dim": self.action_dim,
            "dataset": dict(self.env),
            "has_ema": self.has_ema,
            "optimizer_groups": list(self.optimizer_groups),
        }

    @classmethod
    def from_json(cls, data: Any, path: Path) -> RunMeta:
        """The record in a parsed config.json at ``path``; refuses another format or a missing or malformed field.
        Checkpoints written before ``inputs`` existed (``obs_shapes``) have their kinds inferred from the
        dataset's attributes; an mlp's ``heads=1`` of before ``members`` is read as one member."""
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            found = data.get("format") if isinstance(data, dict) else data
            raise CorruptCheckpointError(f"{path}: unknown checkpoint format {found!r}")
        required = ("policy", "step", "policy_config", "train_config", "action_dim")
        missing = [k for k in required if k not in data] + ([] if {"inputs", "obs_shapes"} & set(data) else ["inputs"])
        if missing:
            raise CorruptCheckpointError(f"{path} lacks {', '.join(missing)}")
        if data["policy"] not in POLICIES:
            raise CorruptCheckpointError(f"{path}: unknown policy {data['policy']!r}")
        try:
            env = dict(data.get("dataset", {}))
            if "inputs" in data:
                inputs = tuple(Feature(str(f["key"]), str(f["kind"]), tuple(int(n) for n in f["shape"]))
                               for f in data["inputs"])
            else:  # written before inputs were kept: shapes only, kinds from the dataset's attributes
                shapes = {str(k): tuple(int(n) for n in v) for k, v in data["obs_shapes"].items()}
                kinds = observation_kinds(env, [*shapes])
                inputs = tuple(Feature(key, kinds.get(key, "lowdim"), shape) for key, shape in shapes.items())
            policy_config = dict(data["policy_config"])
            if data["policy"] == "mlp" and "heads" in policy_config:  # written before members replaced heads
                heads = policy_config.pop("heads")
                if heads != 1:
                    raise CorruptCheckpointError(f"{path}: an mlp with {heads} heads on one trunk, which this version "
                                                 f"no longer builds: train it again with --set members={heads}")
            return cls(
                policy=str(data["policy"]),
                policy_config=from_dict(POLICIES[data["policy"]].config_class, policy_config),
                train_config=from_dict(TrainConfig, data["train_config"]),
                inputs=inputs,
                action_dim=int(data["action_dim"]),
                env=env,
                step=int(data["step"]),
                world_size=int(data.get("world_size", 1)),
                has_ema=bool(data.get("has_ema", False)),
                optimizer_groups=tuple(data.get("optimizer_groups", ())),
            )
        except (AttributeError, KeyError, TypeError, ValueError, PolicyError) as exc:
            raise CorruptCheckpointError(f"{path}: malformed config ({exc})") from None


def _write_atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _write_json(path: Path, data: Any) -> None:
    _write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n"))


def _write_tensors(path: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    plain = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    _write_atomic(path, lambda p: save_file(plain, str(p)))


def optimizer_to_flat(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Optimiser state_dict -> (tensors keyed 'param.name', JSON-able param groups)."""
    tensors = {f"{i}.{name}": value for i, s in state["state"].items() for name, value in s.items()}
    return tensors, state["param_groups"]


def optimizer_from_flat(tensors: Mapping[str, torch.Tensor], groups: list[dict[str, Any]]) -> dict[str, Any]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    run_dir: str | os.PathLike[str],
    policy: Policy,
    train_config: TrainConfig,
    stats: Stats,
    step: int,
    dataset_attrs: Mapping[str, Any],
    ema: Policy | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    world_size: int = 1,
) -> None:
    """Write the run's weights, statistics and config; config.json goes last and names the step and the
    number of data-parallel processes (which, with the per-process batch size, fixes the global batch)."""
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    _write_tensors(run / "model.safetensors", policy.state_dict())
    if ema is not None:
        _write_tensors(run / "ema.safetensors", ema.state_dict())
    groups: list[dict[str, Any]] = []
    if optimizer is not None:
        tensors, groups = optimizer_to_flat(optimizer.state_dict())
        _write_tensors(run / "optim.safetensors", tensors)
    _write_json(run / "stats.json", stats_to_json(stats))
    env = user_attrs(dataset_attrs)
    kinds = observation_kinds(env, [*policy.spec.obs_shapes])
    meta = RunMeta(
        policy=policy.name,
        policy_config=policy.config,
        train_config=train_config,
        inputs=tuple(Feature(k, kinds.get(k, "lowdim"), tuple(v)) for k, v in policy.spec.obs_shapes.items()),
        action_dim=policy.spec.action_dim,
        env=env,
        step=step,
        world_size=world_size,
        has_ema=ema is not None,
        optimizer_groups=tuple(groups),
    )
    _write_json(run / "config.json", meta.to_json())


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise RunNotFoundError(f"{path.parent} is not a protege run: no {path.name}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptCheckpointError(f"corrupt {path}: {exc}") from None


def read_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing or corrupt file is a one-line CorruptCheckpointError."""
    if not path.is_file():
        raise CorruptCheckpointError(f"checkpoint file {path} is missing")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptCheckpointError(f"corrupt checkpoint {path}: {str(exc).splitlines()[0]}") from None


def read_meta(run_dir: str | os.PathLike[str]) -> RunMeta:
    """The run's config.json, checked."""
    path = Path(run_dir) / "config.json"
    return RunMeta.from_json(_read_json(path), path)


def read_run(run_dir: str | os.PathLike[str]) -> tuple[RunMeta, Stats]:
    """The run's config.json (checked) and statistics."""
    run = Path(run_dir)
    meta = read_meta(run)
    try:
        stats = stats_from_json(_read_json(run / "stats.json"))
    except (AttributeError, TypeError, ValueError):
        raise CorruptCheckpointError(f"corrupt {run / 'stats.json'}: expected {{key: {{stat: values}}}}") from None
    return meta, stats


def build_from_meta(meta: RunMeta, stats: Stats) -> Policy:
    return POLICIES[meta.policy](meta.policy_config, meta.spec, stats)


def load_weights(policy: Policy, path: Path) -> None:
    """Load a safetensors file into ``policy``, naming the first missing/unexpected/mis-shaped tensor."""
    tensors = read_tensors(path, policy.device)
    expected = policy.state_dict()
    for key, value in expected.items():
        if key not in tensors:
            raise CorruptCheckpointError(f"{path} lacks tensor {key!r}")
        if tensors[key].shape != value.shape:
            found, expected_shape = tuple(tensors[key].shape), tuple(value.shape)
            raise CorruptCheckpointError(f"{path}: tensor {key!r} has shape {found}, expected {expected_shape}")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise CorruptCheckpointError(f"{path} has unexpected tensor {extra[0]!r}")
    policy.load_state_dict(tensors)


def load_policy(run_dir: str | os.PathLike[str], device: str | torch.device = "cpu", ema: bool = True) -> Policy:
    """The policy saved in ``run_dir`` (EMA weights when present and ``ema``), in eval mode."""
    run = Path(run_dir)
    meta, stats = read_run(run)
    policy = build_from_meta(meta, stats).to(device)
    load_weights(policy, run / ("ema.safetensors" if ema and meta.has_ema else "model.safetensors"))
    policy.eval()
    policy.reset()
    return policy
