"""The training loop: AdamW, warm-up + cosine schedule, EMA, bf16 autocast on CUDA, DDP under torchrun, checkpoints."""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from protege.datasets import Dataset, SequenceSampler, compute_stats, split_episodes
from protege.datasets.schema import is_image_key
from protege.datasets.storage import is_local, normalize_path
from protege.policies import checkpoint, distributed
from protege.policies.base import POLICIES, Batch, Policy, Spec, Stats, build_policy
from protege.policies.checkpoint import RunMeta
from protege.policies.config import PolicyConfig, TrainConfig
from protege.policies.data import DeviceLoader, PrefetchLoader, correction_weights
from protege.policies.errors import PolicyError


@dataclass
class RunSummary:
    run_dir: str
    policy: str
    device: str
    steps: int
    first_loss: float
    train_loss: float
    val_loss: float | None
    samples_per_s: float
    data_wait_share: float
    seconds: float


class EMA:
    """Exponential moving average of the weights, with the usual warm-up of the decay."""

    def __init__(self, policy: Policy, decay: float) -> None:
        self.model = copy.deepcopy(policy).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, policy: Policy, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        ema, live = list(self.model.parameters()), list(policy.parameters())
        torch._foreach_lerp_(ema, live, 1.0 - decay)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def resolve_threads(requested: int, processes: int = 1) -> int:
    """Torch's intra-op threads for CPU training: ``requested``, or half the cores shared among the
    node's ``processes`` when 0.

    All cores is torch's default and the worst choice on a shared or small machine: with another
    busy process on 2 cores, 2 threads make each small op ~100x slower (the threads wait on each
    other), while 1 thread runs at full speed; half leaves a core for data loading and rollouts.
    """
    return requested if requested > 0 else max(1, (os.cpu_count() or 1) // 2 // processes)


def resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PolicyError("--device cuda requested but CUDA is not available")
        return torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    if name != "cpu":
        raise PolicyError(f"unknown device {name!r} (auto, cpu, cuda or cuda:N)")
    return torch.device("cpu")


def resolve_obs_keys(ds: Dataset, policy: str, config: PolicyConfig) -> list[str]:
    """The policy's observation keys, checked against the dataset."""
    keys = config.input_keys(ds.observation_kinds)
    missing = [k for k in [*keys, "action"] if k not in ds]
    if missing:
        raise PolicyError(f"dataset {ds.path} lacks key(s) {', '.join(missing)} needed by policy {policy}")
    if not keys:
        raise PolicyError(f"dataset {ds.path} has no observation keys policy {policy} can use ({', '.join(ds.keys)})")
    return keys


@torch.no_grad()
def evaluate(policy: Policy, batches: list[Batch], amp: bool) -> float:
    """Mean loss over fixed batches with a fixed noise seed, so numbers are comparable across steps."""
    was_training = policy.training
    policy.eval()
    with torch.random.fork_rng(devices=[policy.device] if policy.device.type == "cuda" else []):
        torch.manual_seed(0)
        with torch.autocast(policy.device.type, dtype=torch.bfloat16, enabled=amp):
            loss = float(np.mean([policy(b)["loss"].item() for b in batches]))
    policy.train(was_training)
    return loss


def _data_spec(
    ds: Dataset, config: TrainConfig, pcfg: PolicyConfig, run: Path, resume: bool
) -> tuple[list[str], Spec, Stats, RunMeta | None]:
    """Observation keys, spec, statistics and (when resuming) the saved run's config.json."""
    if not resume:
        keys = resolve_obs_keys(ds, config.policy, pcfg)
        spec = Spec({k: tuple(ds.shape(k)[1:]) for k in keys}, int(ds.shape("action")[1]))
        return keys, spec, compute_stats(ds, [k for k in keys if not is_image_key(k)] + ["action"]), None
    meta, stats = checkpoint.read_run(run)
    spec = meta.spec
    keys = resolve_obs_keys(ds, config.policy, dataclasses.replace(pcfg, obs_keys=list(spec.obs_shapes)))
    for key in [*keys, "action"]:
        expected = spec.obs_shapes.get(key, (spec.action_dim,))
        if ds.shape(key)[1:] != expected:
            raise PolicyError(f"dataset key {key!r} has shape {ds.shape(key)[1:]}, the run was trained on {expected}")
    return keys, spec, stats, meta


def _optimizer(policy: Policy, pcfg: PolicyConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and norm parameters (an ensemble's are stacked per member)."""
    decay, no_decay = [], []
    for name, p in policy.named_parameters():
        (no_decay if p.ndim < 2 or "norm" in name or "bias" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": pcfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=pcfg.lr, fused=device.type == "cuda")


def _restore(
    run: Path, meta: RunMeta, policy: Policy, ema: EMA | None, optimizer: torch.optim.Optimizer
) -> None:
    checkpoint.load_weights(policy, run / "model.safetensors")
    if ema is not None:
        if meta.has_ema:
            checkpoint.load_weights(ema.model, run / "ema.safetensors")
        else:
            ema.model.load_state_dict(policy.state_dict())
    flat = checkpoint.read_tensors(run / "optim.safetensors", policy.device)
    optimizer.load_state_dict(checkpoint.optimizer_from_flat(flat, [dict(g) for g in meta.optimizer_groups]))


def _val_batches(ds: Dataset, keys: list[str], pcfg: PolicyConfig, episodes: np.ndarray, config: TrainConfig,
                 batch_size: int, device: torch.device) -> list[Batch]:
    """Fixed validation batches of ``batch_size`` (the global batch) drawn once from the held-out episodes."""
    if not len(episodes):
        return []
    sampler = SequenceSampler(ds, keys, "action", pcfg.n_obs_steps, pcfg.horizon, episodes=episodes)
    rng = np.random.default_rng(config.seed)
    size = min(batch_size, len(sampler))
    return [
        {k: torch.from_numpy(v).to(device) for k, v in sampler.sample(rng.integers(0, len(sampler), size)).items()}
        for _ in range(config.val_batches)
    ]


def train(config: TrainConfig, policy_config: PolicyConfig | None = None, resume: bool = False) -> RunSummary:
    """Train ``config.policy`` on ``config.dataset`` into ``config.out``; continue a saved run if ``resume``.

    Under torchrun every process trains on ``config.batch_size`` windows of the global batch
    (see :mod:`protege.policies.distributed`); rank 0 alone validates, logs and saves.
    """
    config.check()
    if is_local(config.dataset):  # the run records where its data is, so --resume works from any directory
        config = dataclasses.replace(config, dataset=os.path.abspath(normalize_path(config.dataset)))
    world = distributed.world_from_env()
    device = resolve_device(config.device, world.local_rank)
    distributed.init(world, device)
    finished = False
    try:
        summary = _train(config, policy_config, resume, world, device)
        finished = True
        return summary
    finally:
        distributed.close(world, finished)


def _train(
    config: TrainConfig, policy_config: PolicyConfig | None, resume: bool, world: distributed.World,
    device: torch.device,
) -> RunSummary:
    main = world.main
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    amp = config.amp and device.type == "cuda"
    if device.type == "cpu":
        torch.set_num_threads(resolve_threads(config.cpu_threads, world.local_size))
    run = Path(config.out)
    if not resume and (run / "config.json").exists():
        raise PolicyError(f"{run} already holds a run: continue it with --resume {run} or choose a new --out")

    ds = Dataset(config.dataset)
    if not ds.num_episodes:
        raise PolicyError(f"{ds.path} has no episodes to train on")
    pcfg = policy_config or POLICIES[config.policy].config_class()
    keys, spec, stats, meta = _data_spec(ds, config, pcfg, run, resume)
    if meta is not None:
        distributed.check_resume(meta, world.size)
    pcfg = dataclasses.replace(pcfg, obs_keys=keys)
    start_step = meta.step if meta is not None else 0
    seed = config.seed + 7919 * start_step  # a resumed run draws fresh but reproducible batches
    torch.manual_seed(seed)
    policy = build_policy(config.policy, pcfg, spec, stats).to(device)
    if world.rank:  # the same initial weights and batches everywhere, each rank its own noise (dropout, diffusion)
        torch.manual_seed(seed + 1000 * world.rank)
    ema = EMA(policy, config.ema_decay) if config.ema_decay > 0 and main else None
    optimizer = _optimizer(policy, pcfg, device)
    if meta is not None:
        _restore(run, meta, policy, ema, optimizer)

    train_ids, val_ids = split_episodes(ds.num_episodes, config.val_ratio, config.seed)
    weights = correction_weights(ds, train_ids, config.correction_share)
    loader: DeviceLoader | PrefetchLoader
    if device.type == "cuda" and config.device_data:
        loader = DeviceLoader(ds, keys, pcfg.n_obs_steps, pcfg.horizon, train_ids, config.batch_size, seed, device,
                              weights, world.rank, world.size)
    else:
        sampler = SequenceSampler(ds, keys, "action", pcfg.n_obs_steps, pcfg.horizon, episodes=train_ids)
        loader = PrefetchLoader(sampler, config.batch_size, seed, device, weights=weights, rank=world.rank,
                                world_size=world.size)
    val_batches = _val_batches(ds, keys, pcfg, val_ids, config, config.batch_size * world.size, device) if main else []

    model: Any = policy
    if world.size > 1:
        model = DistributedDataParallel(policy, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile and device.type == "cuda":
        model = torch.compile(model)
    writer = None
    if main:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(run / "tb"), purge_step=start_step or None)

    def save(step: int) -> None:
        if main:
            ema_model = ema.model if ema is not None else None
            checkpoint.save_checkpoint(run, policy, config, stats, step, ds.attrs, ema_model, optimizer, world.size)

    policy.train()
    first_loss = last_loss = math.nan
    val_loss: float | None = None
    steps_done = 0
    t0 = time.perf_counter()
    bar = tqdm(range(start_step, config.steps), initial=start_step, total=config.steps,
               disable=not (main and config.progress), desc=f"train {config.policy}", dynamic_ncols=True)
    try:
        for step in bar:
            lr = pcfg.lr * lr_factor(step, config.warmup_steps, config.steps, config.min_lr_ratio)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = loader.next()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(batch)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)
            optimizer.step()
            if ema is not None:
                ema.update(policy, step)
            steps_done += 1
            done = step + 1
            if step % config.log_every == 0 or done == config.steps:
                terms = {k: distributed.global_mean(v, world) for k, v in out.items()}  # over the global batch
                last_loss = terms["loss"]
                first_loss = last_loss if math.isnan(first_loss) else first_loss
                bar.set_postfix(loss=f"{last_loss:.4f}", lr=f"{lr:.2e}")
                if writer is not None:
                    elapsed = time.perf_counter() - t0
                    scalars = {f"train/{k}": v for k, v in terms.items()}
                    scalars.update({"train/lr": lr, "train/grad_norm": grad_norm.item(),
                                    "perf/samples_per_s": steps_done * config.batch_size * world.size / elapsed,
                                    "perf/data_wait_share": loader.wait_s / elapsed})
                    for name, value in scalars.items():
                        writer.add_scalar(name, value, step)
            if val_batches and (done % config.val_every == 0 or done == config.steps):
                val_loss = evaluate(ema.model if ema is not None else policy, val_batches, amp)
                if writer is not None:
                    writer.add_scalar("val/loss", val_loss, step)
            if done % config.save_every == 0 and done < config.steps:
                save(done)
        seconds = time.perf_counter() - t0
        save(max(config.steps, start_step))
    except KeyboardInterrupt:  # keep what was learnt: --resume continues from here
        save(start_step + steps_done)
        raise
    finally:
        loader.close()
        bar.close()
        if writer is not None:
            writer.close()
    return RunSummary(
        run_dir=str(run),
        policy=config.policy,
        device=str(device),
        steps=start_step + steps_done,
        first_loss=first_loss,
        train_loss=last_loss,
        val_loss=val_loss,
        samples_per_s=steps_done * config.batch_size * world.size / max(seconds, 1e-9),
        data_wait_share=loader.wait_s / max(seconds, 1e-9),
        seconds=seconds,
    )
