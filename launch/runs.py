"""Opening a training run for use: its typed metadata, the env it runs in and a policy factory, with every
check, and its evaluation. Every command that evaluates a run comes through here (rollout, browse, DAgger,
the learning table, the benchmarks).

A run keeps its dataset's attributes as they are (:attr:`~protege.policies.checkpoint.RunMeta.env`; the
policies package never reads them); here the sim turns them back into an :class:`~protege.sim.spec.EnvSpec`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from protege.policies.base import Policy
    from protege.policies.checkpoint import RunMeta
    from protege.sim.disturbances import Disturbance
    from protege.sim.spec import EnvSpec
    from protege.teleop.runtime.rollout import RolloutResult

EVAL_SEED = 100_000  # first evaluation seed: far from the seeds `protege record` uses for demos (0, 1, ...)


def load_for_rollout(run_dir: str, device: str, ema: bool, chunking: str | None = None, delay: int | None = 0,
                     hz: float | None = None, action_space: str = "ee_delta") -> Policy:
    """The run's policy, with torch on one thread (parallel envs each get a core of their own), running its
    chunks as :func:`run_chunks` says."""
    import torch

    from protege.policies.checkpoint import load_policy

    torch.set_num_threads(1)
    policy = load_policy(run_dir, device=device, ema=ema)
    run_chunks(policy, chunking, delay, hz, action_space)
    return policy


def run_chunks(policy: Policy, chunking: str | None, delay: int | None, hz: float | None, action_space: str) -> None:
    """Have ``policy`` run its chunks with strategy ``chunking`` (None: its own,
    :meth:`~protege.policies.base.Policy.chunking`) at an inference delay of ``delay`` ticks, or (``delay``
    None, a window's) in a worker thread with the delay measured in ticks of ``hz``; one line if it cannot. A
    policy that predicts one action per call runs synchronously in a window."""
    from protege.sim.controllers import idle_action

    realtime_single = delay is None and chunking is None and policy.config.horizon == 1
    if (chunking is not None or delay != 0) and not realtime_single:
        policy.set_chunking(policy.chunking(chunking, delay), hz, functools.partial(idle_action, action_space))


def measure_delay(policy: Policy, env: EnvSpec, repeats: int = 9) -> int:
    """``--inference-delay auto``: the policy's median time to predict a chunk here, in ticks rounded up."""
    import math
    import time

    from protege.sim import ProtegeEnv

    built = ProtegeEnv(env)
    try:
        obs, _ = built.reset(seed=EVAL_SEED)
    finally:
        built.close()
    policy.reset(seed=EVAL_SEED)
    window = policy.observe(obs)
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        policy.chunk(window)
        seconds.append(time.perf_counter() - started)
    return math.ceil(sorted(seconds)[repeats // 2] * env.control_hz - 1e-9)


@dataclass(frozen=True)
class OpenRun:
    """A run ready to roll out: its metadata, the env its policy runs in (checked against the one it was
    trained in, and fitted by its inputs), ``make_policy``, a picklable factory each worker calls, and the
    inference delay its chunks run with (ticks; None: measured in a window)."""

    path: str
    meta: RunMeta
    env: EnvSpec
    make_policy: functools.partial[Policy]
    delay: int | None = 0

    def evaluate(self, episodes: int, seed: int = EVAL_SEED, envs: int = 1, disturb: Sequence[Disturbance] = (),
                 success_hold: int = 10, record_to: str | None = None, video_dir: str | None = None,
                 videos: int = 0, video_camera: str = "front", progress: bool = True,
                 ray: str | None = None) -> RolloutResult:
        """Roll the policy out headlessly on seeds ``seed``, ``seed + 1``, ...
        (:func:`~protege.teleop.runtime.rollout.run_rollouts`)."""
        from protege.teleop.runtime.rollout import RolloutSpec, run_rollouts

        spec = RolloutSpec(self.env, self.make_policy, success_hold=success_hold, record=record_to is not None,
                           video_dir=video_dir, videos=videos, video_camera=video_camera, disturb=tuple(disturb))
        return run_rollouts(spec, episodes, seed=seed, envs=envs, record_to=record_to, progress=progress, ray=ray)


def trained_env(meta: RunMeta, robot: str | None = None) -> EnvSpec:
    """The env spec a run was trained in, its arm loaded from ``robot`` (a ``--robot`` value) or from the
    source the run recorded, and checked against the recorded arm."""
    from protege.sim import EnvSpec

    return EnvSpec.from_attrs(meta.env).with_robot(robot).resolved()


def policy_env(meta: RunMeta, trained: EnvSpec, task: str | None = None,
               cameras: Sequence[str] | None = None) -> EnvSpec:
    """The env to run a policy in: the one it was trained in, with ``task`` and the policy's cameras (or
    ``cameras``, which must include them) at the image size it reads."""
    from protege.launch.errors import UserError
    from protege.sim.spec import camera_of

    images = {camera: f.shape for f in meta.inputs if (camera := camera_of(f.key)) is not None}
    chosen = tuple(images) if cameras is None else tuple(cameras)
    missing = sorted(set(images) - set(chosen))
    if missing:
        raise UserError(f"the policy observes camera {missing[0]!r}: keep it in --cameras")
    size = tuple(next(iter(images.values()))[:2]) if images else trained.image_size
    return dataclasses.replace(trained, task=task or trained.task, cameras=chosen, image_size=size)


def open_run(path: str | os.PathLike[str], *, robot: str | None = None, task: str | None = None,
             cameras: Sequence[str] | None = None, env: EnvSpec | None = None, device: str = "cpu",
             ema: bool = True, chunking: str | None = None, delay: int | str | None = 0) -> OpenRun:
    """The run at ``path``, to run in ``env`` (default: :func:`policy_env` of the env it was trained in);
    refused in one line if that env is not the one it was trained in (task, arm, action space, rate) or
    its policy does not fit the env's observations and actions, or cannot run its chunks with ``chunking``
    at ``delay`` (:func:`run_chunks`; ``"auto"``: :func:`measure_delay`)."""
    from protege.policies.checkpoint import read_meta
    from protege.sim import ProtegeEnv
    from protege.sim.spec import check_compatible

    meta = read_meta(path)
    trained = trained_env(meta, robot)
    spec = env or policy_env(meta, trained, task, cameras)
    check_compatible(trained, spec, "checkpoint was trained on")
    built = ProtegeEnv(spec)  # checks the camera names, and gives the shapes to check against
    try:
        meta.check_fits({key: space.shape for key, space in built.observation_space.spaces.items()},
                        built.action_space.shape[0])
    finally:
        built.close()
    if chunking is not None or delay != 0:  # refuse a strategy or delay this policy cannot run before any worker
        probe = load_for_rollout(str(path), device, ema)
        if delay == "auto":
            delay = measure_delay(probe, spec)
        run_chunks(probe, chunking, delay, spec.control_hz, spec.action_space)
        probe.close()
    assert delay != "auto"
    make_policy = functools.partial(load_for_rollout, str(path), device, ema, chunking, delay, spec.control_hz,
                                    spec.action_space)
    return OpenRun(str(path), meta, spec, make_policy, delay)
