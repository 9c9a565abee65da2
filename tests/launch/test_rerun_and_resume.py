"""Running a launch file twice refuses before changing anything (or, with --overwrite, starts fresh);
`train --resume` works from any directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protege.datasets import Dataset
from protege.launch import cli

LAUNCH = """description: two scripted demos and a tiny run
vars:
  out: {out}
steps:
  - record: {{task: lift, expert: scripted, episodes: 2, cameras: "", out: "${{out}}/demos.zarr", no_progress: true}}
  - train: {{dataset: "${{out}}/demos.zarr", out: "${{out}}/run", steps: 2, no_progress: true}}
"""


def test_a_second_launch_refuses_before_changing_anything_and_overwrite_starts_fresh(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    file = tmp_path / "tiny.yaml"
    file.write_text(LAUNCH.format(out=out))
    assert cli.main(["launch", str(file)]) == 0
    capsys.readouterr()
    before = sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*"))
    assert cli.main(["launch", str(file)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nothing was run" in err and "--overwrite" in err, err
    assert f"{out}/demos.zarr (step 1, record), {out}/run (step 2, train) already exist" in err
    assert sorted((p, p.stat().st_mtime_ns) for p in out.rglob("*")) == before
    assert cli.main(["launch", str(file), "--overwrite"]) == 0
    assert Dataset(out / "demos.zarr").num_episodes == 2  # fresh, not appended to


def test_resume_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert cli.main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "2", "--cameras", "",
                     "--out", "demos.zarr", "--no-progress"]) == 0
    assert cli.main(["train", "--dataset", "demos.zarr", "--out", "runs/mlp", "--steps", "2", "--no-progress"]) == 0
    config = work / "runs/mlp/config.json"
    meta = json.loads(config.read_text())
    assert meta["train_config"]["dataset"] == str(work / "demos.zarr")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert cli.main(["train", "--resume", str(work / "runs/mlp"), "--steps", "4", "--no-progress"]) == 0
    # a run from before absolute paths: the relative path is found from a directory above the run
    meta = json.loads(config.read_text())
    meta["train_config"]["dataset"] = "demos.zarr"
    config.write_text(json.dumps(meta))
    assert cli.main(["train", "--resume", str(work / "runs/mlp"), "--steps", "6", "--no-progress"]) == 0
    meta["train_config"]["dataset"] = "gone.zarr"
    config.write_text(json.dumps(meta))
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(work / "runs/mlp"), "--steps", "8", "--no-progress"]) == 2
    assert "the run's dataset 'gone.zarr' (relative to where it was trained) is not found" in capsys.readouterr().err
