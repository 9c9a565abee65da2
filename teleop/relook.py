"""Render recorded episodes again under new looks: the same frames seen in other lights, colours, camera poses
and among other distractors.

A visual disturbance changes what the cameras see and never the physics (:mod:`protege.sim.visual`), so an
episode's states, actions and low-dimensional observations hold under any look. :func:`relook` writes each
episode of a dataset ``looks`` times, its camera images rendered from its ``sim_state`` frame by frame under a
look drawn with ``randomize``: look 0 from the episode's own look seed (its ``look_seed``, else its seed; on demos
recorded with the same ``--randomize`` it gives back the recorded images), look k from a seed drawn from that
one and k. Each written episode records its ``look_seed``, which replay, browse and correct draw its look from.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
from tqdm import tqdm

from protege.datasets import Dataset, Episode, schema
from protege.datasets.schema import is_image_key
from protege.datasets.tools import write_dataset
from protege.sim.disturbances import Disturbance, Disturber, describe, parse_disturbances
from protege.sim.env import ProtegeEnv
from protege.sim.spec import EnvSpec, image_key
from protege.sim.visual import VISUAL_FAMILIES
from protege.teleop.errors import TeleopError
from protege.teleop.runtime.collect import LOOK_META, cached_env, look_meta, look_seeds
from protege.teleop.runtime.workers import worker_pool

_SALT = 0x100C  # keeps look seeds apart from the seeds episodes and evaluations use
_BATCH = 8  # episodes a worker renders per task (it opens the dataset once for them)


def look_seed(own: int, look: int) -> int:
    """The seed look ``look`` of an episode whose own look seed is ``own`` is drawn from (``own`` for look 0)."""
    if look == 0:
        return own
    return int(np.random.SeedSequence([_SALT, own, look]).generate_state(1)[0])


def relook(source: str, out: str, looks: int, randomize: tuple[Disturbance, ...] | None = None, workers: int = 1,
           progress: bool = True) -> dict[str, Any]:
    """Write every episode of ``source`` ``looks`` times into the new dataset ``out``, each time under another
    look drawn with ``randomize`` (visual families; None: the source's own ``randomize``), rendered by ``workers``
    processes (the output is the same for any number). Nothing is written unless the source can be rendered
    again (a ``sim_state`` and a camera) and every episode was."""
    ds = Dataset(source)
    families = _families(ds, randomize)
    for flag, value in (("--looks", looks), ("--workers", workers)):
        if not isinstance(value, int) or value < 1:
            raise TeleopError(f"{flag} must be a whole number >= 1, got {value}")
    if "sim_state" not in ds:
        raise TeleopError(f"{ds.path} was recorded without data/sim_state: its frames cannot be rendered again")
    cameras = [key for key in ds.keys if is_image_key(key)]
    if not cameras:
        raise TeleopError(f"{ds.path} records no camera: nothing to render again (record with --cameras)")
    if not ds.num_episodes:
        raise TeleopError(f"{ds.path} has no episodes to render again")
    missing = sorted(set(cameras) - {image_key(camera) for camera in EnvSpec.from_attrs(ds.attrs).cameras})
    if missing:
        raise TeleopError(f"the env of {ds.path} does not render {', '.join(missing)}")
    attrs = {**schema.user_attrs(ds.attrs), "randomize": describe(families),
             "derived_from": {"operation": f"relook x{looks}", "inputs": [ds.path]}}
    result = write_dataset(out, attrs, _in_order(ds, families, looks, workers, progress), ds.zarr_format)
    return {**result, "input": ds.path, "looks": looks, "randomize": describe(families)}


def relook_episodes(source: str, families: tuple[Disturbance, ...], looks: int,
                    episodes: list[tuple[int, int]]) -> list[Episode]:
    """The looks of ``episodes`` (index, own look seed) of ``source``, in order: the work of one spawned process
    (its env is kept between calls)."""
    ds = Dataset(source)
    env, disturber = cached_env(EnvSpec.from_attrs(ds.attrs)), Disturber(families)
    return [looked for index, own in episodes for looked in _looks(env, disturber, ds.episode(index), own, looks)]


def _looks(env: ProtegeEnv, disturber: Disturber, episode: Episode, own_seed: int, looks: int) -> Iterator[Episode]:
    """``episode`` under each of ``looks`` looks, its images rendered from its states."""
    for look in range(looks):
        seed = look_seed(own_seed, look)
        env.reset(seed=episode.seed)  # the task's layout, which places the distractors clear of the objects
        disturber.reset(env, seed)
        images: dict[str, list[np.ndarray]] = {}
        for state in episode.data["sim_state"]:
            env.set_state(state)
            for camera, image in env.render_cameras().items():
                images.setdefault(image_key(camera), []).append(image)
        data = {**episode.data, **{key: np.stack(frames) for key, frames in images.items() if key in episode.data}}
        meta = {**{k: v for k, v in episode.meta.items() if k not in LOOK_META},
                **look_meta(disturber.looks), "look_seed": seed}
        yield Episode(data, episode.seed, episode.success, episode.source, meta, episode.duration)


def _families(ds: Dataset, randomize: tuple[Disturbance, ...] | None) -> tuple[Disturbance, ...]:
    if randomize is None:
        recorded = ds.attrs.get("randomize")
        if not recorded:
            raise TeleopError(f"{ds.path} was recorded without --randomize: name the looks to draw "
                              "(--randomize visual)")
        randomize = parse_disturbances(str(recorded))
    other = [family.name for family in randomize if family.name not in VISUAL_FAMILIES]
    if other or not randomize:
        raise TeleopError(f"--randomize draws what cameras see ({', '.join(VISUAL_FAMILIES)} or visual)"
                          + (f", not {other[0]}" if other else ""))
    return randomize


def _in_order(ds: Dataset, families: tuple[Disturbance, ...], looks: int, workers: int,
              progress: bool) -> Iterator[Episode]:
    """Every episode's looks in episode order, rendered here or by ``workers`` spawned processes (started only
    when iterated: after the output was found free), each given batches of up to :data:`_BATCH` episodes."""
    own_seeds, count = look_seeds(ds).tolist(), ds.num_episodes
    with tqdm(total=count * looks, unit="ep", desc="relook", disable=not progress) as bar, ExitStack() as stack:
        if workers == 1:
            env, disturber = cached_env(EnvSpec.from_attrs(ds.attrs)), Disturber(families)
            batches: Iterator[Iterable[Episode]] = (_looks(env, disturber, ds.episode(index), own_seeds[index], looks)
                                                    for index in range(count))
        else:
            size = max(1, min(_BATCH, count // workers))
            items = list(enumerate(own_seeds))
            render = functools.partial(relook_episodes, ds.path, families, looks)
            pool = stack.enter_context(worker_pool(min(workers, count)))
            batches = pool.map(render, [items[i : i + size] for i in range(0, count, size)])
        for batch in batches:
            for episode in batch:
                yield episode
                bar.update(1)
