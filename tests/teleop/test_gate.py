"""The gated operator: when each gate fires, the reaction time, the hand-back, that only the frames it drove
are labelled, and that its rollouts do not depend on the number of processes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from helpers import assert_same_dataset
from rollout_policies import make_reach_policy

from protege.datasets import Dataset
from protege.launch import cli
from protege.launch.experiments.dagger import aggregate_interventions
from protege.sim import EnvSpec
from protege.teleop.errors import TeleopError
from protege.teleop.runtime.collect import make_env
from protege.teleop.runtime.gate import (
    GateConfig,
    GatedArbiter,
    Watcher,
    compare_gates,
    deviation,
    onsets,
    precision_recall,
)
from protege.teleop.runtime.rollout import RolloutSpec, run_rollouts

STILL = np.zeros(7)
AWAY = np.array([0.02, 0, 0, 0, 0, 0, 0])  # a full step the operator would not take


class Scripted:
    """A pilot proposing ``actions`` in turn (the last one from then on)."""

    def __init__(self, kind: str, actions: list[np.ndarray]) -> None:
        self.kind, self.actions, self.tick = kind, actions, 0

    def reset(self, seed: int | None = None) -> None:
        self.tick = 0

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        self.tick += 1
        return self.actions[min(self.tick, len(self.actions)) - 1]


class Doubtful(Scripted):
    """A policy agreeing with the operator whose doubt follows ``doubts`` (None: it has none)."""

    def __init__(self, doubts: list[float | None]) -> None:
        super().__init__("policy", [STILL])
        self.doubts = doubts

    @property
    def doubt(self) -> float | None:
        return self.doubts[min(self.tick, len(self.doubts)) - 1]


@dataclass
class Strikes:
    """Stands in for a Disturber: its strikes that moved something."""

    applied: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def env():
    env = make_env(EnvSpec.make("reach", cameras=()))
    env.reset(seed=0)
    yield env
    env.close()


def drivers(env, config: GateConfig, policy: list[np.ndarray], ticks: int, strikes: Strikes | None = None,
            strike_at: int | None = None) -> list[int]:
    """Who drove each tick (0: the operator, 1: the policy), the env standing still."""
    arbiter = GatedArbiter(env, config, strikes)
    pilots = [Scripted("expert", [STILL]), Scripted("policy", policy)]
    chosen = []
    for tick in range(ticks):
        if strikes is not None and tick == strike_at:
            strikes.applied.append("object_push")
        chosen.append(arbiter.choose(pilots, {}).driver)
    return chosen


def test_deviation_fires_after_k_ticks_apart_and_the_operator_reacts_then_hands_back(env):
    config = GateConfig(gates=("deviation",), deviation_ticks=3, reaction_s=0.3, agree_ticks=5)
    policy = [STILL] * 4 + [AWAY] * 12 + [STILL]  # departs from tick 4 to 15, agrees again from 16
    chosen = drivers(env, config, policy, 30)
    fired, reaction = 4 + 3 - 1, round(0.3 * env.control_hz)  # the third tick apart; 6 ticks at 20 Hz
    assert chosen[: fired + reaction] == [1] * (fired + reaction)
    assert chosen[fired + reaction : 20] == [0] * (20 - fired - reaction)  # until the 5th tick in agreement (16-20)
    assert chosen[20:] == [1] * 10


def test_brief_departures_and_agreement_fire_nothing(env):
    config = GateConfig(gates=("deviation",), deviation_ticks=3)
    assert set(drivers(env, config, [STILL, AWAY, AWAY, STILL] * 5, 20)) == {1}
    assert deviation(AWAY, STILL, env.action_space.high) == pytest.approx(1.0)  # a full step in one dimension


def test_a_strike_fires_the_strike_gate_and_no_other(env):
    chosen = drivers(env, GateConfig(gates=("strike",), reaction_s=0.0), [STILL], 10, Strikes(), strike_at=4)
    assert chosen[:4] == [1] * 4 and chosen[4] == 0  # no reaction time: it takes over at once
    assert set(drivers(env, GateConfig(gates=("deviation", "stall"), reaction_s=0.0, stall_ticks=50), [STILL], 10,
                       Strikes(), strike_at=4)) == {1}


def test_a_stall_fires_when_the_reward_does_not_rise(env):
    chosen = drivers(env, GateConfig(gates=("stall",), stall_ticks=10, reaction_s=0.0), [STILL], 15)
    assert chosen.index(0) == 10  # the reward rose on tick 0 (from nothing), never after


def test_doubt_fires_as_soon_as_the_policy_is_unsure(env):
    arbiter = GatedArbiter(env, GateConfig(gates=("doubt",), doubt=0.5, deviation_ticks=3, reaction_s=0.0))
    pilots = [Scripted("expert", [STILL]), Doubtful([0.1, 0.4, 0.5, 0.9, 0.2, 0.1])]
    chosen = [arbiter.choose(pilots, {}).driver for _ in range(6)]
    assert chosen == [1] * 3 + [0] * 3 and arbiter.fired == ["doubt"]
    arbiter = GatedArbiter(env, GateConfig(gates=("doubt",), reaction_s=0.0))
    assert {arbiter.choose([Scripted("expert", [STILL]), Doubtful([None])], {}).driver for _ in range(10)} == {1}


@pytest.mark.parametrize("settings,message", [
    ({"gates": ("bogus",)}, "unknown gate 'bogus'"),
    ({"gates": ()}, "give at least one gate"),
    ({"threshold": 0.0}, "thresholds must be > 0"),
    ({"doubt": -1.0}, "thresholds must be > 0"),
    ({"reaction_s": -0.1}, "reaction time must be in"),
    ({"agree_ticks": 0}, "agree ticks must be at least 1"),
])
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(TeleopError, match=message):
        GateConfig(**settings)


@pytest.mark.parametrize("flags,message", [
    (("--gate-threshold", "-1"), "thresholds must be > 0"),
    (("--doubt-threshold", "0"), "thresholds must be > 0"),
    (("--gate", "doubt", "--policy", "cnn"), "the doubt gate reads the mlp's members"),
    (("--reaction-time", "-0.3"), "reaction time must be in"),
    (("--gate", "deviation,bogus"), "unknown gate 'bogus'"),
])
def test_bad_gate_flags_are_one_line(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["dagger", "--task", "reach", "--expert", "gated", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_compare_dagger_needs_the_gated_operator(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["dagger", "--task", "reach", "--expert", "scripted", "--compare-dagger", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--compare-dagger compares the gated operator" in err and err.count("\n") == 1 and not out.exists()


def test_request_help_needs_the_window_and_a_policy_with_doubt(tmp_path, capsys):
    from helpers import train_tiny_mlp

    run = train_tiny_mlp(tmp_path)  # one head: no doubt
    capsys.readouterr()
    base = ["rollout", "--checkpoint", str(run), "--request-help", "0.5"]
    assert cli.main(base) == 2
    assert "--request-help: a person's settings, only with --intervene" in capsys.readouterr().err
    record = tmp_path / "help.zarr"
    assert cli.main([*base, "--intervene", "keyboard", "--record", str(record)]) == 2
    err = capsys.readouterr().err
    assert "--request-help reads the policy's doubt" in err and err.count("\n") == 1 and not record.exists()


def test_only_the_frames_the_operator_drove_are_labelled_and_any_envs_gives_the_same(tmp_path):
    spec = RolloutSpec(EnvSpec.make("lift", cameras=()), make_reach_policy, success_hold=1, record=True,
                       gate=GateConfig(agree_ticks=3))
    one = run_rollouts(spec, 3, seed=3, envs=1, record_to=str(tmp_path / "one.zarr"), progress=False)
    two = run_rollouts(spec, 3, seed=3, envs=2, record_to=str(tmp_path / "two.zarr"), progress=False)
    assert_same_dataset(str(tmp_path / "one.zarr"), str(tmp_path / "two.zarr"))
    assert [e.takeovers for e in one.episodes] == [e.takeovers for e in two.episodes]
    ds = Dataset(str(tmp_path / "one.zarr"))
    flags = np.concatenate([ds.episode(i).data["intervention"] for i in range(ds.num_episodes)])
    driven = sum(e.expert_ticks for e in one.episodes)
    assert 0 < driven < len(flags) and int(flags.sum()) == driven
    assert all(e.takeovers >= 1 for e in one.episodes)  # the reaching policy never lifts: the operator steps in
    added = aggregate_interventions(tmp_path / "one.zarr", 0, tmp_path / "labels.zarr")
    labels = Dataset(str(tmp_path / "labels.zarr"))
    assert added == driven == labels.num_frames
    assert labels.num_episodes == sum(e.takeovers for e in one.episodes)  # one segment per take-over
    assert np.all(np.concatenate([labels.episode(i).data["intervention"] for i in range(labels.num_episodes)]) == 1)


def test_onsets_fire_once_per_run_of_flags():
    assert onsets([0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1], 3) == [3, 11]
    assert onsets([1, 1], 1) == [0]


def test_precision_and_recall_match_firings_within_the_window():
    assert precision_recall([10, 50], [12, 80, 90], window=5) == (0.5, 1 / 3)
    assert precision_recall([], [3], window=5) == (1.0, 0.0) and precision_recall([3], [], window=5) == (0.0, 1.0)


def test_a_gate_asking_since_before_the_window_finds_the_firing_but_its_late_onset_is_not_precise():
    asking = list(range(10, 46))  # doubtful from tick 10 to 45: one firing, at 10
    assert precision_recall([10], [40], window=5) == (0.0, 0.0)
    assert precision_recall([10], [40], window=5, asking=asking) == (0.0, 1.0)
    assert precision_recall([10], [60], window=5, asking=asking) == (0.0, 0.0)


def test_compare_gates_scores_each_doubt_threshold_against_the_deviation_gate():
    watcher = Watcher(np.ones(7))
    watcher.reset()
    watcher.deviations[-1].extend([0.0] * 10 + [1.0] * 5 + [0.0] * 10)  # the operator would step in at tick 12
    watcher.doubts[-1].extend([0.1] * 8 + [0.8] * 6 + [0.1] * 11)  # doubtful from tick 8: fires at once
    low, high = compare_gates(watcher, GateConfig(deviation_ticks=3), [0.5, 0.9], window=5)
    assert (low.firings, low.deviation_firings, low.precision, low.recall) == (1, 1, 1.0, 1.0)
    assert (high.firings, high.precision, high.recall) == (0, 1.0, 0.0)


def test_compare_gates_credits_a_doubt_raised_long_before_the_operator_steps_in():
    watcher = Watcher(np.ones(7))
    watcher.reset()
    watcher.deviations[-1].extend([0.0] * 20 + [1.0] * 5 + [0.0] * 5)  # the operator would step in at tick 22
    watcher.doubts[-1].extend([0.8] * 24 + [0.1] * 6)  # doubtful from tick 0: fires at 0, still asking at 22
    (row,) = compare_gates(watcher, GateConfig(deviation_ticks=3), [0.5], window=5)
    assert (row.firings, row.precision, row.recall) == (1, 0.0, 1.0)


def test_bench_gate_needs_a_policy_with_doubt(tmp_path, capsys):
    from helpers import train_tiny_mlp

    run = train_tiny_mlp(tmp_path)  # one head: no doubt
    capsys.readouterr()
    assert cli.main(["bench", "gate", "--checkpoint", str(run)]) == 2
    assert "has no doubt to measure" in capsys.readouterr().err
    assert cli.main(["bench", "sim", "--checkpoint", str(run)]) == 2
    assert "--checkpoint is for bench gate" in capsys.readouterr().err
