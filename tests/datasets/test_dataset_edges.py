"""Issue 35's dataset edges: `dataset info` on a dataset missing a chunk, and `dataset import --from lerobot` of a
damaged folder, each end in one line naming the problem and exit status 2, nothing written."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from protege.launch.cli import main


def one_line(capsys: pytest.CaptureFixture[str], argv: list[str], *expected: str) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err, captured.err
    assert all(text in captured.err for text in expected), captured.err
    return captured.out


@pytest.mark.parametrize("zarr_format,chunk,episodes", [(2, "1.0", "episodes 0-1"), (3, "c/0/0", "episodes 0-2")])
@pytest.mark.parametrize("listing", [[], ["--episodes"]])
def test_info_refuses_a_dataset_missing_a_chunk(small_dataset, capsys, zarr_format, chunk, episodes, listing):
    path = small_dataset((5, 3, 7), zarr_format=zarr_format, chunk_frames=4)
    (path / "data/joint_pos" / chunk).unlink()
    out = one_line(capsys, ["dataset", "info", str(path), *listing],
                   f"{path}: chunk data/joint_pos/{chunk} is missing ({episodes}); `protege dataset validate`")
    assert out == ""
    assert main(["dataset", "validate", str(path), "--quick"]) == 1  # validate names it from the same check
    assert f"chunk data/joint_pos/{chunk} is missing ({episodes})" in capsys.readouterr().out


def test_info_of_an_intact_dataset_is_unchanged(small_dataset, capsys):
    assert main(["dataset", "info", str(small_dataset())]) == 0
    assert "episodes  3   frames 15" in capsys.readouterr().out


# -- LeRobot import -------------------------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 2000] = bytes(2000)
    path.write_bytes(bytes(data))


DATA, EPISODES = "data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet"
VIDEO = "videos/observation.images.front/chunk-000/file-000.mp4"
# name -> (damage done to a copy of the exported folder, expected text with F for the folder)
DAMAGED: dict[str, tuple[Callable[[Path], None], str]] = {
    "truncated data parquet": (lambda f: _truncate(f / DATA), f"F/{DATA} is damaged (Could not open Parquet"),
    "data parquet missing": (lambda f: (f / DATA).unlink(), f"F/{DATA} is missing"),
    "not JSON protege.json": (lambda f: (f / "meta/protege.json").write_text("{garbage"),
                              "F/meta/protege.json is unreadable: Expecting property name"),
    "protege.json not an object": (lambda f: (f / "meta/protege.json").write_text("[1]"),
                                   "F/meta/protege.json is damaged: it needs the objects attrs, keys, images"),
    "truncated episodes parquet": (lambda f: _truncate(f / EPISODES), f"F/{EPISODES} is damaged"),
    "not parquet tasks": (lambda f: (f / "meta/tasks.parquet").write_text("x"), "F/meta/tasks.parquet is damaged"),
    "damaged video": (lambda f: _zero_middle(f / VIDEO), f"F/{VIDEO} is damaged"),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    pytest.importorskip("pyarrow", reason="the interop extra (pyarrow) is not installed")
    pytest.importorskip("av", reason="the interop extra (PyAV) is not installed")
    root = tmp_path_factory.mktemp("lerobot")
    assert main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "2", "--cameras", "front",
                 "--image-size", "32", "--no-progress", "--out", str(root / "d.zarr")]) == 0
    assert main(["dataset", "export", str(root / "d.zarr"), "--to", "lerobot", str(root / "lr"), "--json"]) == 0
    return root / "lr"


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_damaged_lerobot_import_is_one_line_and_writes_nothing(exported, tmp_path, capsys, case):
    damage, expected = DAMAGED[case]
    folder = tmp_path / "lr"
    shutil.copytree(exported, folder)
    damage(folder)
    capsys.readouterr()
    one_line(capsys, ["dataset", "import", str(folder), "--from", "lerobot", "--out", str(tmp_path / "x.zarr"),
                      "--json"], expected.replace("F/", f"{folder}/"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lr"]
