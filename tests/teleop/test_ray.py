"""Scripted collection and rollouts on Ray: the local pool's datasets and numbers, array for array, through
a killed worker and on a two-node cluster; without Ray, --ray fails in one line naming the extra."""

from __future__ import annotations

import functools
import os
import signal
import sys

import numpy as np
import pytest
from helpers import assert_same_dataset
from rollout_policies import make_reach_policy

from protege.datasets import Dataset
from protege.launch import cli
from protege.sim import EnvSpec
from protege.teleop.runtime import ray_pool
from protege.teleop.runtime.collect import collect, collect_worker
from protege.teleop.runtime.rollout import RolloutSpec, run_rollouts

ray = pytest.importorskip("ray")

LIFT = EnvSpec.make("lift", cameras=(), image_size=64)
EPISODES = 8


@pytest.fixture(scope="module")
def local_ray():
    here = os.path.dirname(os.path.abspath(__file__))  # rollout_policies, for the workers
    ray.init(num_cpus=2, logging_level="WARNING", log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": here}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pool_demos(tmp_path_factory) -> str:
    """8 scripted lift episodes from the local pool of 2 processes."""
    out = str(tmp_path_factory.mktemp("pool") / "demos.zarr")
    collect(LIFT, out, EPISODES, noise=0.2, workers=2, progress=False)
    return out


def test_recording_on_ray_gives_the_local_pool_dataset(local_ray, pool_demos, tmp_path):
    out = str(tmp_path / "ray.zarr")
    result = collect(LIFT, out, EPISODES, noise=0.2, workers=2, progress=False, ray=ray_pool.LOCAL)
    assert result["episodes"] == EPISODES
    assert_same_dataset(pool_demos, out)


def test_evaluating_on_ray_gives_the_local_numbers_and_recording(local_ray, tmp_path):
    spec = RolloutSpec(LIFT, make_reach_policy, success_hold=1, record=True)
    local = run_rollouts(spec, EPISODES, seed=5, envs=1, record_to=str(tmp_path / "local.zarr"), progress=False)
    on_ray = run_rollouts(spec, EPISODES, seed=5, envs=2, record_to=str(tmp_path / "ray.zarr"), progress=False,
                          ray=ray_pool.LOCAL)
    for key in ("lengths", "returns", "success"):
        assert getattr(local.summary, key) == getattr(on_ray.summary, key)
    assert [o.seed for o in on_ray.episodes] == list(range(5, 5 + EPISODES))
    assert_same_dataset(str(tmp_path / "local.zarr"), str(tmp_path / "ray.zarr"))


def _worker_pids() -> list[int]:
    import psutil

    pids = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "_Actor" in " ".join(child.cmdline()):
                pids.append(child.pid)
        except psutil.Error:  # gone, or a zombie an earlier test left unreaped
            continue
    return pids


def test_a_killed_worker_loses_and_repeats_no_episode(local_ray, pool_demos):
    make = functools.partial(functools.partial, collect_worker, LIFT, 0.2, 10, False, ())
    results = ray_pool.ordered_map(make, [([s],) for s in range(EPISODES)], 2, ray_pool.LOCAL)
    episodes = next(results)  # both actors are up and busy with the calls in flight
    pids = _worker_pids()
    assert len(pids) == 2
    os.kill(pids[-1], signal.SIGKILL)
    for more in results:
        episodes += more
    assert [e.seed for e in episodes] == list(range(EPISODES))
    reference = Dataset(pool_demos)
    for index, episode in enumerate(episodes):
        np.testing.assert_array_equal(episode.data["action"], reference.episode(index).data["action"])


def test_two_nodes_record_the_local_pool_dataset(pool_demos, tmp_path):
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        out = str(tmp_path / "cluster.zarr")
        collect(LIFT, out, EPISODES, noise=0.2, workers=2, progress=False, ray=cluster.address)
        assert len({n["NodeID"] for n in ray.nodes() if n["Alive"]}) == 2
        assert_same_dataset(pool_demos, out)
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_without_ray_the_flag_names_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    code = cli.main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "2", "--cameras", "",
                     "--out", str(tmp_path / "d.zarr"), "--no-progress", "--ray"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'protege[ray]'" in err and len(err.strip().splitlines()) == 1


def test_dagger_on_ray_aggregates_the_local_runs_data(local_ray, tmp_path):
    import torch

    from protege.launch.experiments.dagger import DaggerConfig, run_dagger

    torch.set_num_threads(1)
    runs = {}
    for name, address in (("local", None), ("ray", ray_pool.LOCAL)):
        config = DaggerConfig(task="reach", out=str(tmp_path / name), rounds=2, demos=2, episodes_per_round=2,
                              mixing="handover", steps=20, eval_episodes=2, envs=2, ray=address,
                              overrides=["warmup_steps=5"], progress=False)
        runs[name] = run_dagger(config)
    assert Dataset(str(tmp_path / "local" / "data.zarr")).num_episodes == 4
    assert_same_dataset(tmp_path / "local" / "data.zarr", tmp_path / "ray" / "data.zarr")
    assert [r.success_rate for r in runs["local"].rounds] == [r.success_rate for r in runs["ray"].rounds]
