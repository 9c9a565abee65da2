"""`protege sim check-robot`: the onboarding table and its JSON, one line for a spec that does not load, and
the commands that drive the scripted expert refusing an arm the task cannot serve before any episode."""

from __future__ import annotations

import json
from pathlib import Path

from protege.launch import cli
from protege.sim import TASKS

WIDE = str(Path(__file__).parents[1] / "robots" / "wide_gripper" / "wide_gripper.yaml")
SLOT_REASON = ("its closed gripper is 8.0 cm wide and 8.0 cm thick, wider either way than the 6.0 cm slot it must push "
               "through (at most 5.0 cm)")


def test_the_table_for_the_built_in_arm_and_its_json(capsys) -> None:
    assert cli.main(["sim", "check-robot", "protege_arm", "--seeds", "2", "--workers", "2", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (lines[0].startswith("robot protege_arm (6-DoF, ") and "2.8 cm closed" in lines[0]
            and "reach 0.85 m" in lines[0])
    assert lines[1].split() == ["task", "success", "length", "why", "not"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:2 + len(TASKS)]}
    assert list(rows) == list(TASKS)
    assert all(row[:2] == ["2/2", "100%"] for row in rows.values())
    result = json.loads(lines[-1])
    assert (result["robot"], result["seeds"], result["workers"]) == ("protege_arm", 2, 2)
    assert [t["task"] for t in result["tasks"]] == list(TASKS)
    assert all((t["successes"], t["success_rate"], t["reasons"], t["refused"]) == (2, 1.0, {}, None)
               for t in result["tasks"])


def test_the_wide_gripper_gets_the_reason_for_slot_push(capsys) -> None:
    assert cli.main(["sim", "check-robot", WIDE, "--tasks", "push,slot_push", "--seeds", "2", "--workers", "1",
                     "--json"]) == 0  # a refused task is a finding, not an error
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[:3] == ["push", "2/2", "100%"]
    assert out[3].split()[:3] == ["slot_push", "refused", "-"] and out[3].endswith(SLOT_REASON)
    slot = json.loads(out[-1])["tasks"][1]
    assert (slot["task"], slot["episodes"], slot["refused"]) == ("slot_push", 0, SLOT_REASON)


def test_a_spec_that_does_not_load_is_one_line_and_exit_2(capsys, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    assert cli.main(["sim", "check-robot", missing]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == f"protege sim: error: robot spec file not found: {missing}\n"
    for bad in (["--seeds", "0"], ["--seed", "-1"], ["--workers", "0"], ["--tasks", "juggle"]):
        assert cli.main(["sim", "check-robot", "protege_arm", *bad]) == 2
        assert len(capsys.readouterr().err.splitlines()) == 1


def test_record_and_dagger_refuse_an_arm_the_task_cannot_serve_before_any_episode(capsys, tmp_path: Path) -> None:
    out = tmp_path / "demos.zarr"
    assert cli.main(["record", "--task", "slot_push", "--robot", WIDE, "--expert", "scripted", "--episodes", "2",
                     "--cameras", "", "--out", str(out), "--no-progress"]) == 2
    assert capsys.readouterr().err == f"protege record: error: robot wide_gripper cannot do slot_push: {SLOT_REASON}\n"
    assert not out.exists()
    run = tmp_path / "dagger"
    assert cli.main(["dagger", "--task", "slot_push", "--robot", WIDE, "--expert", "scripted", "--out", str(run),
                     "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert (err.startswith("protege dagger: error: ")
            and err.endswith(f"robot wide_gripper cannot do slot_push: {SLOT_REASON}\n"))
    assert len(err.splitlines()) == 1 and not run.exists()
