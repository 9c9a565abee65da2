"""Issue 25's malformed inputs: each ends in one line naming the problem and exit status 2, nothing written."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import demos_and_run, one_line

from protege.launch import cli

RECORD = ["record", "--task", "lift", "--expert", "scripted", "--cameras", "front", "--image-size", "32",
          "--no-progress"]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2-episode lift dataset with a front camera and a tiny mlp trained on it."""
    return demos_and_run(tmp_path_factory.mktemp("one_line"), RECORD)


def files(dataset: Path) -> list[tuple[Path, int]]:
    """Every file with its mtime, but the writer lock (taken and released by a refused append)."""
    return sorted((p, p.stat().st_mtime_ns) for p in dataset.rglob("*") if p.name != ".protege.lock")


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:20])


# name -> (damage done to a copy of the dataset, command (D: the copy, O: a fresh path), expected text)
DAMAGED: dict[str, tuple[Callable[[Path], None], list[str], str]] = {
    "truncated chunk, train": (
        lambda d: truncate(d / "data/action/0.0"), ["train", "--dataset", "D", "--out", "O", "--steps", "2"],
        "chunk D/data/action/0.0 is damaged (error during blosc decompression",
    ),
    "truncated image chunk, export-video": (
        lambda d: truncate(d / "data/image_front/0.0.0.0"),
        ["dataset", "export-video", "D", "--episode", "0", "--out", "O.mp4"], "data/image_front/0.0.0.0 is damaged",
    ),
    "non-JSON .zattrs, info": (
        lambda d: (d / ".zattrs").write_text("{garbage"), ["dataset", "info", "D"], "the root metadata is damaged",
    ),
    "non-JSON .zarray, info": (
        lambda d: (d / "data/action/.zarray").write_text("{garbage"), ["dataset", "info", "D"],
        "data/action has damaged metadata (Expecting",
    ),
    "non-integer shape, info": (
        lambda d: (d / "data/action/.zarray").write_text(
            (d / "data/action/.zarray").read_text().replace('"shape": [', '"shape": ["x", ')),
        ["dataset", "info", "D"], "data/action has damaged metadata (Expected an iterable of integers",
    ),
    "damaged chunk, record appends": (
        lambda d: truncate(d / "data/action/0.0"), [*RECORD, "--episodes", "1", "--out", "D"],
        "cannot append, the chunk of data/action holding frames 0-",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_dataset_is_one_line(made, tmp_path: Path, capsys, case: str) -> None:
    damage, argv, expected = DAMAGED[case]
    copy = tmp_path / "copy.zarr"
    shutil.copytree(made[0], copy)
    damage(copy)
    before = files(copy)
    argv = [str(copy) if a == "D" else str(tmp_path / "out") if a == "O" else a for a in argv]
    one_line(capsys, argv, expected.replace("D/", f"{copy}/"))
    assert files(copy) == before
    assert not list(tmp_path.glob("out*"))


def test_validate_on_bad_episode_ends_has_no_notes_about_a_killed_writer(made, tmp_path: Path, capsys) -> None:
    import zarr

    copy = tmp_path / "copy.zarr"
    shutil.copytree(made[0], copy)
    ends = zarr.open_array(str(copy / "meta/episode_ends"), mode="r+")
    ends[:] = ends[:][::-1]
    assert cli.main(["dataset", "validate", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "episode_ends is not strictly increasing" in out and "killed writer" not in out and "note" not in out


@pytest.mark.parametrize(
    "argv,expected",
    [
        ("train --dataset {D} --out {O} --steps 0", "steps must be at least 1, got 0"),
        ("train --dataset {D} --out {O} --steps -10", "steps must be at least 1, got -10"),
        ("train --dataset {D} --out {O} --batch-size 0", "batch_size must be at least 1, got 0"),
        ("train --dataset {D} --out {O} --set log_every=0", "log_every must be at least 1"),
        ("rollout --checkpoint {R} --episodes 1 --success-hold -1 --no-progress", "--success-hold must be >= 0"),
        ("replay {D} --episode -3", "episode -3 out of range: {D} has 2 episodes (0..1, or -2..-1"),
        ("replay {D} --episode 2", "episode 2 out of range"),
        ("record --task lift --expert scripted --out {F}/x.zarr", "{F}: File exists"),
        ("record --task lift --expert scripted --out {F}", "{F} is a file, not a dataset"),
        ("train --dataset {D} --out {F}/run", "{F}/run: Not a directory"),
        ("rollout --checkpoint {R} --episodes 1 --video-dir {F} --no-progress", "{F}: File exists"),
        ("rollout --checkpoint {R} --episodes 1 --video-dir {F}/v --no-progress", "{F}/v: Not a directory"),
        ("rollout --checkpoint {R} --episodes 1 --record {F}/r.zarr --no-progress", "{F}: File exists"),
    ],
)
def test_bad_arguments_and_impossible_paths_are_one_line(made, tmp_path: Path, capsys, argv, expected) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    names = {"D": made[0], "R": made[1], "O": tmp_path / "out", "F": afile}
    one_line(capsys, argv.format(**names).split(), expected.format(**names))
    assert not (tmp_path / "out").exists() and afile.read_text() == "x"


def test_negative_episode_counts_from_the_end(made, capsys) -> None:
    assert cli.main(["replay", str(made[0]), "--episode", "-1"]) == 0
    assert capsys.readouterr().out.startswith("replayed episode 1 ")


def test_broken_line_in_evals_is_named(made, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(made[1], run)
    (run / "evals.jsonl").write_text(json.dumps({"success_rate": 0.5}) + "\n{not json\n")
    one_line(capsys, ["report", str(run)], f"{run / 'evals.jsonl'} line 2 is not an evaluation")
