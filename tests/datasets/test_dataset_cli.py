"""`protege dataset` info, merge, filter and export-video on good datasets."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from protege.datasets import Dataset, EpisodeWriter, Source
from protege.launch.cli import main


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["dataset", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_info_reports_the_dataset(small_dataset, capsys):
    path = small_dataset((5, 3, 7, 2))
    info = run_json(capsys, "info", str(path))
    assert info["episodes"] == 4 and info["frames"] == 17 and info["fps"] == 20
    assert info["keys"]["image_front"] == {"shape": [8, 8, 3], "dtype": "uint8", "chunk_frames": 1365}
    assert info["keys"]["action"]["shape"] == [7] and info["keys"]["timestamp"]["dtype"] == "float64"
    assert info["sources"] == {"expert": 1, "human": 1, "intervention": 1, "policy": 1}
    assert info["success_rate"] == 0.5
    assert info["size_bytes"] > 1000 and info["zarr_format"] == 2 and info["cameras"] == ["front", "wrist"]
    assert main(["dataset", "info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "episodes  4" in text and "success   50.0%" in text and "image_front" in text


def test_info_episodes_lists_every_episode(small_dataset, capsys):
    path = small_dataset((5, 3, 7, 2))
    rows = run_json(capsys, "info", str(path), "--episodes")["per_episode"]
    assert [row["length"] for row in rows] == [5, 3, 7, 2] and [row["seed"] for row in rows] == [100, 101, 102, 103]
    assert [row["source"] for row in rows] == ["human", "expert", "policy", "intervention"]
    assert rows[0] == {"episode": 0, "length": 5, "seed": 100, "source": "human", "success": True,
                       "duration_s": pytest.approx(0.201)}
    assert main(["dataset", "info", str(path), "--episodes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["episode", "length", "seed", "source", "success", "duration"]
    assert lines[3].split() == ["2", "7", "102", "policy", "yes", "0.30", "s"] and len(lines) == 5


def test_a_closed_output_pipe_ends_quietly(small_dataset):
    """`protege dataset info D | head -1`: the reader is gone before the command writes."""
    path = small_dataset((5, 3))
    proc = subprocess.Popen([sys.executable, "-m", "protege.launch.cli", "dataset", "info", str(path), "--episodes"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == ""
    proc.stderr.close()


def test_merge_concatenates_episodes_and_meta(small_dataset, write, tmp_path, attrs, frame, capsys):
    a = small_dataset((3, 2), name="a.zarr")
    b = tmp_path / "b.zarr"
    with EpisodeWriter(b, attrs) as writer:
        writer.add_frame(frame(7, 0))
        writer.save_episode(seed=70, success=False, source=Source.INTERVENTION, parent_episode=1)
    result = run_json(capsys, "merge", str(a), str(b), "-o", str(tmp_path / "m.zarr"), "--format", "3")
    assert result["episodes"] == 3 and result["frames"] == 6
    merged, first = Dataset(tmp_path / "m.zarr"), Dataset(a)
    assert merged.zarr_format == 3
    for key in first.keys:
        np.testing.assert_array_equal(merged[key][:5], first[key][:])
    np.testing.assert_array_equal(merged.episode(2).data["action"], Dataset(b).episode(0).data["action"])
    np.testing.assert_array_equal(merged.meta("seed"), [100, 101, 70])
    np.testing.assert_array_equal(merged.meta("source"), [0, 1, 3])
    np.testing.assert_array_equal(merged.meta("parent_episode"), [-1, -1, 1])
    assert merged.attrs["derived_from"]["operation"] == "merge"
    assert "stats" not in merged.attrs


def test_merge_refuses_a_dataset_given_twice(small_dataset, tmp_path, capsys):
    a = small_dataset((3, 2), name="a.zarr")
    assert main(["dataset", "merge", str(a), f"{tmp_path}/./a.zarr/", "-o", str(tmp_path / "m.zarr")]) == 2
    assert "is given twice" in capsys.readouterr().err and not (tmp_path / "m.zarr").exists()


@pytest.mark.parametrize(
    "argv, kept",
    [
        (["--success-only"], [0, 2, 4]),
        (["--episodes", "0,3,4-5"], [0, 3, 4, 5]),
        (["--episodes", "1-5", "--success-only"], [2, 4]),
        (["--source", "human,intervention"], [0, 3, 4]),
    ],
)
def test_filter_keeps_the_matching_episodes(small_dataset, tmp_path, capsys, argv, kept):
    path = small_dataset((2, 3, 4, 5, 6, 7))
    result = run_json(capsys, "filter", str(path), "-o", str(tmp_path / "f.zarr"), *argv)
    assert result["selected"] == kept
    source, filtered = Dataset(path), Dataset(tmp_path / "f.zarr")
    assert filtered.num_episodes == len(kept)
    for new, old in enumerate(kept):
        for key in source.keys:
            np.testing.assert_array_equal(filtered.episode(new).data[key], source.episode(old).data[key])
    np.testing.assert_array_equal(filtered.meta("seed"), [100 + i for i in kept])


def test_export_video_puts_cameras_side_by_side(small_dataset, tmp_path, capsys):
    cv2 = pytest.importorskip("cv2")
    path = small_dataset((4, 6))
    out = tmp_path / "videos" / "ep1.mp4"
    result = run_json(capsys, "export-video", str(path), "--episode", "1", "--out", str(out))
    assert result["frames"] == 6 and result["width"] == 16 and result["height"] == 8
    assert result["cameras"] == ["front", "wrist"]
    video = cv2.VideoCapture(str(out))
    frames = []
    while (ok_frame := video.read())[0]:
        frames.append(ok_frame[1])
    video.release()
    assert len(frames) == 6 and frames[0].shape == (8, 16, 3)
    front = Dataset(path).episode(1).data["image_front"]
    assert abs(float(frames[3][:, :8].mean()) - float(front[3].mean())) < 12  # lossy codec, right camera on the left


@pytest.mark.parametrize("action", ["info", "validate", "repair", "merge", "filter", "export-video"])
def test_every_action_has_help(action, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["dataset", action, "--help"])
    assert exit_info.value.code == 0
    assert "--json" in capsys.readouterr().out
