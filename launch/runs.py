"""Loading a checkpoint to roll it out, which env it runs in, and the refusals when the env is not the one it was trained in.

A checkpoint keeps its dataset's attributes as they are (the policies package never reads them);
here the sim turns them back into an :class:`~protege.sim.spec.EnvSpec`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from protege.launch.errors import UserError

if TYPE_CHECKING:
    from protege.sim.spec import EnvSpec

EVAL_SEED = 100_000  # first evaluation seed: far from the seeds `protege record` uses for demos (0, 1, ...)


def load_for_rollout(run_dir: str, device: str, ema: bool) -> Any:
    """The run's policy, with torch on one thread: parallel envs each get a core of their own."""
    import torch

    from protege.policies.checkpoint import load_policy

    torch.set_num_threads(1)
    return load_policy(run_dir, device=device, ema=ema)


def trained_spec(meta: Mapping[str, Any], robot: str | None = None) -> EnvSpec:
    """The env spec a checkpoint (its config.json ``meta``) was trained in, the arm loaded from ``robot``
    (a ``--robot`` value) or from the source the run recorded, and checked against the recorded arm."""
    from protege.sim import EnvSpec, SimError

    try:
        return EnvSpec.from_attrs(meta.get("dataset", {})).with_robot(robot).resolved()
    except SimError as exc:
        hint = "" if robot else " (pass --robot SPEC.yaml)"
        raise UserError(f"cannot run this checkpoint: {exc}{hint}") from None


def check_fits(meta: Mapping[str, Any], trained: EnvSpec, env: Any) -> None:
    """Refuse, in one line, an env of another task, arm, action space or rate than ``trained``, or one
    whose observations or action size the policy does not fit."""
    from protege.policies.checkpoint import check_compatible
    from protege.sim.spec import mismatch

    problem = mismatch(trained, env.env_spec)
    if problem:
        raise UserError(f"checkpoint was trained on {problem}")
    shapes = {key: space.shape for key, space in env.observation_space.spaces.items()}
    check_compatible(meta, shapes, env.action_space.shape[0])
