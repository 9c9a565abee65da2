"""Data-parallel training under torchrun: the launch environment, the process group, the checks.

torchrun starts one process per GPU (or per CPU share) and sets RANK, WORLD_SIZE, LOCAL_RANK,
LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT; without them training runs as one process. Each
rank trains on ``batch_size`` windows, so the global batch is ``batch_size x world_size``: all
ranks draw the same global batch of window indices and each keeps its own slice of it, so N ranks
with batch b see exactly the batches one process with batch N*b sees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from protege.policies.errors import PolicyError

if TYPE_CHECKING:
    from protege.policies.checkpoint import RunMeta

LAUNCH_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    local_rank: int = 0
    size: int = 1
    local_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the only process that validates, logs, prints and writes checkpoints."""
        return self.rank == 0


def _int_var(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise PolicyError(f"environment variable {name}={value!r} is not an integer") from None


def world_from_env() -> World:
    """The launch torchrun describes in the environment; one process when it describes none."""
    present = [v for v in LAUNCH_VARS if os.environ.get(v)]
    if not present:
        return World()
    missing = [v for v in LAUNCH_VARS if v not in present]
    if missing:
        raise PolicyError(f"incomplete distributed launch: {', '.join(present)} set but {', '.join(missing)} not;"
                          " start with torchrun or protege train --nproc N")
    rank, size = _int_var("RANK", 0), _int_var("WORLD_SIZE", 1)
    local_rank, local_size = _int_var("LOCAL_RANK", 0), _int_var("LOCAL_WORLD_SIZE", size)
    if size < 1 or not 0 <= rank < size or not 0 <= local_rank < local_size:
        raise PolicyError(f"inconsistent distributed launch: RANK={rank}, WORLD_SIZE={size}, "
                          f"LOCAL_RANK={local_rank}, LOCAL_WORLD_SIZE={local_size}")
    return World(rank, local_rank, size, local_size)


def init(world: World, device: torch.device) -> None:
    """Join the process group: NCCL between GPUs, gloo between CPU processes."""
    if world.size == 1 or dist.is_initialized():
        return
    if device.type == "cuda" and world.local_size > torch.cuda.device_count():
        raise PolicyError(f"{world.local_size} processes on this node but only {torch.cuda.device_count()} GPU(s);"
                          " start one process per GPU")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def close(world: World, finished: bool) -> None:
    """Leave the process group; after a finished run, once every rank is done (rank 0 saving last)."""
    if world.size > 1 and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def global_mean(value: torch.Tensor, world: World) -> float:
    """The mean of a scalar over all ranks (a collective: every rank calls it at the same step)."""
    if world.size == 1:
        return value.item()
    total = value.detach().float().reshape(1).clone()
    dist.all_reduce(total)
    return total.item() / world.size


def check_resume(meta: RunMeta, size: int) -> None:
    """A run continues with the world size it was trained with: that fixes its global batch."""
    saved = meta.world_size
    if saved != size:
        batch = meta.train_config.batch_size
        raise PolicyError(f"the run was trained by {saved} process(es) (global batch {saved} x {batch}), not {size}:"
                          f" resume it with protege train --nproc {saved}")


def check_nproc(nproc: int, cuda: bool) -> None:
    """One process per GPU, or at most one per CPU core."""
    if cuda:
        have, what = torch.cuda.device_count(), "GPU(s)"
    else:
        have, what = os.cpu_count() or 1, "CPU core(s)"
    if not 1 <= nproc <= have:
        raise PolicyError(f"--nproc {nproc}: this machine has {have} {what} "
                          "(one process per GPU, at most one per core)")
