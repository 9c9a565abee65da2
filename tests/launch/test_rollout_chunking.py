"""`protege rollout --inference-delay/--chunking`: a delay in ticks, the same figures for any --envs, and one
line for what a policy cannot run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from protege.launch import cli
from tests.helpers import demos_and_run, one_line


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-step mlp and a 4-step diffusion policy (8-action chunks, 4 run per request) on two lift demos."""
    import torch

    from protege.policies.config import TrainConfig
    from protege.policies.diffusion.config import DiffusionConfig
    from protege.policies.trainer import train

    root = tmp_path_factory.mktemp("chunking")
    demos, mlp = demos_and_run(root, ["record", "--task", "lift", "--expert", "scripted", "--cameras", "",
                                      "--no-progress"])
    torch.manual_seed(0)
    diffusion = root / "diffusion"
    train(TrainConfig(dataset=str(demos), out=str(diffusion), policy="diffusion", steps=4, warmup_steps=1,
                      progress=False),
          DiffusionConfig(horizon=8, n_action_steps=4, down_dims=[16, 32], n_groups=4, step_embed_dim=16,
                          inference_steps=3))
    return {"mlp": mlp, "diffusion": diffusion}


@pytest.mark.parametrize("chunking", ["naive", "rtc", "ensemble", "sync"])
def test_figures_are_the_same_for_one_env_and_two(runs, chunking, capsys):
    results = []
    for envs in ("1", "2"):
        argv = ["rollout", "--checkpoint", str(runs["diffusion"]), "--episodes", "2", "--no-log", "--no-progress",
                "--json", "--inference-delay", "2", "--chunking", chunking, "--envs", envs]
        assert cli.main(argv) == 0
        results.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    one, two = results
    for key in ("lengths", "success", "returns"):
        assert one[key] == two[key], key


def test_a_delay_changes_what_the_arm_does(runs, tmp_path):
    """The chunk a delayed policy asks for at tick t runs from t + D: the recorded actions differ from D = 0."""
    from protege.datasets import Dataset

    actions = {}
    for delay in ("0", "2"):
        out = tmp_path / f"d{delay}.zarr"
        argv = ["rollout", "--checkpoint", str(runs["diffusion"]), "--episodes", "1", "--no-log", "--no-progress",
                "--inference-delay", delay, "--chunking", "naive", "--record", str(out)]
        assert cli.main(argv) == 0
        actions[delay] = Dataset(str(out)).episode(0).data["action"]
    n = min(len(actions["0"]), len(actions["2"]))
    assert np.array_equal(actions["0"][:4], actions["2"][:4])  # the first chunk runs alike
    assert not np.array_equal(actions["0"][:n], actions["2"][:n])


def test_auto_measures_the_delay(runs, capsys):
    argv = ["rollout", "--checkpoint", str(runs["diffusion"]), "--episodes", "1", "--no-log", "--no-progress",
            "--inference-delay", "auto", "--chunking", "rtc", "--json"]
    assert cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["chunking"] == "rtc" and isinstance(result["inference_delay"], int)
    assert 0 <= result["inference_delay"] <= 2  # the tiny policy predicts in well under 100 ms


@pytest.mark.parametrize(("policy", "extra", "expected"), [
    ("diffusion", ["--inference-delay", "-1"], "--inference-delay must be >= 0"),
    ("diffusion", ["--inference-delay", "soon"], "whole number of ticks or auto"),
    ("diffusion", ["--inference-delay", "5"], "longer than the chunk allows"),
    ("mlp", ["--chunking", "rtc"], "needs a policy that predicts chunks"),
    ("mlp", ["--inference-delay", "1"], "longer than the chunk allows"),
    ("diffusion", ["--inference-delay", "1", "--intervene", "keyboard"], "a window measures the real delay"),
])
def test_bad_chunking_input_is_one_line(runs, policy, extra, expected, capsys):
    one_line(capsys, ["rollout", "--checkpoint", str(runs[policy]), "--episodes", "1", "--no-log", *extra],
             expected)


def test_windows_compute_a_chunked_policys_chunks_in_a_thread(runs):
    from protege.launch.runs import open_run
    from protege.policies.chunking import FixedDelay, ThreadedInference
    from protege.sim import ProtegeEnv

    diffusion = open_run(runs["diffusion"], delay=None)
    policy = diffusion.make_policy()
    assert isinstance(policy.executor.inference, ThreadedInference)
    assert policy.executor.chunking.strategy == "rtc"  # the best it has: diffusion follows guides
    env = ProtegeEnv(diffusion.env)
    try:
        obs, _ = env.reset(seed=0)
        policy.reset(seed=0)
        for _ in range(12):  # at a window's pace: the worker's chunks arrive between ticks
            obs, *_ = env.step(policy.act(obs))
            time.sleep(0.05)
    finally:
        env.close()
        policy.close()
    assert len(policy.chunk_starts) >= 2  # chunks computed meanwhile took over
    mlp = open_run(runs["mlp"], delay=None).make_policy()  # one action per call: nothing to overlap
    assert isinstance(mlp.executor.inference, FixedDelay) and mlp.executor.inference.delay == 0
