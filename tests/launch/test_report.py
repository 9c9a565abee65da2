"""`protege report` on a tiny real training run, the same run with evaluations and videos, and a DAgger run."""

from __future__ import annotations

import json
import re
import shutil
import urllib.parse
from html import unescape
from pathlib import Path

import numpy as np
import pytest

from protege.launch import cli
from protege.launch.plots import curves
from protege.launch.report import write_report
from protege.launch.runfiles import DaggerLog, EvalRecord, append_eval, read_evals, read_run, write_dagger
from protege.teleop.runtime.rollout import RolloutSummary


@pytest.fixture(scope="module")
def train_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20-step mlp run on a tiny synthetic dataset: config.json, weights, TensorBoard events."""
    import torch

    from protege.policies.config import TrainConfig
    from protege.policies.mlp.config import MLPConfig
    from protege.policies.synthetic import make_dataset
    from protege.policies.trainer import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("report")
    data = make_dataset(root / "tiny.zarr", episodes=6, steps=20)
    config = TrainConfig(dataset=data, out=str(root / "run"), policy="mlp", steps=20, batch_size=16, warmup_steps=5,
                         val_ratio=0.2, val_every=10, log_every=5, save_every=1000, device="cpu", progress=False)
    train(config, MLPConfig(hidden=[32]))
    return root / "run"


def copy_run(run: Path, tmp_path: Path, name: str = "run") -> Path:
    return Path(shutil.copytree(run, tmp_path / name))


def write_video(path: Path, frames: int = 12) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 20.0, (48, 48))
    for i in range(frames):
        writer.write(np.full((48, 48, 3), 20 * i % 255, dtype=np.uint8))
    writer.release()


def add_eval(run: Path, videos: list[str], success: list[bool], step: int = 20) -> None:
    """One evaluation line as `protege rollout` appended it to RUN/evals.jsonl before --disturb was logged."""
    lengths = [30 + 7 * i for i in range(len(success))]
    record = {"time": "2026-01-01T00:00:00+00:00", "checkpoint": str(run), "step": step, "episodes": len(success),
              "successes": sum(success), "success_rate": sum(success) / len(success), "ci95": [0.2, 0.9],
              "mean_length": float(np.mean(lengths)), "mean_return": 1.5, "seed": 1000, "envs": 2,
              "episodes_per_min": 60.0, "seconds": 4.0, "lengths": lengths, "success": success,
              "returns": [1.5] * len(success), "videos": videos}
    with open(run / "evals.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def summary(success: list[bool], disturb: str = "") -> RolloutSummary:
    """A rollout summary of episodes with these outcomes."""
    return RolloutSummary(episodes=len(success), successes=sum(success), success_rate=sum(success) / len(success),
                          ci95=(0.1, 0.9), mean_length=30.0, mean_return=1.0, disturb=disturb,
                          strikes=len(success) if disturb else 0, seed=100_000, envs=1, seconds=1.0,
                          episodes_per_min=60.0, lengths=(30,) * len(success), success=tuple(success),
                          returns=(1.0,) * len(success), videos=())


def referenced(html_path: Path) -> list[Path]:
    """Every local file the page points to (img, video, source, poster, links), resolved from the page."""
    refs = re.findall(r"(?:src|href|poster)='([^']+)'", html_path.read_text())
    return [html_path.parent / urllib.parse.unquote(unescape(ref)) for ref in refs]


def test_train_run_without_evals_gets_loss_plots_and_config(train_run: Path, tmp_path: Path) -> None:
    run = copy_run(train_run, tmp_path)
    report = write_report(run)
    assert report.html == run / "report.html"
    assert {p.name for p in report.plots} == {"loss.png", "training.png"}
    refs = referenced(report.html)
    assert refs and all(ref.is_file() and ref.stat().st_size > 1000 for ref in refs)
    page = report.html.read_text()
    assert "final validation loss" in page and "batch_size" in page and "<video" not in page


def test_evals_add_success_lengths_and_playable_videos(train_run: Path, tmp_path: Path) -> None:
    run = copy_run(train_run, tmp_path)
    write_video(run / "videos" / "episode_1000.mp4")
    write_video(run / "videos" / "episode_1001.mp4")
    add_eval(run, [str(run / "videos" / "episode_1000.mp4"), "videos/episode_1001.mp4"], [True, False, True])
    add_eval(run, [], [True, True, True], step=40)
    report = write_report(run)
    assert {p.name for p in report.plots} == {"loss.png", "training.png", "success.png", "lengths.png"}
    page = report.html.read_text()
    assert "success rate (latest eval)" in page and "100.0%" in page
    assert page.count("<video") == 0  # the latest evaluation has no videos

    run2 = copy_run(train_run, tmp_path, "run2")
    shutil.copytree(run / "videos", run2 / "videos")
    add_eval(run2, ["videos/episode_1000.mp4", "videos/episode_1001.mp4", "videos/gone.mp4"], [True, False, True])
    report = write_report(run2)
    page = report.html.read_text()
    assert page.count("<video") == 2 and "episode 1: failure, 37 steps" in page
    assert "note: video videos/gone.mp4 not found" in page
    assert all(ref.is_file() for ref in referenced(report.html))
    assert [p.suffix for p in report.thumbnails] == [".gif", ".gif"]
    from PIL import Image

    with Image.open(report.thumbnails[0]) as gif:
        assert gif.n_frames > 1


def test_out_elsewhere_keeps_the_page_and_its_files_together(train_run: Path, tmp_path: Path) -> None:
    run = copy_run(train_run, tmp_path)
    write_video(run / "videos" / "episode_1000.mp4")
    add_eval(run, ["videos/episode_1000.mp4"], [True])
    out = tmp_path / "Bob's pages" / "mlp #1.html"
    assert cli.main(["report", str(run), "--out", str(out)]) == 0
    assert (tmp_path / "Bob's pages" / "mlp #1_files" / "loss.png").is_file()
    refs = referenced(out)
    assert len(refs) >= 7 and all(ref.is_file() for ref in refs)


def test_dagger_run_plots_success_per_round(train_run: Path, tmp_path: Path) -> None:
    run = tmp_path / "dagger"
    run.mkdir()
    rounds = []
    for r in range(3):
        copy_run(train_run, run, f"round_{r}")
        rounds.append({"round": r, "labelled_frames": 100 * (r + 1), "episodes": 5 + 5 * r, "beta": 0.5 ** r,
                       "success_rate": 0.2 * (r + 1), "ci95": [0.1 * r, 0.3 * (r + 1)], "mean_length": 40.0,
                       "run": f"round_{r}"})
    bc = [dict(rounds[0]), {**rounds[1], "success_rate": 0.3, "run": "bc_1"}]
    log = {"task": "lift", "policy": "mlp", "expert": "scripted", "config": {"rounds": 3, "beta": 0.5},
           "rounds": rounds, "bc": bc}  # as protege dagger wrote it before it logged the arm
    (run / "dagger.json").write_text(json.dumps(log))
    report = write_report(run)
    assert {"dagger.png", "round_loss.png"} <= {p.name for p in report.plots}
    page = report.html.read_text()
    assert "DAgger rounds" in page and page.count("<td>DAgger</td>") == 3 and page.count("<td>BC</td>") == 2
    assert "DAgger configuration" in page and "success after last round" in page
    assert "<th>DAgger conditions</th><td>clean</td>" in page
    assert all(ref.is_file() for ref in referenced(report.html))


@pytest.mark.parametrize("make", ["empty_dir", "missing", "file"])
def test_not_a_run_is_one_line_and_exit_2(tmp_path: Path, make: str, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "thing"
    if make == "empty_dir":
        target.mkdir()
    elif make == "file":
        target.write_text("x")
    assert cli.main(["report", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"protege report: error: {target}") and err.count("\n") == 1


ROUND = {"round": 0, "labelled_frames": 100, "episodes": 5, "run": "round_0", "success_rate": 0.4}


@pytest.mark.parametrize(("log", "message"), [
    ({"task": "lift", "policy": "mlp", "expert": "scripted", "rounds": [{**ROUND, "success_rate": None}]},
     ": rounds[0].success_rate: expected a number, got null"),
    ({"task": "lift", "policy": "mlp", "expert": "scripted", "rounds": [ROUND], "bc": [{"round": 0}]},
     " lacks bc[0].labelled_frames"),
    ({"task": "lift", "policy": "mlp", "expert": "scripted", "rounds": {}}, ": rounds: expected a list, got {}"),
    (["not", "a", "log"], ': expected a JSON object, got ["not", "a", "log"]'),
])
def test_malformed_dagger_log_is_one_line_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          log: object, message: str) -> None:
    (tmp_path / "dagger.json").write_text(json.dumps(log))
    assert cli.main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"protege report: error: {tmp_path / 'dagger.json'}{message}\n"


@pytest.mark.parametrize(("line", "message"), [
    ('{"success_rate": "high"}', ': success_rate: expected a number, got "high"'),
    ('{"success_rate": 0.5, "step": 2.5}', ": step: expected an integer, got 2.5"),
    ('{"success_rate": 0.5, "ci95": [0.1]}', ": ci95: expected a list of 2, got [0.1]"),
    ('{"success_rate": 0.5, "success": [true, 1]}', ": success[1]: expected true or false, got 1"),
    ('{"episodes": 3}', " lacks success_rate"),
    ("[0.5]", " is not an evaluation (a JSON object): fix or delete that line"),
])
def test_malformed_evaluation_is_one_line_naming_file_line_and_field(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str) -> None:
    append_eval(tmp_path, EvalRecord.from_summary(summary([True]), str(tmp_path), 10))
    with open(tmp_path / "evals.jsonl", "a") as f:
        f.write(line + "\n")
    (tmp_path / "dagger.json").write_text(json.dumps({"task": "lift", "policy": "mlp", "expert": "scripted",
                                                      "rounds": [ROUND]}))
    assert cli.main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"protege report: error: {tmp_path / 'evals.jsonl'} line 2{message}\n"


def test_evaluations_of_older_versions_load_with_defaults(tmp_path: Path) -> None:
    add_eval(tmp_path, ["videos/episode_1000.mp4"], [True, False])  # every key rollout wrote, no disturb
    (tmp_path / "evals.jsonl").open("a").write('{"success_rate": 0.25, "note": "a key no version wrote"}\n')
    full, bare = read_evals(tmp_path / "evals.jsonl")
    assert full.success == (True, False) and full.ci95 == (0.2, 0.9) and full.step == 20 and full.disturb == ""
    assert full.condition == "clean" and full.videos == ("videos/episode_1000.mp4",)
    assert bare == EvalRecord(success_rate=0.25)


def test_run_files_read_back_what_their_writers_wrote(tmp_path: Path) -> None:
    records = [EvalRecord.from_summary(summary([True, False]), str(tmp_path), 10),
               EvalRecord.from_summary(summary([True] * 4, "object_push=0.04"), str(tmp_path), 20)]
    for record in records:
        append_eval(tmp_path, record)
    assert (read_evals(tmp_path / "evals.jsonl") == records and records[0].time
            and records[1].disturb == "object_push=0.04")
    (tmp_path / "evals.jsonl").write_text("")
    log = DaggerLog.from_json({"task": "lift", "policy": "mlp", "expert": "scripted", "robot": "protege_arm",
                               "rounds": [{**ROUND, "beta": None, "ci95": [0.2, 0.6]}], "bc": [ROUND]}, "test")
    write_dagger(tmp_path, log)
    assert read_run(tmp_path).dagger == log and not list(tmp_path.glob(".*tmp*"))
    assert json.loads((tmp_path / "dagger.json").read_text()) == log.to_json()


def test_report_keeps_disturbed_and_clean_evaluations_apart(train_run: Path, tmp_path: Path) -> None:
    run = copy_run(train_run, tmp_path)
    for step, disturb in ((20, ""), (20, "object_push=0.04"), (40, ""), (40, "object_push=0.04")):
        append_eval(run, EvalRecord.from_summary(summary([True, step == 40, bool(disturb)], disturb), str(run), step))
    points = curves(read_evals(run / "evals.jsonl"))
    assert {condition: [(step, r.success_rate) for step, r in curve] for condition, curve in points.items()} == {
        "clean": [(20, 1 / 3), (40, 2 / 3)], "object_push=0.04": [(20, 2 / 3), (40, 1.0)]}
    page = write_report(run).html.read_text()
    assert "<th>evaluation conditions</th><td>object_push=0.04</td>" in page  # the latest evaluation's
    assert "<th>conditions</th>" in page and page.count("<td>object_push=0.04</td>") == 1 + 2
    assert page.count("<td>clean</td>") == 2
