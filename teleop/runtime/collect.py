"""Scripted collection: the scripted expert drives the control loop headlessly, in parallel processes.

Each worker is a plain function of (env spec, expert settings, seeds), run by a local process pool or,
with ``ray``, by Ray actors (:mod:`protege.teleop.runtime.ray_pool`). Episode k uses seed ``seed + k`` and
episodes are written in seed order by the parent, so a dataset is the same whatever runs the workers.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from protege.datasets import Dataset, Episode, EpisodeBuffer, EpisodeWriter
from protege.teleop.runtime import ray_pool
from protege.teleop.runtime.loop import ControlLoop, check_dataset
from protege.teleop.runtime.pilots import ExpertPilot
from protege.teleop.runtime.workers import worker_pool

if TYPE_CHECKING:
    from protege.sim.disturbances import Disturbance
    from protege.sim.env import ProtegeEnv
    from protege.sim.spec import EnvSpec


def make_env(spec: EnvSpec) -> ProtegeEnv:
    """The env ``spec`` describes, terminating on nothing: the loop ends episodes."""
    import protege.sim  # noqa: F401  (picks the headless GL backend first)
    from protege.sim import ProtegeEnv

    return ProtegeEnv(spec, terminate_on_success=False)


@functools.lru_cache(maxsize=1)
def cached_env(spec: EnvSpec) -> ProtegeEnv:
    """One env per worker process and spec: building it (and its GL context) costs more than an episode."""
    return make_env(spec)


def collect_worker(spec: EnvSpec, noise: float, success_hold: int, dart: bool, randomize: tuple[Disturbance, ...],
                   seeds: list[int]) -> list[Episode]:
    """Run one expert episode per seed; return them. The recorded action is the executed one, or with
    ``dart`` the expert's noise-free action for the state (DART: the noisy expert visits the states
    around its path and each is labelled with the way back; replaying the actions then deviates).
    ``randomize`` (visual disturbances) draws each episode's look from its seed (:func:`look_meta`)."""
    from protege.sim.disturbances import Disturber
    from protege.sim.experts import make_expert

    env = cached_env(spec)
    buffer = EpisodeBuffer()
    labeller = ExpertPilot(make_expert(env)) if dart else None  # experts are stateless: it only labels
    disturber = Disturber(randomize) if randomize else None
    loop = ControlLoop(env, [ExpertPilot(make_expert(env, noise=noise))], writer=buffer, realtime=False,
                       success_hold=success_hold, labeller=labeller, disturber=disturber)
    for seed in seeds:
        loop.run_episode(seed)
        loop.save(**look_meta(disturber.looks if disturber is not None else {}))
    return buffer.episodes


LOOK_META = ("distractors", "headlight")  # what :func:`look_meta` records


def look_seeds(ds: Dataset) -> np.ndarray:
    """The seed each episode's look was drawn from: its ``look_seed`` where ``dataset relook`` rendered it, else
    its own seed (``record --randomize``)."""
    seeds = ds.meta("seed")
    if "look_seed" in ds.meta_names:
        drawn = ds.meta("look_seed")
        seeds = np.where(drawn >= 0, drawn, seeds)
    return seeds


def look_meta(looks: dict[str, Any]) -> dict[str, Any]:
    """What an episode records of its drawn look (:attr:`Disturber.looks`): the distractors drawn and the
    headlight's scale (the look's seed and the dataset's ``randomize`` give the rest)."""
    meta: dict[str, Any] = {}
    if "distractors" in looks:
        meta["distractors"] = len(looks["distractors"])
    if "lighting" in looks:
        meta["headlight"] = looks["lighting"]["headlight"]
    return meta


def _results(run_seeds: functools.partial[list[Episode]], seeds: list[int],
             workers: int, ray: str | None = None) -> Iterator[Episode]:
    """Episodes in seed order, from ``workers`` spawned processes (or this one if 1), or Ray actors at ``ray``."""
    if ray is not None:
        make = functools.partial(functools.partial, run_seeds.func, *run_seeds.args)  # make() is run_seeds
        for episodes in ray_pool.ordered_map(make, [([s],) for s in seeds], workers, ray):
            yield from episodes
        return
    if workers == 1:
        for seed in seeds:
            yield from run_seeds([seed])
        return
    with worker_pool(workers) as pool:
        for episodes in pool.map(run_seeds, [[s] for s in seeds]):
            yield from episodes


def collect(spec: EnvSpec, out: str, episodes: int, noise: float = 0.0, success_hold: int = 10, workers: int = 1,
            seed: int = 0, progress: bool = True, ray: str | None = None, dart: bool = False,
            randomize: tuple[Disturbance, ...] = ()) -> dict[str, Any]:
    """Collect ``episodes`` expert demos (seeds ``seed``, ``seed + 1``, ...) into the dataset ``out``, the
    expert's actions perturbed by ``noise`` (a fraction of the largest step), on ``workers`` local
    processes or, with ``ray`` (an address or ``local``), as many Ray actors. With ``dart`` each frame
    records the noise-free action instead of the executed one; ``randomize`` draws each episode's look
    (:func:`collect_worker`), and the dataset's ``randomize`` attribute names it.

    The dataset is opened first, so a dataset of another task or robot is refused before any work.
    """
    from protege.sim.disturbances import describe

    attrs = {**spec.to_attrs(), **({"randomize": describe(randomize)} if randomize else {})}
    check_dataset(out, spec)
    started = time.perf_counter()
    successes = frames = 0
    with EpisodeWriter(out, attrs=attrs, background=True) as writer:
        seeds = list(range(seed, seed + episodes))
        bar = tqdm(total=episodes, unit="ep", desc=f"collect {spec.task}", disable=not progress)
        run_seeds = functools.partial(collect_worker, spec, noise, success_hold, dart, randomize)
        for episode in _results(run_seeds, seeds, min(workers, max(1, episodes)), ray):
            writer.add_episode(episode)
            successes += bool(episode.success)
            frames += len(episode)
            bar.update(1)
            bar.set_postfix(success=f"{successes}/{bar.n}")
        bar.close()
    seconds = time.perf_counter() - started
    return {
        "out": out,
        "episodes": episodes,
        "successes": successes,
        "success_rate": round(successes / episodes, 4) if episodes else 0.0,
        "frames": frames,
        "workers": workers,
        "seconds": round(seconds, 2),
        "episodes_per_min": round(60.0 * episodes / seconds, 2) if seconds > 0 else 0.0,
    }
