"""Callers catch what went wrong by type: an incompatible env, a missing or corrupt run, a policy that does
not fit, a missing extra; each is its package's base error, which the command line prints as one line."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from helpers import train_tiny_mlp

from protege.launch.runs import open_run
from protege.policies.errors import (
    CorruptCheckpointError,
    IncompatiblePolicyError,
    PolicyError,
    RunNotFoundError,
)
from protege.sim import EnvSpec, IncompatibleEnvError, SimError
from protege.teleop.errors import MissingExtraError, TeleopError
from protege.teleop.runtime import ray_pool


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return train_tiny_mlp(tmp_path_factory.mktemp("errors"))


@pytest.fixture
def run_dir(trained, tmp_path) -> Path:
    """A copy of the tiny lift run, free to break."""
    return Path(shutil.copytree(trained, tmp_path / "run"))


def _edit_config(run_dir: Path, **changes: object) -> None:
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, **changes}))


def test_another_task_is_an_incompatible_env(run_dir):
    with pytest.raises(IncompatibleEnvError, match="checkpoint was trained on task 'lift', not 'push'") as caught:
        open_run(run_dir, task="push")
    assert isinstance(caught.value, SimError)


def test_a_dataset_env_of_another_rate_is_an_incompatible_env(run_dir):
    slow = EnvSpec.make("lift", cameras=(), control_hz=10)
    with pytest.raises(IncompatibleEnvError, match="rate 20 Hz with 25 substeps, not 10 Hz with 50"):
        open_run(run_dir, env=slow)


def test_a_policy_that_does_not_fit_the_env_is_incompatible(run_dir):
    inputs = json.loads((run_dir / "config.json").read_text())["inputs"]
    _edit_config(run_dir, inputs=[{**f, "shape": [4]} if f["key"] == "ee_pos" else f for f in inputs])
    with pytest.raises(IncompatiblePolicyError,
                       match=r"observation 'ee_pos': checkpoint expects shape \(4,\)") as caught:
        open_run(run_dir)
    assert isinstance(caught.value, PolicyError)


def test_a_missing_run_and_a_corrupt_one(run_dir, tmp_path):
    with pytest.raises(RunNotFoundError, match="is not a protege run: no config.json"):
        open_run(tmp_path / "nothing")
    _edit_config(run_dir, inputs=[{"key": "ee_pos"}])
    with pytest.raises(CorruptCheckpointError, match="malformed config"):
        open_run(run_dir)
    (run_dir / "config.json").write_text("{")
    with pytest.raises(CorruptCheckpointError, match="corrupt"):
        open_run(run_dir)


def test_ray_not_installed_is_a_missing_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if it were not installed
    with pytest.raises(MissingExtraError, match=r"--ray needs pip install 'protege\[ray\]'") as caught:
        ray_pool.connect("local")
    assert caught.value.extra == "ray" and isinstance(caught.value, TeleopError)
