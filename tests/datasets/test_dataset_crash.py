"""Crash safety and the writer lock: SIGKILL a writer at random moments, then validate and append."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from protege.datasets import Dataset, DatasetError, EpisodeWriter, Source
from protege.datasets.validate import validate_dataset
from protege.launch.cli import main

# Episode i has length(i) frames whose action row t is (i, t, ...); every third episode is long,
# so a kill often lands in the middle of its save.
WRITER_SCRIPT = """
import sys
import numpy as np
from protege.datasets import EpisodeWriter, Source

def length(i):
    return 1000 if i % 3 == 2 else 20 + i

attrs = {"fps": 20, "robot": "default", "task": "lift", "action_space": "ee_delta", "cameras": ["front"]}
with EpisodeWriter(sys.argv[1], attrs, format=int(sys.argv[2]), chunk_frames=4) as writer:
    i = writer.num_episodes
    print(f"opened {i}", flush=True)
    while True:
        for t in range(length(i)):
            writer.add_frame({
                "action": np.array([i, t, 0, 0, 0, 0, 1], np.float32),
                "timestamp": 0.05 * t,
                "image_front": np.full((16, 16, 3), (31 * i + t) % 256, np.uint8),
            })
        print(f"saving {i}", flush=True)
        writer.save_episode(seed=i, success=True, source=Source.HUMAN)
        print(f"saved {i}", flush=True)
        i += 1
