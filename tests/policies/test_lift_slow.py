"""End to end on the real sim: scripted lift demos -> mlp -> closed-loop success (slow: minutes on a CPU)."""

from __future__ import annotations

import pytest

from protege.launch import cli
from protege.policies.checkpoint import check_compatible, load_policy
from protege.policies.config import TrainConfig
from protege.policies.trainer import train


@pytest.mark.slow
def test_mlp_lifts_the_cube(tmp_path):
    from protege.sim.env import ProtegeEnv

    demos = str(tmp_path / "lift.zarr")
    assert cli.main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "100", "--cameras", "",
                     "--out", demos, "--no-progress"]) == 0
    train(TrainConfig(dataset=demos, out=str(tmp_path / "run"), policy="mlp", steps=5000, progress=False))
    policy = load_policy(tmp_path / "run")
    env = ProtegeEnv(task="lift", cameras=[])
    shapes = {k: space.shape for k, space in env.observation_space.spaces.items()}
    check_compatible(policy.meta, shapes, env.action_space.shape[0], task="lift")
    successes = 0
    for episode in range(50):
        obs, info = env.reset(seed=10_000 + episode)
        policy.reset()
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(policy.act(obs))
            done = terminated or truncated
        successes += bool(info["success"])
    assert successes >= 45, f"mlp lifted the cube in {successes}/50 episodes"
