"""DAgger with the scripted expert: each round aggregates exactly the frames it labelled."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from protege.datasets import Dataset, Source
from protege.launch import cli
from protege.launch.errors import UserError
from protege.launch.experiments.dagger import DaggerConfig, run_dagger
from protege.launch.report import write_report
from protege.sim import EnvSpec


@pytest.fixture(scope="module")
def dagger_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("dagger") / "run"
    config = DaggerConfig(task="reach", out=str(out), rounds=3, demos=2, episodes_per_round=2, beta=0.5, steps=20,
                          eval_episodes=2, compare_bc=True, correction_share=0.5, overrides=["warmup_steps=5"],
                          progress=False)
    return out, run_dagger(config)


def test_each_round_adds_exactly_its_labelled_rollouts(dagger_run):
    out, log = dagger_run
    ds = Dataset(str(out / "data.zarr"))
    rounds = log.rounds
    assert [r.round for r in rounds] == [0, 1, 2]
    assert rounds[-1].labelled_frames == ds.num_frames
    assert ds.num_episodes == 2 + 2 + 2
    lengths = np.diff(np.concatenate([[0], ds.episode_ends]))
    assert rounds[0].labelled_frames == lengths[:2].sum()
    assert rounds[1].added_frames == lengths[2:4].sum() and rounds[2].added_frames == lengths[4:].sum()
    assert ds.meta("source")[:2].tolist() == [int(Source.EXPERT)] * 2
    assert json.loads((out / "dagger.json").read_text()) == log.to_json()
    assert (out / "dagger.png").stat().st_size > 0


def test_labels_are_the_experts_actions_on_the_policys_states(dagger_run):
    from protege.sim.experts import make_expert
    from protege.teleop.runtime.collect import make_env

    out, _ = dagger_run
    ds = Dataset(str(out / "data.zarr"))
    env = make_env(EnvSpec.make("reach", cameras=()))
    expert = make_expert(env, noise=0.0)
    start = int(ds.episode_ends[1])  # the first labelled rollout
    states, actions = ds["sim_state"][start:], ds["action"][start:]
    for i in range(0, len(states), 5):
        env.set_state(states[i])
        np.testing.assert_allclose(actions[i], expert.act(None), atol=1e-12)


def test_handover_mixing_labels_policy_roll_ins_and_expert_roll_outs(tmp_path):
    from protege.sim.experts import make_expert
    from protege.teleop.runtime.collect import make_env

    torch.set_num_threads(1)
    out = tmp_path / "run"
    config = DaggerConfig(task="reach", out=str(out), rounds=2, demos=2, episodes_per_round=3, mixing="handover",
                          steps=20, eval_episodes=1, overrides=["warmup_steps=5"], progress=False)
    log = run_dagger(config)
    assert log.rounds[1].beta is None and log.config["mixing"] == "handover"
    ds = Dataset(str(out / "data.zarr"))
    env = make_env(EnvSpec.make("reach", cameras=()))
    expert = make_expert(env, noise=0.0)
    assert ds["intervention"][int(ds.episode_ends[1]):].any()  # the expert took over in some rollout
    for episode in range(2, 5):
        frames = ds.episode(episode).data
        flags = frames["intervention"]
        first = int(np.argmax(flags)) if flags.any() else len(flags)
        assert not flags[:first].any() and flags[first:].all()  # the policy rolls in, the expert rolls out
        for i in (0, first - 1, len(flags) - 1):  # labelled on both sides of the hand-over
            if i >= 0:
                env.set_state(frames["sim_state"][i])
                np.testing.assert_allclose(frames["action"][i], expert.act(None), atol=1e-12)
    with pytest.raises(UserError, match="--mixing handover needs the scripted expert"):
        DaggerConfig(task="reach", out=str(tmp_path / "x"), expert="keyboard", demos_dataset=str(out / "data.zarr"),
                     mixing="handover").check()


def test_bc_baseline_gets_at_least_the_same_label_budget(dagger_run):
    _, log = dagger_run
    for dagger, bc in zip(log.rounds, log.bc, strict=True):
        assert bc.labelled_frames >= dagger.labelled_frames


def test_an_existing_run_and_bad_settings_are_refused(dagger_run, tmp_path, capsys):
    out, _ = dagger_run
    with pytest.raises(UserError, match="already holds a DAgger run"):
        run_dagger(DaggerConfig(task="reach", out=str(out)))
    code = cli.main(["dagger", "--task", "reach", "--expert", "scripted", "--out", str(tmp_path / "x"), "--beta", "2"])
    assert code == 2 and "--beta must be in [0, 1]" in capsys.readouterr().err
    code = cli.main(["dagger", "--task", "reach", "--expert", "scripted", "--out", str(tmp_path / "x"),
                     "--correction-share", "1"])
    assert code == 2 and "--correction-share must be in (0, 1)" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_persons_takeovers_join_the_aggregate_as_segments(tmp_path):
    import pygame

    from protege.teleop.scripted_input import ScriptedInput

    pygame.init()
    demos = str(tmp_path / "demos.zarr")  # seeds 50000 and 50001, where labelled rollouts once started too
    assert cli.main(["record", "--task", "reach", "--expert", "scripted", "--episodes", "2", "--cameras", "",
                     "--out", demos, "--no-progress", "--seed", "50000"]) == 0
    script = ScriptedInput().key(2, "w", hold=5).key(2, "left shift", hold=5).key(12, "left shift", hold=3)
    config = DaggerConfig(task="reach", out=str(tmp_path / "run"), expert="keyboard", demos_dataset=demos, rounds=2,
                          episodes_per_round=1, steps=20, eval_episodes=1, overrides=["warmup_steps=5"],
                          progress=False)
    log = run_dagger(config, scripts=lambda r: script)
    data, rollouts = Dataset(str(tmp_path / "run" / "data.zarr")), Dataset(str(tmp_path / "run" / "interventions.zarr"))
    assert data.num_episodes == 2 + 2 and log.rounds[1].added_frames == 5 + 3
    assert data.meta("source")[2:].tolist() == [int(Source.INTERVENTION)] * 2
    assert data.meta("parent_frame")[2:].tolist() == [2, 12] and data.meta("parent_episode")[2:].tolist() == [0, 0]
    assert data.meta("parent_frame")[:2].tolist() == [-1, -1]  # the demos have no parent
    assert rollouts.meta("seed").tolist() == [50002] and data.meta("seed").tolist() == [50000, 50001, 50002, 50002]
    segment = data.episode(2).data
    np.testing.assert_array_equal(segment["sim_state"], rollouts["sim_state"][2:7])
    assert segment["intervention"].tolist() == [1] * 5
    assert segment["action"][:, 0].max() < 0  # "w": forward, -x in the front view


def test_a_persons_rollouts_are_struck_by_the_disturbances(tmp_path):
    import pygame

    from protege.sim.disturbances import parse_disturbances
    from protege.teleop.scripted_input import ScriptedInput

    pygame.init()
    demos = str(tmp_path / "demos.zarr")
    assert cli.main(["record", "--task", "reach", "--expert", "scripted", "--episodes", "2", "--cameras", "",
                     "--out", demos, "--no-progress"]) == 0
    config = DaggerConfig(task="reach", out=str(tmp_path / "run"), expert="keyboard", demos_dataset=demos, rounds=2,
                          episodes_per_round=1, steps=20, eval_episodes=2, overrides=["warmup_steps=5"],
                          disturb=parse_disturbances("arm_shove=0.05"), progress=False)
    log = run_dagger(config, scripts=lambda r: ScriptedInput())
    rollout = Dataset(str(tmp_path / "run" / "interventions.zarr"))
    steps = np.linalg.norm(np.diff(rollout["ee_pos"][:, :2], axis=0), axis=1)
    assert steps.max() == pytest.approx(0.05, abs=0.01), "the person's rollout was shoved"
    assert all(point.strikes == 2 for point in log.rounds), "every evaluation ran under the disturbances"


def test_a_person_as_expert_needs_demos(tmp_path):
    with pytest.raises(UserError, match="--demos-dataset"):
        run_dagger(DaggerConfig(task="reach", out=str(tmp_path / "run"), expert="gamepad"))


def test_rewind_flow_aggregates_only_the_corrected_frames(tmp_path):
    from protege.teleop.correct import Correction

    demos = str(tmp_path / "demos.zarr")
    assert cli.main(["record", "--task", "reach", "--expert", "scripted", "--episodes", "2", "--cameras", "",
                     "--out", demos, "--no-progress"]) == 0
    config = DaggerConfig(task="reach", out=str(tmp_path / "run"), expert="keyboard", flow="rewind",
                          demos_dataset=demos, rounds=2, episodes_per_round=2, steps=20, eval_episodes=1,
                          overrides=["warmup_steps=5"], progress=False)
    log = run_dagger(config, scripts=lambda r: [Correction(episode=1, frame=3, source="expert", ticks=5)])
    data, rollouts = Dataset(str(tmp_path / "run" / "data.zarr")), Dataset(str(tmp_path / "run" / "interventions.zarr"))
    assert rollouts.num_episodes == 2 + 1  # the policy's rollouts, then the correction (the policy resumed after it)
    assert data.num_episodes == 2 + 1 and log.rounds[1].added_frames == 5
    segment = data.episode(2).data
    np.testing.assert_array_equal(segment["sim_state"][0], rollouts["sim_state"][int(rollouts.episode_ends[0]) + 3])
    assert segment["intervention"].tolist() == [1] * 5


def test_the_env_comes_from_the_demos_and_other_demos_are_refused_before_round_0(tmp_path, copy_arm):
    torch.set_num_threads(1)
    demos = str(tmp_path / "demos.zarr")
    assert cli.main(["record", "--task", "reach", "--expert", "scripted", "--episodes", "2", "--cameras", "",
                     "--fps", "10", "--out", demos, "--no-progress"]) == 0
    settings = {"demos_dataset": demos, "rounds": 2, "episodes_per_round": 1, "steps": 20, "eval_episodes": 1,
                "overrides": ["warmup_steps=5"], "progress": False}
    log = run_dagger(DaggerConfig(task="reach", out=str(tmp_path / "run"), **settings))
    data = Dataset(str(tmp_path / "run" / "data.zarr"))
    assert data.fps == 10.0 and data.num_episodes == 3 and log.rounds[1].added_frames > 0
    other = copy_arm(tmp_path / "other", mjcf_edit=lambda xml: xml.replace("0.3", "0.32", 1))
    for task, robot, message in (("lift", None, "holds task 'reach', not 'lift'"),
                                 ("reach", str(other), "is another arm than the recorded 'protege_arm'")):
        out = tmp_path / f"refused_{task}"
        with pytest.raises(UserError, match=message):
            run_dagger(DaggerConfig(task=task, robot=robot, out=str(out), **settings))
        assert not (out / "round_0").exists()


def test_disturbed_dagger_evaluates_every_curve_under_the_disturbances_beside_dart(tmp_path):
    torch.set_num_threads(1)
    lines: list[str] = []
    config = DaggerConfig(task="reach", out=str(tmp_path / "run"), rounds=2, demos=2, episodes_per_round=2, steps=20,
                          eval_episodes=2, compare_bc=True, dart_noise=1.0, overrides=["warmup_steps=5"],
                          disturb=cli_disturb("arm_shove,latency"), progress=False)
    log = run_dagger(config, notify=lines.append)
    assert log.disturb == "arm_shove=0.04,latency=1"
    for curve in (log.rounds, log.bc, log.dart):
        assert [p.round for p in curve] == [0, 1] and all(p.strikes > 0 for p in curve)
    for dagger, dart in zip(log.rounds, log.dart):
        assert dart.labelled_frames >= dagger.labelled_frames and dart.run.startswith("dart_")
    assert lines[0].startswith("round 0 of 1") and "BC with" in lines[-1] and "DART with" in lines[-1]
    assert Dataset(str(tmp_path / "run" / "dart.zarr")).num_episodes >= 2
    page = write_report(tmp_path / "run").html.read_text()
    assert page.count("<td>DART</td>") == 2 and "<th>DAgger conditions</th><td>arm_shove=0.04,latency=1</td>" in page


def cli_disturb(text: str):
    from protege.launch.cmd_rollout import parse_disturb

    return parse_disturb(text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--compare-dart", "1.0"), "--compare-dart takes a noise > 0 and needs --compare-bc"),
        (("--compare-bc", "--compare-dart", "0"), "--compare-dart takes a noise > 0"),
        (("--disturb", "quake"), "--disturb: unknown disturbance 'quake'"),
    ],
)
def test_bad_dagger_baselines_and_disturbances_are_one_line(tmp_path, capsys, args, message):
    code = cli.main(["dagger", "--task", "reach", "--expert", "scripted", "--out", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()
