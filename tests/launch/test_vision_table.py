"""`protege bench vision`: image policies on plain and randomised demos, clean and under visual disturbances."""

from __future__ import annotations

import json

from protege.datasets import Dataset
from protege.launch import cli


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
    assert "| push | cnn |" in (out / "table.md").read_text()
    cell = out / "results" / "push-cnn-plain.json"
    written = cell.stat().st_mtime_ns
    assert cli.main([*argv[:-1], "--tasks", "push,lift", "--json"]) == 0  # another task: the cells done are kept
    assert cell.stat().st_mtime_ns == written and (out / "results" / "lift-cnn-randomized.json").exists()
    table = (out / "table.md").read_text()
    assert "| push | cnn |" in table and "| lift | cnn |" in table
