"""Normalisation statistics: values, image channels, and the cache keyed by the committed episodes."""

from __future__ import annotations

import numpy as np
import pytest

from protege.datasets import Dataset, DatasetError, EpisodeWriter, compute_stats, load_stats
from protege.datasets import stats as stats_module


def test_low_dim_stats_match_numpy(small_dataset):
    ds = Dataset(small_dataset((5, 3, 7)))
    stats = compute_stats(ds, ["joint_pos", "gripper"])
    x = ds["joint_pos"][:].astype(np.float64)
    np.testing.assert_allclose(stats["joint_pos"]["mean"], x.mean(0))
    np.testing.assert_allclose(stats["joint_pos"]["std"], x.std(0))
    np.testing.assert_allclose(stats["joint_pos"]["min"], x.min(0))
    np.testing.assert_allclose(stats["joint_pos"]["max"], x.max(0))
    np.testing.assert_allclose(stats["joint_pos"]["q01"], np.quantile(x, 0.01, axis=0))
    np.testing.assert_allclose(stats["joint_pos"]["q99"], np.quantile(x, 0.99, axis=0))
    assert stats["joint_pos"]["mean"].shape == (6,) and stats["gripper"]["mean"].shape == ()


def test_image_stats_are_per_channel_and_exact(small_dataset):
    ds = Dataset(small_dataset((5, 3)))
    stats = compute_stats(ds, ["image_wrist"])["image_wrist"]
    pixels = ds["image_wrist"][:].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(stats["mean"], pixels.mean(0))
    np.testing.assert_allclose(stats["std"], pixels.std(0))
    np.testing.assert_array_equal(stats["min"], pixels.min(0))
    np.testing.assert_array_equal(stats["max"], pixels.max(0))
    np.testing.assert_array_equal(stats["q01"], np.quantile(pixels, 0.01, axis=0, method="inverted_cdf"))
    np.testing.assert_array_equal(stats["q99"], np.quantile(pixels, 0.99, axis=0, method="inverted_cdf"))


def test_stats_are_cached_and_invalidated_by_appending(small_dataset, write, monkeypatch):
    path = small_dataset((5, 3))
    assert load_stats(Dataset(path)) is None
    first = compute_stats(Dataset(path))
    calls: list[str] = []
    original = stats_module._key_stats
    monkeypatch.setattr(stats_module, "_key_stats", lambda ds, key: calls.append(key) or original(ds, key))
    reopened = Dataset(path)
    cached = load_stats(reopened, ["action"])
    np.testing.assert_array_equal(cached["action"]["q99"], first["action"]["q99"])
    compute_stats(reopened)
    assert calls == []
    write(path, (4,), first_episode=2)
    appended = Dataset(path)
    assert load_stats(appended, ["action"]) is None
    fresh = compute_stats(appended, ["action"])
    assert calls == ["action"]
    assert fresh["action"]["max"][0] > first["action"]["max"][0]


def test_stats_need_frames(tmp_path, attrs):
    EpisodeWriter(tmp_path / "d.zarr", attrs).close()
    with pytest.raises(DatasetError, match="no frames"):
        compute_stats(Dataset(tmp_path / "d.zarr"))
