"""The prefetch loader samples into a ring of batches made once: the same batches as sampling into new arrays,
and a batch handed out stays as it is until the next one is asked for."""

from __future__ import annotations

import time

import numpy as np
import torch

from protege.datasets import Dataset, SequenceSampler
from protege.policies.data import PrefetchLoader


def _sampler(path: str) -> SequenceSampler:
    ds = Dataset(path)
    keys = [k for k in ds.keys if k.startswith("image_")][:1] + ["joint_pos"]
    return SequenceSampler(ds, keys, "action", n_obs_steps=2, horizon=4)


def test_reused_batches_are_the_fresh_batches(image_dataset):
    loaders = [PrefetchLoader(_sampler(image_dataset), 8, seed=3, device=torch.device("cpu"), depth=2, reuse=reuse)
               for reuse in (True, False)]
    try:
        for _ in range(12):
            reused, fresh = (loader.next() for loader in loaders)
            assert reused.keys() == fresh.keys()
            for key in reused:
                assert torch.equal(reused[key], fresh[key]), key
    finally:
        for loader in loaders:
            loader.close()


def test_a_batch_handed_out_is_kept_until_the_next_is_asked_for(image_dataset):
    loader = PrefetchLoader(_sampler(image_dataset), 8, seed=0, device=torch.device("cpu"), depth=2)
    try:
        loader.next()
        batch = loader.next()
        kept = {key: value.clone() for key, value in batch.items()}
        deadline = time.monotonic() + 5
        while not loader._queue.full() and time.monotonic() < deadline:  # the producer runs as far ahead as it may
            time.sleep(0.01)
        time.sleep(0.05)
        for key, value in kept.items():
            assert torch.equal(batch[key], value), key
        later = loader.next()
        assert all(np.shares_memory(later[key].numpy(), batch[key].numpy()) is False for key in batch)
    finally:
        loader.close()
