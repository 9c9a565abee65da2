"""Helpers shared by tests in several folders (``import helpers``: tests/ is on sys.path by its conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from protege.datasets import Dataset

PathLike = str | os.PathLike[str]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 image arrays, in dB (inf when equal)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse)) if mse else float("inf")


def assert_same_dataset(a: PathLike, b: PathLike, psnr_floor_db: float | None = None) -> None:
    """Datasets ``a`` and ``b`` hold the same episodes: keys, episode ends, every array's dtype, shape and values,
    every per-episode meta array and the attributes (but when and by what they were written). With
    ``psnr_floor_db``, images need only be that close (a lossy video codec on the way)."""
    one, two = Dataset(str(a)), Dataset(str(b))
    assert one.keys == two.keys and one.meta_names == two.meta_names
    np.testing.assert_array_equal(one.episode_ends, two.episode_ends)
    for key in one.keys:
        assert (one.dtype(key), one.shape(key)) == (two.dtype(key), two.shape(key)), key
        if psnr_floor_db is not None and key.startswith("image_"):
            assert psnr(one.load(key), two.load(key)) > psnr_floor_db, key
        else:
            np.testing.assert_array_equal(one.load(key), two.load(key), err_msg=key)
    for name in one.meta_names:
        np.testing.assert_array_equal(one.meta(name), two.meta(name), err_msg=name)
    written = ("created", "software")
    assert {k: v for k, v in one.attrs.items() if k not in written} == {
        k: v for k, v in two.attrs.items() if k not in written}


def train_tiny_mlp(root: Path, robot: str = "protege_arm", episodes: int = 4, steps: int = 30) -> Path:
    """A tiny state-only mlp cloned from scripted lift demos of ``robot`` (a name or spec file), seconds on a CPU:
    ``root``/demos.zarr and the run directory ``root``/run, which it returns."""
    import torch

    from protege.launch import cli
    from protege.policies.config import TrainConfig
    from protege.policies.trainer import train

    torch.set_num_threads(1)
    demos = str(root / "demos.zarr")
    assert cli.main(["record", "--task", "lift", "--robot", robot, "--expert", "scripted", "--episodes", str(episodes),
                     "--cameras", "", "--out", demos, "--no-progress"]) == 0
    run = root / "run"
    train(TrainConfig(dataset=demos, out=str(run), policy="mlp", steps=steps, warmup_steps=5, progress=False))
    return run


def demos_and_run(root: Path, record: list[str]) -> tuple[Path, Path]:
    """A 2-episode dataset recorded with the ``protege record`` arguments ``record`` and a 2-step mlp
    trained on it, under ``root``: seconds, for tests of what commands refuse."""
    import torch

    from protege.launch import cli
    from protege.policies.config import TrainConfig
    from protege.policies.trainer import train

    torch.set_num_threads(1)
    demos, run = root / "d.zarr", root / "run"
    assert cli.main([*record, "--episodes", "2", "--out", str(demos)]) == 0
    train(TrainConfig(dataset=str(demos), out=str(run), steps=2, warmup_steps=1, progress=False))
    return demos, run


def one_line(capsys: Any, argv: list[str], *expected: str) -> str:
    """Run ``protege argv`` and check it ends in one line on standard error naming each of ``expected``,
    exit status 2; the line."""
    from protege.launch import cli

    code = cli.main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith(f"protege {argv[0]}: error: "), err
    assert "Traceback" not in err and all(text in err for text in expected), err
    return err
