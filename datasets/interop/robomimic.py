"""robomimic HDF5: export a protege dataset to it, import one from it.

Layout (robomimic's ``SequenceDataset`` and dataset docs)::

    data/                   attrs total (frames) and env_args (JSON: env_name, env_type, env_kwargs)
      demo_<i>/             attr num_samples
        obs/<key>           observation keys, images uint8 HWC
        next_obs/<key>      obs shifted by one frame (the last one repeated)
        actions             (N, A)
        states              (N, D) the MuJoCo state (protege's sim_state)
        rewards, dones      (N,) 1 on the last frame where the episode succeeded / ended
        <extra>             protege's per-frame extras (timestamp, intervention)
    mask/train, mask/valid  demo names (bytes)

protege's root attrs and per-episode values ride along as JSON attributes (``data`` attr
``protege_attrs``, demo attrs ``seed``, ``success``, ``source``, ...) so an import restores them exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from protege.datasets import schema
from protege.datasets.episode import Episode
from protege.datasets.errors import CorruptDatasetError, DatasetNotFoundError
from protege.datasets.interop.common import FRAME_KEYS, require, staged
from protege.datasets.reader import Dataset
from protege.datasets.sampler import split_episodes
from protege.datasets.schema import Source
from protege.datasets.writer import EpisodeWriter

GYM_ENV_TYPE = 2  # robomimic's EnvType.GYM_TYPE: protege envs are gymnasium envs
VAL_RATIO, SPLIT_SEED = 0.1, 0
_EXTRA_KEYS = ("timestamp", "intervention")  # per-frame keys kept beside actions, not as observations
_META_ATTR = "protege_attrs"


def _env_args(ds: Dataset) -> dict[str, Any]:
    attrs = ds.attrs
    task = str(attrs["task"])
    kwargs = {"robot": attrs["robot"], "cameras": attrs.get("cameras", []), "control_freq": ds.fps,
              "action_space": attrs["action_space"]}
    return {"env_name": f"protege/{task.title().replace('_', '')}-v0", "env_type": GYM_ENV_TYPE, "env_kwargs": kwargs}


def export(ds: Dataset, out: Path, progress: bool = True) -> dict[str, Any]:
    """Write ``ds`` as the robomimic HDF5 file ``out`` (which must not exist)."""
    h5py = require("h5py")
    obs_keys = [key for key in ds.keys if key not in FRAME_KEYS]
    extras = [key for key in ds.keys if key in FRAME_KEYS and key not in ("action", "sim_state")]
    meta = {name: ds.meta(name) for name in ds.meta_names}
    train, valid = split_episodes(ds.num_episodes, VAL_RATIO, SPLIT_SEED)
    with staged(out) as temp, h5py.File(temp, "w") as f:
        data = f.create_group("data")
        for e in tqdm(range(ds.num_episodes), unit="ep", desc="export robomimic", disable=not progress):
            episode = ds.episode(e).data
            length = len(episode["action"])
            demo = data.create_group(f"demo_{e}")
            demo.attrs["num_samples"] = length
            for name, values in meta.items():
                demo.attrs[name] = values[e]
            for group, shift in (("obs", 0), ("next_obs", 1)):
                target = demo.create_group(group)
                for key in obs_keys:
                    values = episode[key]
                    if shift:
                        values = np.concatenate([values[1:], values[-1:]])
                    options = {"compression": "gzip", "compression_opts": 1} if schema.is_image_key(key) else {}
                    target.create_dataset(key, data=values, **options)
            demo.create_dataset("actions", data=episode["action"])
            if "sim_state" in episode:
                demo.create_dataset("states", data=episode["sim_state"])
            done = np.zeros(length, np.int64)
            done[-1] = 1
            demo.create_dataset("dones", data=done)
            demo.create_dataset("rewards", data=done * float(meta["success"][e]))
            for key in extras:
                demo.create_dataset(key, data=episode[key])
        data.attrs["total"] = ds.num_frames
        data.attrs["env_args"] = json.dumps(_env_args(ds))
        data.attrs[_META_ATTR] = json.dumps(schema.user_attrs(ds.attrs))
        mask = f.create_group("mask")
        for name, ids in (("train", train), ("valid", valid)):
            mask.create_dataset(name, data=np.array([f"demo_{i}".encode() for i in ids], dtype="S"))
    return {"output": str(out), "format": "robomimic hdf5", "episodes": ds.num_episodes, "frames": ds.num_frames,
            "obs_keys": obs_keys, "train": len(train), "valid": len(valid)}


def _demo_names(data: Any, src: Path) -> list[str]:
    names = [name for name in data if name.startswith("demo_") and name[5:].isdigit()]
    if not names:
        raise CorruptDatasetError(f"{src} has a data/ group without demo_<i> groups")
    return sorted(names, key=lambda name: int(name[5:]))


def _image_name(key: str) -> str:
    """robomimic's ``agentview_image`` -> ``image_agentview``; protege names stay."""
    if schema.is_image_key(key):
        return key
    return schema.IMAGE_PREFIX + key.removesuffix("_image")


