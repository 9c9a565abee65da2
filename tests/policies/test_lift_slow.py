"""End to end on the real sim: 100 scripted lift demos -> policy trained on one CPU core -> success over
50 unseen seeded episodes, judged by `protege rollout` (success must hold for 10 ticks).

Slow tier (`pytest -m slow tests/policies/test_lift_slow.py`), 13.5 min in all. Measured on one core
(recording + training + rollouts; successes over seeds 10000..10049): mlp 36 s (46/50), cnn with two 64 px
cameras 199 s (48/50), act 199 s (49/50), diffusion 366 s (50/50). mlp and diffusion train their defaults;
cnn and act their smaller CPU settings (their defaults are sized for a GPU, see their configs).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from protege.launch import cli
from protege.policies.act.config import ACT_CPU_SETTINGS
from protege.policies.base import POLICIES
from protege.policies.cnn.config import CNN_CPU_SETTINGS
from protege.policies.config import TrainConfig
from protege.policies.trainer import train

EVAL_SEED = 10_000  # demos use seeds 0..99


@dataclass(frozen=True)
class LiftCase:
    policy: str
    steps: int
    min_successes: int
    cameras: str = ""  # recorded cameras; none: the policy sees the low-dim state, object pose included
    image_size: int = 128
    overrides: dict[str, Any] = field(default_factory=dict)  # changes to the policy's default config


CASES = [
    LiftCase("mlp", steps=5000, min_successes=45),
    LiftCase("cnn", steps=3000, min_successes=40, cameras="front,wrist", image_size=64,
             overrides=CNN_CPU_SETTINGS),
    LiftCase("act", steps=2000, min_successes=40, overrides=ACT_CPU_SETTINGS),
    LiftCase("diffusion", steps=5000, min_successes=40),
]


def _successes(run: str, capsys: pytest.CaptureFixture[str]) -> int:
    capsys.readouterr()
    assert cli.main(["rollout", "--checkpoint", run, "--episodes", "50", "--seed", str(EVAL_SEED),
                     "--no-progress", "--json"]) == 0
    return int(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["successes"])


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.policy)
def test_policy_lifts_the_cube(case: LiftCase, tmp_path, capsys):
    demos, run = str(tmp_path / "lift.zarr"), str(tmp_path / "run")
    assert cli.main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "100", "--cameras",
                     case.cameras, "--image-size", str(case.image_size), "--out", demos, "--no-progress"]) == 0
    policy_config = dataclasses.replace(POLICIES[case.policy].config_class(), **case.overrides)
    train(TrainConfig(dataset=demos, out=run, policy=case.policy, steps=case.steps, device="cpu", progress=False),
          policy_config)
    successes = _successes(run, capsys)
    assert successes >= case.min_successes, f"{case.policy} lifted the cube in {successes}/50 episodes"
