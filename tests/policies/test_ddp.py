"""Data-parallel training under torchrun with gloo on CPU: the same training as one process with the
global batch, rank 0 alone writing, the checkpoint rolling out, resume, and bad launches."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from protege.launch import cli
from protege.policies.checkpoint import read_meta

STEPS = 300
# horizon 1: no padded actions, so the mean of the ranks' mean losses is the global batch's mean loss;
# no velocity dropout: each rank draws its own samples' masks
FLAGS = ["--device", "cpu", "--steps", str(STEPS), "--no-progress", "--set", "hidden=128,128", "--set", "horizon=1",
         "--set", "n_action_steps=1", "--set", "velocity_dropout=0", "--set", "warmup_steps=20",
         "--set", "log_every=10", "--set", "val_every=100"]
# Both runs start from the same weights and see the same windows (rank r trains on slice r of the
# global batch), so they differ only by float rounding (two half-batch gradients averaged by the
# all-reduce instead of one full-batch gradient): measured 1.2e-6 relative over 300 steps. 1e-3 leaves
# room for other BLAS builds yet fails at once if a rank trained on other data or weights.
RTOL = 1e-3


def torchrun(*args: str, nproc: int = 2) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
               "-m", "protege.launch.cli", "train", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def losses(run: Path, tag: str) -> np.ndarray:
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    accumulator = EventAccumulator(str(run / "tb"), size_guidance={SCALARS: 0})
    accumulator.Reload()
    return np.array([(e.step, e.value) for e in accumulator.Scalars(tag)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(single-process run with batch 32, 2-rank run with batch 16 per rank, the 2-rank run's stdout)."""
    root = tmp_path_factory.mktemp("ddp")
    demos = str(root / "lift.zarr")
    assert cli.main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "4", "--cameras", "",
                     "--out", demos, "--no-progress"]) == 0
    single, ddp = root / "single", root / "ddp"
    assert cli.main(["train", "--dataset", demos, "--out", str(single), "--batch-size", "32", *FLAGS]) == 0
    done = torchrun("--dataset", demos, "--out", str(ddp), "--batch-size", "16", *FLAGS)
    assert done.returncode == 0, done.stderr[-2000:]
    return single, ddp, done.stdout


def test_two_ranks_train_as_one_process_with_the_global_batch(runs):
    single, ddp, _ = runs
    for tag in ("train/loss", "val/loss"):
        one, two = losses(single, tag), losses(ddp, tag)
        assert np.array_equal(one[:, 0], two[:, 0])
        np.testing.assert_allclose(two[:, 1], one[:, 1], rtol=RTOL)
    assert losses(ddp, "train/loss")[-1, 1] < 0.2 * losses(ddp, "train/loss")[0, 1]  # it learnt
    meta = read_meta(ddp)
    assert meta.world_size == 2 and meta.step == STEPS


def test_rank_0_alone_writes_and_prints(runs):
    single, ddp, stdout = runs
    assert sorted(p.name for p in ddp.iterdir()) == sorted(p.name for p in single.iterdir())
    assert len(list((ddp / "tb").iterdir())) == 1  # one TensorBoard writer
    assert stdout.count("trained mlp") == 1  # both ranks share torchrun's standard output


def test_the_ddp_checkpoint_rolls_out(runs, capsys):
    _, ddp, _ = runs
    assert cli.main(["rollout", "--checkpoint", str(ddp), "--episodes", "2", "--no-progress", "--no-log",
                     "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 2


def test_resume_keeps_the_world_size(runs, tmp_path, capsys):
    _, ddp, _ = runs
    run = tmp_path / "run"
    shutil.copytree(ddp, run)
    assert cli.main(["train", "--resume", str(run), "--steps", "330", "--nproc", "2", "--no-progress"]) == 0
    meta = read_meta(run)
    assert meta.step == 330 and meta.world_size == 2
    assert cli.main(["train", "--resume", str(run), "--steps", "360", "--no-progress"]) == 2
    assert "trained by 2 process(es)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"RANK": "0", "WORLD_SIZE": "2"}, (), "MASTER_ADDR, MASTER_PORT not"),
        ({"RANK": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "localhost", "MASTER_PORT": "29500"}, (), "inconsistent"),
        ({}, ("--nproc", "4096"), "--nproc 4096: this machine has"),
        ({}, ("--nproc", "0"), "--nproc 0"),
    ],
)
def test_a_bad_launch_is_one_line(runs, monkeypatch, capsys, env, args, message):
    single, _, _ = runs
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = cli.main(["train", "--dataset", str(single), "--out", "unused", "--device", "cpu", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