def _is_image(values: Any) -> bool:
    return values.dtype == np.uint8 and values.ndim == 4 and values.shape[-1] == 3


def _foreign_attrs(env_args: dict[str, Any], src: Path) -> dict[str, Any]:
    """Root attrs for a file another tool wrote: what its env_args say, "unknown" where they say nothing."""
    kwargs = env_args.get("env_kwargs") or {}
    robots = kwargs.get("robots")
    controller = kwargs.get("controller_configs")
    return {
        "fps": float(kwargs.get("control_freq") or 20),
        "robot": str((robots[0] if isinstance(robots, list) and robots else robots) or "unknown"),
        "task": str(env_args.get("env_name") or src.stem),
        "action_space": str(controller.get("type", "unknown")) if isinstance(controller, dict) else "unknown",
        "imported_from": "robomimic hdf5",
    }


def import_(src: Path, out: Path, progress: bool = True) -> dict[str, Any]:
    """Build the protege dataset ``out`` from the robomimic HDF5 file ``src``."""
    h5py = require("h5py")
    try:
        f = h5py.File(src, "r")
    except OSError:
        raise DatasetNotFoundError(f"{src} is not an HDF5 file") from None
    with f:
        data = f.get("data")
        if not isinstance(data, h5py.Group):
            raise DatasetNotFoundError(f"{src} has no data/ group: not a robomimic dataset")
        names = _demo_names(data, src)
        protege = _META_ATTR in data.attrs
        env_args = json.loads(data.attrs.get("env_args", "{}"))
        attrs = json.loads(data.attrs[_META_ATTR]) if protege else _foreign_attrs(env_args, src)
        first = data[names[0]]
        if "obs" not in first or "actions" not in first:
            raise CorruptDatasetError(f"{src}: data/{names[0]} lacks obs/ or actions")
        obs = {key: (key if protege or not _is_image(first["obs"][key]) else _image_name(key)) for key in first["obs"]}
        if not protege:
            attrs["cameras"] = [k[len(schema.IMAGE_PREFIX) :] for k in obs.values() if schema.is_image_key(k)]
        frames = 0
        with staged(out) as staging, EpisodeWriter(staging, attrs) as writer:
            for name in tqdm(names, unit="ep", desc="import robomimic", disable=not progress):
                demo = data[name]
                episode = {key: demo["obs"][stored][()] for stored, key in obs.items()}
                episode["action"] = demo["actions"][()]
                if protege:
                    if "states" in demo:
                        episode["sim_state"] = demo["states"][()]
                    episode.update({key: demo[key][()] for key in _EXTRA_KEYS if key in demo})
                else:
                    if "states" in demo and demo["states"].size:
                        episode["states"] = demo["states"][()]
                    if "rewards" in demo:
                        episode["reward"] = demo["rewards"][()].astype(np.float64)
                    episode["timestamp"] = np.arange(len(episode["action"])) / attrs["fps"]
                meta = {key: value.item() if hasattr(value, "item") else value for key, value in demo.attrs.items()}
                meta.pop("num_samples", None)
                meta.pop("model_file", None)
                builtin = {key: meta.pop(key) for key in ("seed", "success", "source", "duration") if key in meta}
                if not protege:
                    meta = {}
                    dones = demo["dones"][()] if "dones" in demo else np.ones(1)
                    builtin = {"seed": int(name[5:]), "success": bool(dones[-1]), "source": Source.HUMAN}
                writer.add_episode(Episode(episode, seed=int(builtin["seed"]), success=bool(builtin["success"]),
                                           source=int(builtin["source"]), meta=meta))
                frames += len(episode["action"])
    return {"output": str(out), "format": "robomimic hdf5", "episodes": len(names), "frames": frames,
            "keys": sorted(episode), "sim_state": "sim_state" in episode}
