"""The quickstart launch file: resolved commands (fast) and a shortened real run end to end (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from protege.launch import cli


def shortened(out: Path) -> list[str]:
    """Quickstart overrides for a test: few demos, few steps, few evaluation episodes, one video."""
    return [f"out={out}", "demos=6", "steps=200", "episodes=2", "rollout.videos=1", "record.workers=1",
            "record.no_progress=true", "train.no_progress=true", "rollout.no_progress=true"]


def test_quickstart_dry_run_resolves_every_step(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "qs"
    assert cli.main(["launch", "quickstart", "--dry-run", *shortened(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["record", "train", "rollout", "report"]
    assert f"--episodes 6 --workers 1 --cameras '' --out {out}/demos.zarr" in lines[0]
    assert f"--dataset {out}/demos.zarr --policy mlp --out {out}/mlp --steps 200" in lines[1]
    assert f"--checkpoint {out}/mlp --episodes 2 --envs 2 --video-dir {out}/mlp/videos --videos 1" in lines[2]
    assert lines[3] == f"protege report {out}/mlp"
    assert not out.exists()


@pytest.mark.slow
def test_shortened_quickstart_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "qs"
    assert cli.main(["launch", "quickstart", *shortened(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [s["command"] for s in summary["steps"]] == ["record", "train", "rollout", "report"]
    run = out / "mlp"
    (evaluation,) = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert evaluation["episodes"] == 2 and evaluation["step"] == 200
    page = (run / "report.html").read_text()
    assert "success.png" in page and "loss.png" in page and page.count("<video") == 1
    assert (run / "report_files" / "video_0.webm").is_file()