"""
LONG_SAVE_S = 1.6  # a long save takes about 1.1 s on a loaded 2-core machine


def length(i: int) -> int:
    return 1000 if i % 3 == 2 else 20 + i


def check_episodes(path: Path, count: int) -> None:
    ds = Dataset(path)
    assert ds.num_episodes == count
    lengths = [length(i) for i in range(count)]
    np.testing.assert_array_equal(np.diff(ds.episode_ends, prepend=0), lengths)
    episode = np.repeat(np.arange(count), lengths)
    t = np.concatenate([np.arange(n) for n in lengths]) if count else np.zeros(0, int)
    action = ds["action"][:]
    np.testing.assert_array_equal(action[:, 0], episode)
    np.testing.assert_array_equal(action[:, 1], t)
    np.testing.assert_array_equal(ds["image_front"][:, 0, 0, 0], (31 * episode + t) % 256)
    np.testing.assert_array_equal(ds.meta("seed"), np.arange(count))


def run_and_kill(path: Path, zarr_format: int, rng: random.Random, mid_long_save: bool) -> list[str]:
    """Start a writer and SIGKILL it, at random or while it saves a long episode; return what it printed."""
    argv = [sys.executable, "-c", WRITER_SCRIPT, str(path), str(zarr_format)]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    printed: list[str] = []
    try:
        if mid_long_save:
            while not (printed and printed[-1].startswith("saving") and length(int(printed[-1].split()[1])) == 1000):
                printed.append(child.stdout.readline().strip())
                assert printed[-1], "the writer exited"
            time.sleep(rng.uniform(0.0, LONG_SAVE_S))
        else:
            time.sleep(rng.uniform(0.0, 2.0))  # anywhere from start-up and opening to writing
        child.send_signal(signal.SIGKILL)
        child.wait()
        printed += child.stdout.read().splitlines()
    finally:
        child.kill()
        child.stdout.close()
    return printed


@pytest.mark.parametrize("zarr_format, kills", [(2, (True, False, True, False, True)), (3, (True, False, True))])
def test_sigkill_at_random_moments_keeps_exactly_the_saved_episodes(tmp_path, zarr_format, kills):
    path = tmp_path / "crash.zarr"
    rng = random.Random(1234 + zarr_format)
    for mid_long_save in kills:
        before = Dataset(path).num_episodes if path.exists() else 0
        printed = run_and_kill(path, zarr_format, rng, mid_long_save)
        saved = before + sum(line.startswith("saved") for line in printed)
        save_under_way = bool(printed) and printed[-1].startswith("saving")
        if not path.exists():  # killed before the dataset was created
            assert saved == 0
            continue
        assert main(["dataset", "validate", str(path)]) == 0  # `protege dataset validate` accepts it
        committed = Dataset(path).num_episodes
        assert committed == saved or (save_under_way and committed == saved + 1), (printed[-3:], committed, saved)
        check_episodes(path, committed)
    # the lock of the killed writer is gone: a new writer appends and trims the killed tail
    attrs = {"fps": 20, "robot": "default", "task": "lift", "action_space": "ee_delta", "cameras": ["front"]}
    with EpisodeWriter(path, attrs) as writer:
        start = writer.num_episodes
        for t in range(length(start)):
            writer.add_frame({
                "action": np.array([start, t, 0, 0, 0, 0, 1], np.float32),
                "timestamp": 0.05 * t,
                "image_front": np.full((16, 16, 3), (31 * start + t) % 256, np.uint8),
            })
        writer.save_episode(seed=start, success=True, source=Source.HUMAN)
    report = validate_dataset(path)
    assert report.valid and not report.notes, (report.errors, report.notes)
    check_episodes(path, start + 1)


def test_uncommitted_tail_is_invisible_noted_and_trimmed(small_dataset, attrs, frame):
    path = small_dataset((4, 3))
    root = zarr.open_group(str(path), mode="r+")
    for _, array in root["data"].arrays():
        array.resize((10, *array.shape[1:]))
    root["meta"]["episode_seed"].resize((3,))
    ds = Dataset(path)
    assert ds.num_frames == 7 and len(ds["action"]) == 7 and ds.meta("seed").tolist() == [100, 101]
    report = validate_dataset(path)
    assert report.valid and any("uncommitted frames" in note for note in report.notes)
    with EpisodeWriter(path, attrs) as writer:
        writer.add_frame(frame(2, 0))
        writer.save_episode(seed=102, success=True, source=Source.HUMAN)
    report = validate_dataset(path)
    assert report.valid and not report.notes
    assert Dataset(path).episode(2).data["action"][0, 0] == 2000.0


def raw_lengths(path: Path) -> tuple[int, set[int]]:
    """episode_ends[-1] and the lengths of the data arrays as stored, as a ReplayBuffer-style loader sees them."""
    root = zarr.open_group(str(path), mode="r")
    return int(root["meta"]["episode_ends"][-1]), {array.shape[0] for _, array in root["data"].arrays()}


def test_repair_trims_the_tail_and_temp_files_a_killed_writer_left(small_dataset, capsys):
    path = small_dataset((4, 3))
    root = zarr.open_group(str(path), mode="r+")
    for _, array in root["data"].arrays():
        array.resize((10, *array.shape[1:]))
    root["meta"]["episode_seed"].resize((3,))
    temp_file = path / "data" / "action" / f"0.0.{'a' * 32}.partial"
    temp_file.write_bytes(b"half a chunk")
    assert main(["dataset", "validate", str(path)]) == 0
    assert "note: 3 uncommitted frames after the last episode (a killed writer); `protege dataset repair`" in (
        capsys.readouterr().out
    )
    assert main(["dataset", "repair", str(path)]) == 0
    assert "trimmed 3 uncommitted frames and removed 1 temp files; 2 episodes, 7 frames" in capsys.readouterr().out
    assert raw_lengths(path) == (7, {7}) and not temp_file.exists()
    assert zarr.open_group(str(path), mode="r")["meta"]["episode_seed"].shape == (2,)
    report = validate_dataset(path)
    assert report.valid and not report.notes, report.notes
    assert Dataset(path).meta("seed").tolist() == [100, 101]


def test_repair_is_refused_while_a_writer_holds_the_lock(small_dataset, attrs, capsys):
    path = small_dataset((4,))
    with EpisodeWriter(path, attrs):
        assert main(["dataset", "repair", str(path)]) == 2
    assert f"{path} is locked by another writer (pid {os.getpid()} " in capsys.readouterr().err
    assert main(["dataset", "repair", str(path / "missing.zarr")]) == 2
    assert "no dataset at" in capsys.readouterr().err


def test_a_commit_dying_mid_chunks_leaves_no_array_past_episode_ends(small_dataset, attrs, frame, monkeypatch):
    from protege.datasets import storage

    path = small_dataset((4,), chunk_frames=2)
    write_atomic, chunks_written = storage.write_atomic, []

    def die_on_third_chunk(target: Path, data: bytes) -> None:
        if target.name not in (".zarray", ".zattrs", ".zgroup", "zarr.json"):
            chunks_written.append(target)
            if len(chunks_written) == 3:
                raise OSError("killed")
        write_atomic(target, data)

    monkeypatch.setattr(storage, "write_atomic", die_on_third_chunk)
    with EpisodeWriter(path, attrs) as writer:
        for t in range(6):
            writer.add_frame(frame(1, t))
        with pytest.raises(DatasetError, match="saving episode 1 .* failed: killed"):
            writer.save_episode(seed=101, success=True, source=Source.HUMAN)
        with pytest.raises(DatasetError, match="failed earlier"):
            writer.add_frame(frame(1, 0))
        writer.close()  # the failure was raised once already: closing does not hide it behind another
    assert raw_lengths(path) == (4, {4})  # the data arrays never grew past the committed episode


def test_a_second_writer_is_refused_naming_the_dataset_and_pid(tmp_path, attrs, frame):
    path = tmp_path / "d.zarr"
    with EpisodeWriter(path, attrs) as writer:
        with pytest.raises(DatasetError, match=rf"{path} is locked by another writer \(pid {os.getpid()} "):
            EpisodeWriter(path, attrs)
        writer.add_frame(frame(0, 0))
        writer.save_episode(seed=0, success=True, source=Source.HUMAN)
    with EpisodeWriter(path, attrs) as writer:  # released by close()
        assert writer.num_episodes == 1


def test_a_killed_writer_does_not_block_the_next_one(tmp_path, attrs):
    path = tmp_path / "d.zarr"
    EpisodeWriter(path, attrs).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time; from protege.datasets import EpisodeWriter; "
         f"w = EpisodeWriter(sys.argv[1], {attrs!r}); print('ready', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(DatasetError, match=rf"pid {holder.pid} "):
            EpisodeWriter(path, attrs)
        assert not validate_dataset(path).errors
        assert any(f"pid {holder.pid}" in note for note in validate_dataset(path).notes)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    EpisodeWriter(path, attrs).close()


def test_stale_remote_lock_is_taken_over(attrs):
    import json
    import socket
    import uuid

    import fsspec

    url = f"memory://protege-tests/{uuid.uuid4().hex}.zarr"
    EpisodeWriter(url, attrs).close()
    fs, root = fsspec.core.url_to_fs(url)
    dead = {"pid": 2**22 + 7, "host": socket.gethostname(), "time": time.time(), "token": "x"}
    fs.pipe_file(f"{root}/.protege.lock", json.dumps(dead).encode())
    EpisodeWriter(url, attrs).close()  # holder pid is not alive on this host
    alive = {**dead, "pid": os.getpid(), "host": "elsewhere"}
    fs.pipe_file(f"{root}/.protege.lock", json.dumps(alive).encode())
    with pytest.raises(DatasetError, match="pid"):
        EpisodeWriter(url, attrs)
    fs.pipe_file(f"{root}/.protege.lock", json.dumps({**alive, "time": time.time() - 3600}).encode())
    EpisodeWriter(url, attrs).close()  # heartbeat older than the stale limit


def metadata_renames(monkeypatch: pytest.MonkeyPatch, fail_at: str | None = None) -> list[str]:
    """Record (into the returned list) the metadata files renamed into place, raising OSError at ``fail_at``."""
    renamed: list[str] = []
    replace = os.replace

    def recording_replace(source: object, target: object) -> None:
        name = str(target).split(".zarr/")[-1]
        if name.rsplit("/", 1)[-1] in (".zarray", ".zattrs", "zarr.json"):
            if name == fail_at:
                raise OSError("killed")
            renamed.append(name)
        replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    return renamed


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_commit_renames_the_new_shapes_at_once_episode_ends_last(small_dataset, attrs, frame, monkeypatch,
                                                                   zarr_format):
    path = small_dataset((4,), zarr_format=zarr_format)
    metadata = ".zarray" if zarr_format == 2 else "zarr.json"
    with EpisodeWriter(path, attrs) as writer:
        for t in range(3):
            writer.add_frame(frame(1, t))
        renamed = metadata_renames(monkeypatch)
        writer.save_episode(seed=101, success=True, source=Source.HUMAN)
    meta = [f"meta/{name}/{metadata}" for name in ("episode_duration", "episode_seed", "episode_source",
                                                   "episode_success", "meta_checksums", "checksums")]
    data = [f"data/{key}/{metadata}" for key in frame(1, 0)]
    # every shape grows, episode_ends' last; unchanged attributes are not rewritten
    assert sorted(renamed[:-1]) == sorted(meta + data) and renamed[-1] == f"meta/episode_ends/{metadata}"


def test_a_commit_dying_in_its_renames_leaves_no_temp_file_and_a_valid_dataset(small_dataset, attrs, frame,
                                                                                monkeypatch):
    path = small_dataset((4,))
    with EpisodeWriter(path, attrs) as writer:
        writer.add_frame(frame(1, 0))
        metadata_renames(monkeypatch, fail_at="data/joint_pos/.zarray")
        with pytest.raises(DatasetError, match="saving episode 1 .* failed: killed"):
            writer.save_episode(seed=101, success=True, source=Source.HUMAN)
    monkeypatch.undo()
    assert not list(path.rglob("*.partial"))
    report = validate_dataset(path)
    assert report.valid and report.episodes == 1, report.errors
    assert main(["dataset", "repair", str(path)]) == 0
    assert raw_lengths(path) == (4, {4})


def test_a_kill_while_a_checksum_column_is_added_leaves_a_valid_dataset(small_dataset, attrs, frame, monkeypatch):
    path = small_dataset((4,))
    with EpisodeWriter(path, attrs) as writer:
        writer.add_frame(frame(1, 0))
        renamed = metadata_renames(monkeypatch, fail_at="meta/meta_checksums/.zarray")
        with pytest.raises(DatasetError, match="failed: killed"):
            writer.save_episode(seed=101, success=True, source=Source.HUMAN, parent_episode=0)
    monkeypatch.undo()
    assert renamed[-1] == "meta/meta_checksums/.zattrs"  # the new column's name, before its shape
    report = validate_dataset(path)
    assert report.valid and report.episodes == 1, report.errors
    with EpisodeWriter(path, attrs) as writer:
        writer.add_frame(frame(1, 0))
        writer.save_episode(seed=101, success=True, source=Source.HUMAN, parent_episode=0)
    report = validate_dataset(path)
    assert report.valid and not report.notes, report.errors + report.notes
    assert Dataset(path).meta("parent_episode").tolist() == [-1, 0]
