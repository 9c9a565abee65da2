"""`protege rollout` on a real checkpoint: reproducible JSON, the evaluation log, and one-line refusals."""

from __future__ import annotations

import json

import pytest
from helpers import train_tiny_mlp

from protege.launch import cli


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_tiny_mlp(tmp_path_factory.mktemp("rollout"))


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


def test_disturbed_evaluation_is_logged_under_its_specification(run_dir, capsys):
    args = ("--checkpoint", str(run_dir), "--episodes", "2", "--no-progress", "--json")
    code, result, _ = rollout(capsys, *args, "--disturb", "arm_shove=0.05,latency")
    assert code == 0 and result["disturb"] == "arm_shove=0.05,latency=1" and result["strikes"] >= 1
    log = [json.loads(line) for line in (run_dir / "evals.jsonl").read_text().splitlines()]
    assert log[-1]["disturb"] == "arm_shove=0.05,latency=1"


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
        (("--disturb", "wind"), "unknown disturbance 'wind'"),
        (("--disturb", "object_push=-0.01"), "magnitude must be a finite number >= 0"),
        (("--disturb", "latency=0.5"), "magnitude is a whole number of ticks"),
        (("--disturb", "latency,latency=2"), "given twice"),
    ],
)
def test_bad_input_is_one_line(run_dir, capsys, args, message):
    code, _, err = rollout(capsys, "--checkpoint", str(run_dir), "--no-progress", "--no-log", *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_directory_that_is_not_a_run_is_refused(tmp_path, capsys):
    code, _, err = rollout(capsys, "--checkpoint", str(tmp_path))
    assert code == 2 and "is not a protege run" in err


@pytest.fixture(scope="module")
def arm_run(tmp_path_factory, copy_arm):
    """A tiny mlp cloned from lift demos of an arm given by a spec file (a copy of the built-in arm named my_arm)."""
    root = tmp_path_factory.mktemp("arm")
    train_tiny_mlp(root, robot=str(copy_arm(root / "arm", name="my_arm")), episodes=2, steps=20)
    return root


def test_a_spec_file_arm_rolls_out_from_the_run_or_given_and_another_arm_is_refused(arm_run, copy_arm, capsys):
    from protege.datasets import Dataset

    run = str(arm_run / "run")
    args = ("--checkpoint", run, "--episodes", "1", "--no-progress", "--no-log", "--json")
    assert rollout(capsys, *args, "--record", str(arm_run / "r.zarr"))[0] == 0  # the spec path the run recorded
    attrs = Dataset(str(arm_run / "r.zarr")).attrs
    assert attrs["robot"] == "my_arm" and attrs["robot_source"] == str(arm_run / "arm" / "protege_arm.yaml")
    same = copy_arm(arm_run / "same", name="my_arm")
    assert rollout(capsys, *args, "--robot", str(same))[0] == 0
    other = copy_arm(arm_run / "other", name="my_arm", mjcf_edit=lambda xml: xml.replace("0.3", "0.32", 1))
    code, _, err = rollout(capsys, *args, "--robot", str(other))
    assert code == 2 and "is another arm than the recorded 'my_arm'" in err and len(err.strip().splitlines()) == 1
    code, _, err = rollout(capsys, *args, "--robot", "protege_arm")
    assert code == 2 and "robot protege_arm is 'protege_arm', not the recorded 'my_arm'" in err
    script = arm_run / "fix.json"
    script.write_text('[{"episode": 0, "frame": 2, "source": "expert", "ticks": 2}]')
    browse = ["browse", str(arm_run / "demos.zarr"), "--checkpoint", run, "--script", str(script),
              "--out", str(arm_run / "fix.zarr")]
    assert cli.main(browse) == 0
    assert cli.main([*browse, "--robot", str(other)]) == 2
    assert "is another arm than the recorded 'my_arm'" in capsys.readouterr().err


def _edited_run(run_dir, tmp_path, **dataset):
    """A copy of the lift run whose config.json says it was trained with these dataset attributes."""
    import shutil

    run = tmp_path / "edited"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("evals.jsonl"))
    meta = json.loads((run / "config.json").read_text())
    meta["dataset"].update(dataset)
    (run / "config.json").write_text(json.dumps(meta))
    return str(run)


def test_the_action_space_and_rate_of_the_checkpoint_are_the_envs(run_dir, tmp_path, capsys):
    from protege.datasets import Dataset

    joint = _edited_run(run_dir, tmp_path, action_space="joint")
    record = str(tmp_path / "joint.zarr")
    assert rollout(capsys, "--checkpoint", joint, "--episodes", "1", "--no-progress", "--no-log", "--json",
                   "--record", record)[0] == 0
    assert Dataset(record).attrs["action_space"] == "joint"  # rolled out in a joint env, not ee_delta
    script = tmp_path / "fix.json"
    script.write_text('[{"episode": 0, "frame": 2, "source": "expert", "ticks": 2}]')
    demos = str(run_dir.parent / "demos.zarr")
    assert cli.main(["browse", demos, "--checkpoint", joint, "--script", str(script), "--out", record]) == 2
    err = capsys.readouterr().err
    assert "checkpoint was trained on action space 'joint', not 'ee_delta'" in err and err.count("\n") == 1
    slow = _edited_run(run_dir, tmp_path / "slow", fps=10.0, substeps=50)
    assert cli.main(["browse", demos, "--checkpoint", slow, "--script", str(script), "--out", record]) == 2
    assert "checkpoint was trained on rate 10 Hz with 50 substeps, not 20 Hz with 25" in capsys.readouterr().err


def test_a_checkpoint_from_before_env_specs_still_rolls_out(run_dir, tmp_path, capsys):
    run = _edited_run(run_dir, tmp_path)
    meta = json.loads((tmp_path / "edited" / "config.json").read_text())
    old = ("task", "robot", "action_space", "action_scale", "fps", "cameras")  # what checkpoints kept before
    meta["dataset"] = {k: v for k, v in meta["dataset"].items() if k in old}
    (tmp_path / "edited" / "config.json").write_text(json.dumps(meta))
    assert rollout(capsys, "--checkpoint", run, "--episodes", "1", "--no-progress", "--no-log", "--json")[0] == 0


def test_the_help_lists_every_disturbance_with_its_default(capsys):
    from protege.sim.disturbances import ALIASES, KINDS

    with pytest.raises(SystemExit):
        cli.main(["rollout", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, kind in KINDS.items():
        assert f"{name} ({kind.unit}, {kind.default:g})" in text
    assert all(f"'{alias}'" in text for alias in ALIASES)
