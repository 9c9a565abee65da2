"""Broken datasets and bad requests: a one-line error, a non-zero exit, and nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from protege.datasets import Dataset, DatasetError, EpisodeWriter, Source
from protege.datasets.validate import validate_dataset
from protege.launch.cli import main


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["dataset", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def drop_episode_ends(path: Path) -> None:
    shutil.rmtree(path / "meta" / "episode_ends")


def shorten_action(path: Path) -> None:
    zarr.open_group(str(path), mode="r+")["data/action"].resize((4, 7))


def float32_timestamps(path: Path) -> None:
    data = zarr.open_group(str(path), mode="r+")["data"]
    values = data["timestamp"][:]
    del data["timestamp"]
    data.create_array("timestamp", data=values.astype(np.float32), chunks=(1024,))


def int32_episode_ends(path: Path) -> None:
    meta = zarr.open_group(str(path), mode="r+")["meta"]
    values = meta["episode_ends"][:]
    del meta["episode_ends"]
    meta.create_array("episode_ends", data=values.astype(np.int32))


def rewrite_attrs(path: Path, **changes: object) -> None:
    attrs_file = path / ".zattrs"
    attrs = json.loads(attrs_file.read_text())
    attrs.update(changes)
    attrs_file.write_text(json.dumps({k: v for k, v in attrs.items() if v is not None}))


BROKEN = {
    "missing episode_ends": (drop_episode_ends, "meta/episode_ends is missing"),
    "short array": (shorten_action, "data/action has 4 frames but meta/episode_ends ends at 8"),
    "wrong data dtype": (float32_timestamps, "data/timestamp has dtype float32, expected float64"),
    "wrong ends dtype": (int32_episode_ends, "meta/episode_ends must be 1-D int64"),
    "unknown schema": (lambda p: rewrite_attrs(p, schema_version=99), "unknown schema version 99"),
    "no schema": (lambda p: rewrite_attrs(p, schema_version=None), "no schema_version"),
    "data group not utf-8": (lambda p: (p / "data/.zgroup").write_bytes(b'{\xff'), "data/ group has damaged metadata"),
    "meta attrs not json": (lambda p: (p / "meta/.zattrs").write_text("{"), "meta/ group has damaged metadata"),
    "data checksums lost": (lambda p: shutil.rmtree(p / "meta/checksums"), "meta/checksums is missing"),
    "meta array read as a group": (  # zarr takes a folder whose .zarray lacks "shape" for an implicit group
        lambda p: (p / "meta/episode_source/.zarray").write_text(
            (p / "meta/episode_source/.zarray").read_text().replace('"shape"', '"sh*pe"')),
        "meta/episode_source is not an array",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_dataset_gives_one_line_errors_and_nonzero_exits(small_dataset, snapshot, capsys, tmp_path, attrs, case):
    break_it, message = BROKEN[case]
    path = small_dataset((5, 3))
    break_it(path)
    before = snapshot(path)
    with pytest.raises(DatasetError, match=message):
        Dataset(path)
    code, out, err = cli(capsys, "info", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("protege dataset: error: ") and message in err
    code, out, _ = cli(capsys, "validate", str(path))
    assert code == 1 and "INVALID" in out and f"error: {message}" in out
    code, out, err = cli(capsys, "filter", str(path), "-o", str(tmp_path / "out.zarr"))
    assert code == 2 and message in err and not (tmp_path / "out.zarr").exists()
    with pytest.raises(DatasetError, match=message):
        EpisodeWriter(path, attrs)
    assert snapshot(path) == before


def test_validate_decodes_every_chunk_and_checks_values(small_dataset, capsys):
    path = small_dataset((5, 3), chunk_frames=2)
    (path / "data" / "joint_pos" / "1.0").write_bytes(b"garbage")
    code, out, _ = cli(capsys, "validate", str(path))
    assert code == 1 and "data/joint_pos is unreadable near frame" in out
    code, out, _ = cli(capsys, "validate", "--quick", str(path))
    assert code == 0 and "valid" in out


def test_validate_finds_backwards_timestamps_and_bad_codes(tmp_path, attrs, frame, capsys):
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path, attrs) as writer:
        for i in range(2):
            for t in range(4):
                writer.add_frame({**frame(i, t), "timestamp": [0.0, 0.1, 0.05, 0.2][t] if i == 1 else 0.05 * t})
            writer.save_episode(seed=i, success=True, source=Source.HUMAN)
    zarr.open_group(str(path), mode="r+")["meta/episode_source"][1] = 7
    code, out, _ = cli(capsys, "validate", "--json", str(path))
    report = json.loads(out.strip().splitlines()[-1])
    assert code == 1 and not report["valid"]
    assert "data/timestamp goes backwards in episode 1" in report["errors"]
    assert "meta/episode_source holds unknown codes [7]" in report["errors"]


def test_valid_dataset_validates_with_json(small_dataset, capsys):
    path = small_dataset((5, 3))
    code, out, _ = cli(capsys, "validate", "--json", str(path))
    assert code == 0
    assert json.loads(out.strip().splitlines()[-1]) == {
        "path": str(path), "valid": True, "episodes": 2, "frames": 8, "errors": [], "notes": []
    }
    assert validate_dataset(path).valid


def test_merging_incompatible_datasets_writes_nothing(small_dataset, tmp_path, attrs, frame, capsys):
    a = small_dataset((3,), name="a.zarr")
    slower = tmp_path / "slow.zarr"
    with EpisodeWriter(slower, {**attrs, "fps": 10}) as writer:
        writer.add_frame(frame(0, 0))
        writer.save_episode(seed=0, success=True, source=Source.HUMAN)
    fewer_keys = tmp_path / "fewer.zarr"
    with EpisodeWriter(fewer_keys, attrs) as writer:
        writer.add_frame({k: v for k, v in frame(0, 0).items() if k != "gripper"})
        writer.save_episode(seed=0, success=True, source=Source.HUMAN)
    out = tmp_path / "merged.zarr"
    for other, message in ((slower, "fps 20 != 10"), (fewer_keys, r"keys differ \(only in first: \['gripper'\]")):
        code, _, err = cli(capsys, "merge", str(a), str(other), "-o", str(out))
        assert code == 2 and err.count("\n") == 1 and "cannot merge" in err
        assert __import__("re").search(message, err), err
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zarr", "fewer.zarr", "slow.zarr"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--episodes", "0,x"], "invalid episode list"),
        (["--episodes", "1-9"], "episode 9 out of range"),
        (["--episodes", "3-1"], "invalid episode range"),
        (["--source", "robot"], "unknown source"),
        (["--episodes", "1", "--success-only"], "no episodes selected"),
    ],
)
def test_bad_filters_write_nothing(small_dataset, tmp_path, capsys, argv, message):
    path = small_dataset((2, 2, 2))
    code, _, err = cli(capsys, "filter", str(path), "-o", str(tmp_path / "out.zarr"), *argv)
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "out.zarr").exists()


def test_existing_output_is_not_overwritten(small_dataset, capsys, snapshot):
    a, b = small_dataset((2,), name="a.zarr"), small_dataset((3,), name="b.zarr")
    before = snapshot(b)
    code, _, err = cli(capsys, "filter", str(a), "-o", str(b))
    assert code == 2 and "already exists" in err and snapshot(b) == before
