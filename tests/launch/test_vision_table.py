"""`protege bench vision`: image policies on plain and randomised demos, clean and under visual disturbances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protege.datasets import Dataset
from protege.launch import cli
from protege.launch.experiments.learn_table import read_table_settings
from protege.launch.experiments.vision_table import (
    RANDOMIZED_EPISODES,
    RANDOMIZED_LOOKS,
    TASK_DEMOS,
    VARIANTS,
    Cell,
    VisionSettings,
    _cell,
    _demos,
    _done,
    format_table,
)


def test_the_table_trains_on_plain_and_randomised_demos_without_the_simulators_state_and_resumes(tmp_path, capsys):
    out = tmp_path / "table"
    argv = ["bench", "vision", "--out", str(out), "--tasks", "push", "--demos", "2", "--episodes", "1",
            "--steps", "3", "--looks", "2", "--json"]
    assert cli.main(argv) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["results"]
    assert [(r["policy"], r["kind"]) for r in results] == [("cnn", "plain"), ("cnn", "randomized")]
    for result in results:
        assert result["inputs"] == ["image_front", "image_wrist", "joint_pos", "ee_pos", "ee_quat", "gripper"]
        assert result["clean"]["episodes"] == result["disturbed"]["episodes"] == 1 and result["ms_per_action"] > 0
    plain, randomized = (Dataset(str(out / "demos" / f"push-{kind}.zarr")) for kind in ("plain", "randomized-x2"))
    assert "randomize" not in plain.attrs and randomized.attrs["randomize"].startswith("lighting=1")
    assert randomized.meta("seed").tolist() == [0, 0, 1, 1]  # each randomised demo under two looks
    assert "| push | 2 / 2 x2 looks, noise 0.5, DART | cnn |" in (out / "table.md").read_text()
    cell = out / "results" / "push-cnn-plain.json"
    written = cell.stat().st_mtime_ns
    assert cli.main([*argv[:-1], "--tasks", "push,lift", "--json"]) == 0  # another task: the cells done are kept
    assert cell.stat().st_mtime_ns == written and (out / "results" / "lift-cnn-randomized.json").exists()
    table = (out / "table.md").read_text()
    assert "| push | 2 / 2 x2 looks, noise 0.5, DART | cnn |" in table
    assert "| lift | 2 / 2 x2 looks, noise 0.2 | cnn |" in table


def test_act_and_diffusion_cells_see_the_cameras_at_their_table_settings(tmp_path):
    from protege.policies.checkpoint import read_meta

    settings, out = VisionSettings(tasks=("lift",), policies=("act", "diffusion"), demos=2, episodes=1, steps=2), \
        tmp_path / "table"
    demos = _demos(settings, out, "lift", "plain", 1)
    for policy in settings.policies:
        result = _cell(settings, out, Cell("lift", policy, "plain"), demos, 1, "cpu", lambda line: None)
        assert result["inputs"] == ["image_front", "image_wrist", "joint_pos", "ee_pos", "ee_quat", "gripper"]
        config = read_meta(out / "runs" / f"lift-{policy}-plain").policy_config
        assert config.widths == VARIANTS["cnn"].fields["widths"]
    assert config.n_obs_steps == 1
    assert read_meta(out / "runs" / "lift-act-plain").policy_config.image_grid == 2


def test_each_task_has_its_own_demos_unless_their_number_or_noise_is_given():
    assert VisionSettings().demos_for("push", "plain") == (200, 0.5, True)
    assert VisionSettings().demos_for("stack", "plain") == (100, 0.2, False)
    assert VisionSettings().demos_for("stack", "randomized") == (RANDOMIZED_EPISODES, 0.2, False)
    assert VisionSettings(demos=7).demos_for("stack", "randomized") == (7, 0.2, False)
    assert all(VisionSettings(noise=0.3).demos_for(t, "plain") == (TASK_DEMOS[t].episodes, 0.3, True)
               for t in TASK_DEMOS)
    assert VisionSettings().steps_for("cnn", "push", "plain") == 2 * VisionSettings().steps_for("cnn", "stack", "plain")
    assert VisionSettings().steps_for("cnn", "stack", "randomized") == 3 * VisionSettings().steps_for("cnn", "stack",
                                                                                                      "plain")
    assert VisionSettings(steps=5).steps_for("cnn", "push", "randomized") == 5
    assert VisionSettings().steps_for("act", "stack", "plain") == VisionSettings().steps_for("act", "push",
                                                                                            "randomized")
    assert f"| stack | 100 / 300 x{RANDOMIZED_LOOKS} looks, noise 0.2 | cnn |" in format_table(
        [{"task": "stack", "policy": "cnn", "kind": "plain", "train_minutes": 1.0, "ms_per_action": 2.0,
          "clean": {"success_rate": 1.0, "ci95": [0.9, 1.0]}, "disturbed": {"success_rate": 0.5, "ci95": [0.4, 0.6]}}],
        VisionSettings(tasks=("stack",)))


def test_the_kept_table_is_what_its_results_say_and_the_readme_shows_every_row():
    """``docs/tables/vision`` keeps the act and diffusion cells, run a few at a time outside the tests: its table.md
    must be what its results give, and the README's copy of the table must hold every row."""
    root = Path(__file__).resolve().parents[2]
    kept = root / "docs" / "tables" / "vision"
    table = read_table_settings(kept, VisionSettings, "vision table")
    written = format_table(_done(kept, table), table)
    assert (kept / "table.md").read_text() == written
    rows = [line for line in written.splitlines() if line.startswith("| ") and not line.startswith("| task |")]
    assert len(rows) >= len(table.tasks)
    readme = (root / "README.md").read_text()
    assert [row for row in rows if row not in readme] == []


def test_a_table_from_before_looks_is_not_resumed_with_them_and_bad_looks_are_refused(tmp_path, capsys):
    from tests.helpers import one_line

    out = tmp_path / "table"
    out.mkdir()
    written = VisionSettings(tasks=("stack",)).to_json()
    del written["looks"]  # as session 22 wrote it: one look each
    (out / "settings.json").write_text(json.dumps(written))
    one_line(capsys, ["bench", "vision", "--out", str(out), "--tasks", "stack"], "looks=1", f"not {RANDOMIZED_LOOKS}")
    one_line(capsys, ["bench", "vision", "--out", str(tmp_path / "new"), "--looks", "0"], "--looks must be at least 1")
    assert not (tmp_path / "new").exists()
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["bench"].format_help().split())
    assert f"`dataset relook`; default: {RANDOMIZED_LOOKS})" in help_text


@pytest.mark.slow
def test_the_tables_slot_push_cell_learns_from_pixels_alone(tmp_path):
    """The vision table's own slot_push cell on plain demos, judged on 50 of its 100 evaluation seeds (92 of 100
    in session 22, with colour jitter); about 9 minutes on one core."""
    settings, out = VisionSettings(tasks=("slot_push",), episodes=50), tmp_path / "table"
    demos = _demos(settings, out, "slot_push", "plain", 1)
    result = _cell(settings, out, Cell("slot_push", "cnn", "plain"), demos, 1, "cpu", lambda line: None)
    assert result["inputs"] == ["image_front", "image_wrist", "joint_pos", "ee_pos", "ee_quat", "gripper"]
    successes = result["clean"]["successes"]
    assert successes >= 38, f"the cnn pushed the block through the slot in {successes}/50 episodes"
