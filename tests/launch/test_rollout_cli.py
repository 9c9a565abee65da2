"""`protege rollout` on a real checkpoint: reproducible JSON, the evaluation log, and one-line refusals."""

from __future__ import annotations

import json

import pytest
import torch

from protege.launch import cli
from protege.policies.config import TrainConfig
from protege.policies.trainer import train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny mlp cloned from 4 scripted lift demos (seconds on a CPU)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("rollout")
    demos = str(root / "lift.zarr")
    assert cli.main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "4", "--cameras", "",
                     "--out", demos, "--no-progress"]) == 0
    run = root / "run"
    train(TrainConfig(dataset=demos, out=str(run), policy="mlp", steps=30, warmup_steps=5, progress=False))
    return run


def rollout(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = cli.main(["rollout", *args])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, json.loads(lines[-1]) if code == 0 else None, captured.err


def test_rollout_is_reproducible_and_logged(run_dir, capsys):
    args = ("--checkpoint", str(run_dir), "--episodes", "3", "--no-progress", "--json")
    code, first, _ = rollout(capsys, *args)
    assert code == 0
    _, second, _ = rollout(capsys, *args)
    assert first["episodes"] == 3 and first["ci95"][0] <= first["success_rate"] <= first["ci95"][1]
    for key in ("lengths", "returns", "success", "seed"):
        assert first[key] == second[key]
    log = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    assert len(log) == 2 and log[-1]["returns"] == second["returns"] and log[-1]["step"] == 30


def test_recording_continues_after_the_largest_seed_in_the_dataset(run_dir, tmp_path, capsys):
    from protege.datasets import Dataset

    record = str(tmp_path / "rollouts.zarr")
    args = ("--checkpoint", str(run_dir), "--episodes", "2", "--record", record, "--no-progress", "--no-log", "--json")
    for extra in ((), (), ("--seed", "7")):
        assert rollout(capsys, *args, *extra)[0] == 0
    assert Dataset(record).meta("seed").tolist() == [100000, 100001, 100002, 100003, 7, 8]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--envs", "0"), "--envs must be at least 1"),
        (("--task", "push"), "trained on task 'lift', not 'push'"),
        (("--cameras", "nope"), "unknown camera nope"),
        (("--videos", "2"), "--videos needs --video-dir"),
        (("--intervene", "keyboard"), "give the dataset with --record"),
    ],
)
def test_bad_input_is_one_line(run_dir, capsys, args, message):
    code, _, err = rollout(capsys, "--checkpoint", str(run_dir), "--no-progress", "--no-log", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_directory_that_is_not_a_run_is_refused(tmp_path, capsys):
    code, _, err = rollout(capsys, "--checkpoint", str(tmp_path))
    assert code == 2 and "is not a protege run" in err
