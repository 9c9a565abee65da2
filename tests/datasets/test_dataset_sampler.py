"""SequenceSampler windows, padding at episode edges, caching, and the train/validation split."""

from __future__ import annotations

import numpy as np
import pytest

from protege.datasets import Dataset, DatasetError, SequenceSampler, split_episodes

LENGTHS = (5, 1, 3, 8)


def reference_window(ds: Dataset, episode: int, t: int, key: str, offsets: range) -> np.ndarray:
    """The window written out the slow way: frame t+k of the episode, clamped to its first/last frame."""
    frames = ds.episode(episode, [key]).data[key]
    return np.stack([frames[min(max(t + k, 0), len(frames) - 1)] for k in offsets])


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("cache", [True, False])
@pytest.mark.parametrize("n_obs_steps, horizon", [(1, 1), (2, 4), (3, 16)])
def test_every_window_matches_the_reference_element_by_element(small_dataset, zarr_format, cache, n_obs_steps, horizon):
    ds = Dataset(small_dataset(LENGTHS, zarr_format))
    keys = ["joint_pos", "image_front", "gripper"]
    sampler = SequenceSampler(ds, keys, n_obs_steps=n_obs_steps, horizon=horizon, cache=cache)
    assert len(sampler) == sum(LENGTHS)
    batch = sampler.sample(np.arange(len(sampler)))
    assert batch["image_front"].dtype == np.uint8 and batch["joint_pos"].dtype == np.float32
    assert batch["action"].shape == (len(sampler), horizon, 7)
    assert batch["image_front"].shape == (len(sampler), n_obs_steps, 8, 8, 3)
    assert batch["gripper"].shape == (len(sampler), n_obs_steps)
    window = 0
    for episode, length in enumerate(LENGTHS):
        for t in range(length):
            for key in keys:
                expected = reference_window(ds, episode, t, key, range(1 - n_obs_steps, 1))
                np.testing.assert_array_equal(batch[key][window], expected, err_msg=f"{key} ep {episode} t {t}")
            expected_action = reference_window(ds, episode, t, "action", range(horizon))
            np.testing.assert_array_equal(batch["action"][window], expected_action)
            np.testing.assert_array_equal(batch["action_is_pad"][window], [t + k >= length for k in range(horizon)])
            window += 1


def test_padding_repeats_the_edge_frames_of_the_episode_not_its_neighbours(small_dataset):
    ds = Dataset(small_dataset((4, 3)))
    sampler = SequenceSampler(ds, ["joint_pos"], n_obs_steps=3, horizon=5)
    first_of_second = sampler[4]  # episode 1, t = 0
    np.testing.assert_array_equal(first_of_second["joint_pos"][:, 0], [1000.0, 1000.0, 1000.0])
    np.testing.assert_array_equal(first_of_second["action"][:, 0], [1000.0, 1001.0, 1002.0, 1002.0, 1002.0])
    np.testing.assert_array_equal(first_of_second["action_is_pad"], [False, False, False, True, True])
    last_of_first = sampler[3]  # episode 0, t = 3
    np.testing.assert_array_equal(last_of_first["joint_pos"][:, 0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(last_of_first["action"][:, 0], [3.0] * 5)
    np.testing.assert_array_equal(last_of_first["action_is_pad"], [False, True, True, True, True])
    np.testing.assert_array_equal(sampler[-1]["action"], sampler.sample([6])["action"][0])


def test_episode_selection_and_random_batches(small_dataset):
    ds = Dataset(small_dataset(LENGTHS))
    sampler = SequenceSampler(ds, ["joint_pos"], n_obs_steps=2, horizon=3, episodes=[3, 0])
    assert len(sampler) == 8 + 5
    everything = SequenceSampler(ds, ["joint_pos"], n_obs_steps=2, horizon=3)
    order = np.random.default_rng(0).permutation(len(sampler))
    chosen = sampler.sample(order)
    frames_of = np.concatenate([np.arange(9, 17), np.arange(0, 5)])  # episode 3 then episode 0
    reference = everything.sample(frames_of[order])
    for key in ("joint_pos", "action", "action_is_pad"):
        np.testing.assert_array_equal(chosen[key], reference[key])


def test_cache_keeps_uint8_images_and_is_shared(small_dataset):
    ds = Dataset(small_dataset((3,)))
    a = SequenceSampler(ds, ["image_front"], cache=True)
    b = SequenceSampler(ds, ["image_front"], cache=True, episodes=[0])
    assert ds.load("image_front").dtype == np.uint8
    assert a._arrays["image_front"] is b._arrays["image_front"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"obs_keys": ["nope"]}, "no data key 'nope'"),
        ({"obs_keys": ["action"]}, "action key"),
        ({"obs_keys": ["joint_pos"], "horizon": 0}, "horizon"),
        ({"obs_keys": ["joint_pos"], "episodes": [7]}, "episode ids"),
    ],
)
def test_bad_sampler_arguments(small_dataset, kwargs, message):
    ds = Dataset(small_dataset((3, 2)))
    with pytest.raises(DatasetError, match=message):
        SequenceSampler(ds, **kwargs)


def test_split_is_disjoint_complete_and_reproducible():
    train, val = split_episodes(20, 0.2, seed=3)
    assert len(val) == 4 and len(train) == 16
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(20))
    again = split_episodes(20, 0.2, seed=3)
    np.testing.assert_array_equal(val, again[1])
    assert not np.array_equal(val, split_episodes(20, 0.2, seed=4)[1])
    assert [len(part) for part in split_episodes(2, 0.9, seed=0)] == [1, 1]
    assert [len(part) for part in split_episodes(5, 0.0, seed=0)] == [5, 0]
    with pytest.raises(DatasetError):
        split_episodes(5, 1.0, seed=0)


@pytest.mark.parametrize("cache", [True, False])
def test_filling_a_previous_batch_gives_the_same_windows(small_dataset, cache):
    ds = Dataset(small_dataset(LENGTHS))
    sampler = SequenceSampler(ds, ["joint_pos", "image_front"], n_obs_steps=2, horizon=4, cache=cache)
    first, second = np.arange(0, 6), np.arange(10, 16)
    batch = sampler.sample(first)
    arrays = {key: value for key, value in batch.items()}
    refilled = sampler.sample(second, out=batch)
    for key, value in refilled.items():
        assert value is arrays[key]
        np.testing.assert_array_equal(value, sampler.sample(second)[key])
    with pytest.raises(DatasetError, match="this batch needs"):
        sampler.sample(np.arange(3), out=refilled)
