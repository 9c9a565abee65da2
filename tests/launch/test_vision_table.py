"""`protege bench vision`: image policies on plain and randomised demos, clean and under visual disturbances."""

from __future__ import annotations

import dataclasses
import json

import pytest

from protege.datasets import Dataset
from protege.launch import cli
from protege.launch.experiments.vision_table import TASK_DEMOS, VARIANTS, VisionSettings
from protege.policies.checkpoint import read_meta
from protege.policies.cnn.config import CNNConfig
from protege.policies.config import TrainConfig
from protege.policies.trainer import train


def test_the_table_trains_on_plain_and_randomised_demos_without_the_simulators_state_and_resumes(tmp_path, capsys):
    out = tmp_path / "table"
    argv = ["bench", "vision", "--out", str(out), "--tasks", "push", "--demos", "2", "--episodes", "1",
            "--steps", "3", "--json"]
    assert cli.main(argv) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert [(r["policy"], r["kind"]) for r in results] == [("cnn", "plain"), ("cnn", "randomized")]
    for result in results:
        assert result["inputs"] == ["image_front", "image_wrist", "joint_pos", "ee_pos", "ee_quat", "gripper"]
        assert result["clean"]["episodes"] == result["disturbed"]["episodes"] == 1 and result["ms_per_action"] > 0
    plain, randomized = (Dataset(str(out / "demos" / f"push-{kind}.zarr")) for kind in ("plain", "randomized"))
    assert "randomize" not in plain.attrs and randomized.attrs["randomize"].startswith("lighting=1")
    assert "| push | 2, noise 0.5, DART | cnn |" in (out / "table.md").read_text()
    cell = out / "results" / "push-cnn-plain.json"
    written = cell.stat().st_mtime_ns
    assert cli.main([*argv[:-1], "--tasks", "push,lift", "--json"]) == 0  # another task: the cells done are kept
    assert cell.stat().st_mtime_ns == written and (out / "results" / "lift-cnn-randomized.json").exists()
    table = (out / "table.md").read_text()
    assert "| push | 2, noise 0.5, DART | cnn |" in table and "| lift | 2, noise 0.2 | cnn |" in table


def test_each_task_has_its_own_demos_unless_their_number_or_noise_is_given():
    assert VisionSettings().demos_for("push") == (200, 0.5, True)
    assert VisionSettings().demos_for("stack") == (100, 0.2, False)
    assert VisionSettings(demos=7).demos_for("stack") == (7, 0.2, False)
    assert all(VisionSettings(noise=0.3).demos_for(t) == (TASK_DEMOS[t].episodes, 0.3, True) for t in TASK_DEMOS)
    assert VisionSettings().steps_for("cnn", "push") == 2 * VisionSettings().steps_for("cnn", "stack")  # 200 demos
    assert VisionSettings(steps=5).steps_for("cnn", "push") == 5


@pytest.mark.slow
def test_the_tables_slot_push_cell_learns_from_pixels_alone(tmp_path, capsys):
    """The vision table's slot_push cell on plain demos (its demos, cnn settings and steps), judged on 50 of its
    100 evaluation seeds: 89 of 100 in session 21; about 8 minutes on one core."""
    episodes, noise, dart = TASK_DEMOS["slot_push"]
    fields, steps = VARIANTS["cnn"][0], VisionSettings().steps_for("cnn", "slot_push")
    demos, run = str(tmp_path / "slot_push.zarr"), str(tmp_path / "run")
    assert cli.main(["record", "--task", "slot_push", "--expert", "scripted", "--episodes", str(episodes),
                     "--image-size", str(VisionSettings().image_size), "--noise", str(noise),
                     *(["--dart"] if dart else []), "--out", demos, "--no-progress"]) == 0
    train(TrainConfig(dataset=demos, out=run, policy="cnn", steps=steps, device="cpu", progress=False),
          dataclasses.replace(CNNConfig(), **fields))
    assert {f.kind for f in read_meta(run).inputs} == {"image", "lowdim"}
    capsys.readouterr()
    assert cli.main(["rollout", "--checkpoint", run, "--episodes", "50", "--no-progress", "--json"]) == 0
    successes = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["successes"]
    assert successes >= 38, f"the cnn pushed the block through the slot in {successes}/50 episodes"
