"""Run directories: safetensors weights, JSON config and statistics; loading never unpickles.

RUN/model.safetensors   raw weights            RUN/config.json   policy name and config, train config,
RUN/ema.safetensors     EMA weights (if any)                     observation shapes, action size, dataset attrs, step
RUN/optim.safetensors   optimiser state        RUN/stats.json    normalisation statistics

The dataset's attributes (``dataset`` in config.json) are kept as they are: they hold the env spec
the policy was trained in, which the sim reads back (``EnvSpec.from_attrs``); policies never do.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from protege.datasets.schema import user_attrs
from protege.policies.base import POLICIES, Policy, Spec, Stats, stats_from_json, stats_to_json
from protege.policies.config import PolicyConfig, TrainConfig, from_dict
from protege.policies.errors import PolicyError

FORMAT_VERSION = 1


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
    _write_json(
        run / "config.json",
        {
            "format": FORMAT_VERSION,
            "policy": policy.name,
            "step": step,
            "world_size": world_size,
            "policy_config": dataclasses.asdict(policy.config),
            "train_config": dataclasses.asdict(train_config),
            "obs_shapes": {k: list(v) for k, v in policy.spec.obs_shapes.items()},
            "action_dim": policy.spec.action_dim,
            "dataset": user_attrs(dataset_attrs),
            "has_ema": ema is not None,
            "optimizer_groups": groups,
        },
    )


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise PolicyError(f"{path.parent} is not a protege run: no {path.name}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"corrupt {path}: {exc}") from None


def read_tensors(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Load a safetensors file; a missing or corrupt file is a one-line PolicyError."""
    if not path.is_file():
        raise PolicyError(f"checkpoint file {path} is missing")
    try:
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise PolicyError(f"corrupt checkpoint {path}: {str(exc).splitlines()[0]}") from None


def read_meta(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's config.json, checked: its format, and the keys the policy is rebuilt from."""
    path = Path(run_dir) / "config.json"
    meta = _read_json(path)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise PolicyError(f"{path}: unknown checkpoint format {found!r}")
    required = ("policy", "step", "policy_config", "train_config", "obs_shapes", "action_dim")
    missing = [k for k in required if k not in meta]
    if missing:
        raise PolicyError(f"{path} lacks {', '.join(missing)}")
    return meta


def read_run(run_dir: str | os.PathLike[str]) -> tuple[dict[str, Any], Stats]:
    """The run's config.json (checked) and statistics."""
    run = Path(run_dir)
    meta = read_meta(run)
    try:
        stats = stats_from_json(_read_json(run / "stats.json"))
    except (AttributeError, TypeError, ValueError):
        raise PolicyError(f"corrupt {run / 'stats.json'}: expected {{key: {{stat: values}}}}") from None
    return meta, stats


def policy_config(meta: Mapping[str, Any]) -> PolicyConfig:
    return from_dict(POLICIES[meta["policy"]].config_class, meta["policy_config"])


def build_from_meta(meta: Mapping[str, Any], stats: Stats) -> Policy:
    spec = Spec({k: tuple(v) for k, v in meta["obs_shapes"].items()}, int(meta["action_dim"]))
    return POLICIES[meta["policy"]](policy_config(meta), spec, stats)


def load_weights(policy: Policy, path: Path) -> None:
    """Load a safetensors file into ``policy``, naming the first missing/unexpected/mis-shaped tensor."""
    tensors = read_tensors(path, policy.device)
    expected = policy.state_dict()
    for key, value in expected.items():
        if key not in tensors:
            raise PolicyError(f"{path} lacks tensor {key!r}")
        if tensors[key].shape != value.shape:
            found, expected_shape = tuple(tensors[key].shape), tuple(value.shape)
            raise PolicyError(f"{path}: tensor {key!r} has shape {found}, expected {expected_shape}")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise PolicyError(f"{path} has unexpected tensor {extra[0]!r}")
    policy.load_state_dict(tensors)


def load_policy(run_dir: str | os.PathLike[str], device: str | torch.device = "cpu", ema: bool = True) -> Policy:
    """The policy saved in ``run_dir`` (EMA weights when present and ``ema``), in eval mode."""
    run = Path(run_dir)
    meta, stats = read_run(run)
    policy = build_from_meta(meta, stats).to(device)
    use_ema = ema and meta.get("has_ema", False)
    load_weights(policy, run / ("ema.safetensors" if use_ema else "model.safetensors"))
    policy.meta = dict(meta)
    policy.eval()
    policy.reset()
    return policy


def check_compatible(
    policy_meta: Mapping[str, Any],
    env_obs_space_shapes: Mapping[str, tuple[int, ...]],
    action_dim: int,
) -> None:
    """Raise PolicyError naming the first observation or action size of the checkpoint that does not
    fit the env (whoever builds the env compares the env spec the policy was trained in)."""
    for key, shape in policy_meta["obs_shapes"].items():
        if key not in env_obs_space_shapes:
            raise PolicyError(f"checkpoint needs observation {key!r}, which the env does not provide")
        if tuple(env_obs_space_shapes[key]) != tuple(shape):
            raise PolicyError(
                f"observation {key!r}: checkpoint expects shape {tuple(shape)},"
                f" the env gives {tuple(env_obs_space_shapes[key])}"
            )
    if int(policy_meta["action_dim"]) != int(action_dim):
        raise PolicyError(f"checkpoint predicts {policy_meta['action_dim']}-D actions, the env takes {action_dim}-D")
