"""Gathering frames by index into a batch, split over threads when the batch is large.

``np.take`` copies outside the GIL, so threads that each fill their own rows of the batch add memory bandwidth
that one core alone does not reach: two 128x128 cameras' windows (25 MB a batch) gather 1.1-1.35x faster on the
2-core development machine (docs/experiments.md).
"""

from __future__ import annotations

import itertools

import numpy as np

from protege.datasets.reader import DECODE_WORKERS, decode_pool

# Below this many bytes a batch is gathered in the calling thread: the hand-off would cost more than it saves.
THREADED_BYTES = 1 << 20
GATHER_WORKERS = min(4, DECODE_WORKERS)  # parts a large batch is split into, on the decode pool's threads


def take_rows(array: np.ndarray, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``array[rows]`` (``rows`` of any shape, every index in range), into ``out`` when given; large gathers are
    split by leading row of ``rows`` over :data:`GATHER_WORKERS` threads."""
    if out is None:
        out = np.empty((*rows.shape, *array.shape[1:]), array.dtype)
    parts = min(GATHER_WORKERS, len(rows)) if rows.ndim else 1
    if out.nbytes < THREADED_BYTES or parts < 2:
        return np.take(array, rows, axis=0, out=out, mode="clip")
    bounds = np.linspace(0, len(rows), parts + 1).round().astype(int).tolist()
    jobs = [decode_pool().submit(np.take, array, rows[a:b], 0, out[a:b], "clip") for a, b in itertools.pairwise(bounds)]
    for job in jobs:
        job.result()
    return out
