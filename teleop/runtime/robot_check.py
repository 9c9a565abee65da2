"""`protege sim check-robot`'s engine: every task's scripted expert on an arm, seeds spread over worker processes.

The episodes are :func:`protege.sim.onboarding.check_seeds` calls, a few seeds each, run by the
worker pool of scripted collection and rollouts (:mod:`protege.teleop.runtime.workers`); a task the
arm cannot serve is refused before any episode and reported with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from protege.teleop.runtime.workers import worker_pool

if TYPE_CHECKING:
    from protege.sim.onboarding import EpisodeCheck, TaskCheck
    from protege.sim.spec import EnvSpec

_CHUNKS_PER_WORKER = 2  # seed chunks per task and worker: short ones balance the load, each pays an env's build once


def check_robot(robot: str, tasks: Sequence[str], seeds: int, workers: int = 1, seed: int = 0) -> list[TaskCheck]:
    """One :class:`~protege.sim.onboarding.TaskCheck` per task, in ``tasks`` order: the scripted expert on
    seeds ``seed`` .. ``seed + seeds - 1`` of each task the arm ``robot`` (a name or spec path) can serve,
    on ``workers`` spawned processes (this one if 1)."""
    import protege.sim  # noqa: F401  (picks the headless GL backend first)
    from protege.sim.onboarding import refusal, summarise
    from protege.sim.spec import EnvSpec

    specs = [EnvSpec.make(task, robot, cameras=()) for task in tasks]
    refused = {spec.task: refusal(spec) for spec in specs}
    size = max(1, math.ceil(seeds / (_CHUNKS_PER_WORKER * workers)))
    chunks = [list(range(start, min(seed + seeds, start + size))) for start in range(seed, seed + seeds, size)]
    jobs = [(spec, chunk) for spec in specs if refused[spec.task] is None for chunk in chunks]
    results: dict[str, list[EpisodeCheck]] = {spec.task: [] for spec in specs}
    for (spec, _), checks in zip(jobs, _run(jobs, workers), strict=True):
        results[spec.task].extend(checks)
    return [summarise(spec, results[spec.task], refused[spec.task]) for spec in specs]


def _run(jobs: list[tuple[EnvSpec, list[int]]], workers: int) -> list[list[EpisodeCheck]]:
    from protege.sim.onboarding import check_seeds

    if workers == 1 or len(jobs) <= 1:
        return [check_seeds(spec, chunk) for spec, chunk in jobs]
    with worker_pool(min(workers, len(jobs))) as pool:
        return list(pool.map(check_seeds, *zip(*jobs, strict=True)))
