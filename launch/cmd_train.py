"""`protege train`: behaviour cloning of a policy on a dataset, on CUDA when present (torchrun for DDP)."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from protege.policies import POLICY_NAMES

EXAMPLES = """examples:
  protege train --dataset demos.zarr --policy cnn --out runs/cnn --set lr=3e-4 --set n_obs_steps=1
  protege train --resume runs/cnn --steps 40000
  torchrun --nproc-per-node 4 -m protege.launch.cli train --dataset demos.zarr --policy act --out runs/act

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
    parser.add_argument("--batch-size", type=int, help="batch size per process")
    parser.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a train or policy config field, e.g. --set lr=3e-4 --set horizon=16 (repeatable)",
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


def run(args: argparse.Namespace) -> int:
    from protege.launch.cli import emit_json
    from protege.launch.errors import UserError
    from protege.policies import checkpoint
    from protege.policies.base import POLICIES
    from protege.policies.config import TrainConfig, apply_overrides, from_dict
    from protege.policies.trainer import train

    if args.resume:
        if args.policy or args.out:
            raise UserError("--resume RUN continues that run: drop --policy and --out")
        meta, _ = checkpoint.read_run(args.resume)
        stored = meta["train_config"]
        config = from_dict(TrainConfig, {**stored, "out": args.resume,
                                         "dataset": args.dataset or run_dataset(stored["dataset"], args.resume)})
        policy_config = checkpoint.policy_config(meta)
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
