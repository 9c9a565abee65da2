"""`protege bench dataset` meets the targets (slow: run with -m slow)."""

from __future__ import annotations

import pytest

from protege.datasets.bench import run_bench


@pytest.mark.slow
def test_bench_meets_the_targets(capsys):
    result = run_bench(json=True)
    assert capsys.readouterr().out == ""
    assert result["write_frames_per_s"] >= 80  # 4x real time at 20 Hz with two 128x128 cameras
    assert result["sample_low_dim_cache_per_s"] >= 20_000
    assert result["sample_images_disk_per_s"] >= 152  # diffusion_policy reading on-disk zarr
