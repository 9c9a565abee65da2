"""`protege train`: behaviour cloning of a policy on a dataset, on CUDA when present (torchrun for DDP)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from protege.policies import POLICY_NAMES

EXAMPLES = """examples:
  protege train --dataset demos.zarr --policy cnn --out runs/cnn --set lr=3e-4 --set n_obs_steps=1
  protege train --resume runs/cnn --steps 40000
  protege train --nproc 4 --dataset demos.zarr --policy act --out runs/act     # DDP, one process per GPU
  torchrun --nnodes 2 --nproc-per-node 8 --rdzv-endpoint HOST:29500 -m protege.launch.cli train ...

Under torchrun (or --nproc) --batch-size is per process: the global batch is batch size x processes,
and a run resumes with the number of processes it was trained with.
--set takes any field of the train config or the policy's config (policies/<name>/config.py);
a run's config.json lists them all with their values."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--dataset", help="dataset directory (D.zarr); optional with --resume")
    parser.add_argument(
        "--policy", choices=POLICY_NAMES, help="policy to train (default mlp; from the run with --resume)"
    )
    parser.add_argument("--out", help="run directory to create (weights, config, stats, TensorBoard logs)")
    parser.add_argument("--resume", metavar="RUN", help="continue the run saved in RUN/ from its last checkpoint")
    parser.add_argument("--steps", type=int, help="total optimisation steps")
    parser.add_argument("--batch-size", type=int, help="batch size per process (global batch: x processes)")
    parser.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a train or policy config field, e.g. --set lr=3e-4 --set horizon=16 (repeatable)",
    )
    parser.add_argument(
        "--nproc", type=int, help="data-parallel processes on this machine, started by torchrun (one per GPU)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")


def run_dataset(stored: str, run: str) -> str:
    """The dataset a run was trained on. Runs record it absolute; older ones as typed, relative to where
    training started: from here, or else from the nearest directory above the run that holds it."""
    from protege.datasets.storage import is_local
    from protege.launch.errors import UserError

    if not is_local(stored) or os.path.isabs(stored) or os.path.exists(stored):
        return stored
    for above in Path(run).resolve().parents:
        if (above / stored).exists():
            return str(above / stored)
    raise UserError(f"the run's dataset {stored!r} (relative to where it was trained) is not found from here: "
                    "pass --dataset")


def _launch(args: argparse.Namespace) -> int:
    """Run this command again under torchrun with ``args.nproc`` processes on this machine."""
    from protege.launch.errors import UserError
    from protege.policies import checkpoint, distributed

    if os.environ.get("RANK"):
        raise UserError("--nproc starts torchrun itself: drop it when launching with torchrun")
    device = args.device or (checkpoint.read_meta(args.resume).train_config.device if args.resume else "auto")
    distributed.check_nproc(args.nproc, _uses_cuda(device))
    if args.resume:
        distributed.check_resume(checkpoint.read_meta(args.resume), args.nproc)
    flags = {"--dataset": args.dataset, "--policy": args.policy, "--out": args.out, "--resume": args.resume,
             "--steps": args.steps, "--batch-size": args.batch_size, "--device": args.device, "--seed": args.seed}
    argv = [item for flag, value in flags.items() if value is not None for item in (flag, str(value))]
    argv += [item for o in args.overrides for item in ("--set", o)]
    argv += ["--no-progress"] * args.no_progress + ["--json"] * args.json
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(args.nproc),
               "-m", "protege.launch.cli", "train", *argv]
    env = {"OMP_NUM_THREADS": "1", **os.environ}  # the trainer sets each process's threads itself
    return subprocess.run(command, env=env).returncode


def _uses_cuda(device: str) -> bool:
    import torch

    return device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())


def run(args: argparse.Namespace) -> int:
    from protege.launch.cli import SEEDS, check_range, emit_json
    from protege.launch.errors import UserError
    from protege.policies import checkpoint
    from protege.policies.base import POLICIES
    from protege.policies.config import TrainConfig, apply_overrides
    from protege.policies.trainer import train

    if args.nproc is not None:
        return _launch(args)
    if args.resume:
        if args.policy or args.out:
            raise UserError("--resume RUN continues that run: drop --policy and --out")
        meta = checkpoint.read_meta(args.resume)
        config = dataclasses.replace(meta.train_config, out=args.resume,
                                     dataset=args.dataset or run_dataset(meta.train_config.dataset, args.resume))
        policy_config = meta.policy_config
    else:
        if not args.dataset or not args.out:
            raise UserError("--dataset and --out are required (or --resume RUN)")
        config = TrainConfig(dataset=args.dataset, out=args.out, policy=args.policy or "mlp")
        policy_config = POLICIES[config.policy].config_class()
    flags = {"dataset": args.dataset, "steps": args.steps, "batch_size": args.batch_size, "device": args.device,
             "seed": args.seed}
    config = dataclasses.replace(config, **{k: v for k, v in flags.items() if v is not None})
    if args.no_progress:
        config.progress = False
    fixed = [o for o in args.overrides if o.partition("=")[0].strip() in ("policy", "out")]
    if fixed:
        raise UserError(f"--set {fixed[0]}: choose the policy and run directory with --policy and --out")
    apply_overrides([config, policy_config], args.overrides)
    check_range("--seed", config.seed, SEEDS)
    summary = train(config, policy_config, resume=bool(args.resume))
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only the first process reports
        return 0
    result = dataclasses.asdict(summary)
    print(
        f"trained {summary.policy} for {summary.steps} steps on {summary.device}: loss {summary.train_loss:.4f}"
        + (f", val {summary.val_loss:.4f}" if summary.val_loss is not None else "")
        + f", {summary.samples_per_s:.0f} samples/s -> {summary.run_dir}"
    )
    if args.json:
        emit_json(result)
    return 0
