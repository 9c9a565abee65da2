"""Crash safety to the diffusion_policy contract: `kill -9` real recording and DAgger commands at random moments.

After every kill, every saved episode validates, and the dataset loads as diffusion_policy's ReplayBuffer
loads it (every data array as long as ``meta/episode_ends[-1]``) without repair, unless the kill landed
in the writer's commit window; those kills are counted, and `protege dataset repair` must fix them.
A kill in the first save leaves an empty dataset that every command handles.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zarr

from protege.launch.cli import main

PROTEGE = [sys.executable, "-m", "protege.launch.cli"]
RECORD = ["record", "--task", "lift", "--expert", "scripted", "--episodes", "40", "--workers", "1",
          "--image-size", "64", "--no-progress"]
DAGGER = ["dagger", "--task", "lift", "--expert", "scripted", "--rounds", "2", "--demos", "2",
          "--episodes-per-round", "2", "--steps", "20", "--eval-episodes", "1", "--set", "warmup_steps=5",
          "--cameras", "", "--no-progress"]
RECORD_KILL_S = (0.5, 6.0)  # from start-up to well into writing (about 0.35 s an episode)
DAGGER_KILL_S = (0.5, 10.0)  # the whole run: demos, training, labelled rollouts, evaluation


def loads_as_replay_buffer(path: Path) -> bool:
    """diffusion_policy's ReplayBuffer check, on the raw Zarr: every data array's length == episode_ends[-1]
    (which an empty episode_ends does not have: then data/ must hold no array)."""
    root = zarr.open_group(str(path), mode="r")
    ends = root["meta"]["episode_ends"][:]
    arrays = [array for _, array in root["data"].arrays()]
    return all(array.shape[0] == ends[-1] for array in arrays) if len(ends) else not arrays


def kill_at_random(argv: list[str], cwd: Path, delay: float) -> None:
    """Run ``protege argv`` and SIGKILL it after ``delay`` seconds (or let it finish first)."""
    child = subprocess.Popen([*PROTEGE, *argv], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        child.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        try:  # anything the command left behind in its session
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def check_after_kill(path: Path) -> bool:
    """Validate ``path`` and return whether it needed `protege dataset repair` to load; repair it then."""
    if not path.exists():  # killed before the dataset was created
        return False
    assert main(["dataset", "validate", str(path)]) == 0
    if loads_as_replay_buffer(path):
        return False
    assert main(["dataset", "repair", str(path)]) == 0
    assert loads_as_replay_buffer(path)
    assert main(["dataset", "validate", str(path)]) == 0
    return True


def kill_record(tmp_path: Path, kills: int, seed: int) -> int:
    """Kill `protege record` ``kills`` times, appending to one dataset; return how many kills needed repair."""
    tmp_path.mkdir(exist_ok=True)
    rng, path = random.Random(seed), tmp_path / "demos.zarr"
    repaired = 0
    for _ in range(kills):
        kill_at_random([*RECORD, "--out", str(path)], tmp_path, rng.uniform(*RECORD_KILL_S))
        repaired += check_after_kill(path)
    return repaired


def kill_dagger(tmp_path: Path, kills: int, seed: int) -> int:
    """Kill a fresh `protege dagger` run ``kills`` times; return how many kills needed repair."""
    tmp_path.mkdir(exist_ok=True)
    rng = random.Random(seed)
    repaired = 0
    for k in range(kills):
        out = tmp_path / f"run{k}"
        kill_at_random([*DAGGER, "--out", str(out)], tmp_path, rng.uniform(*DAGGER_KILL_S))
        repaired += check_after_kill(out / "data.zarr")
    return repaired


def report(capsys: pytest.CaptureFixture[str], what: str, repaired: int, kills: int) -> None:
    capsys.readouterr()
    with capsys.disabled():
        print(f"\n{what}: {repaired} of {kills} kills needed `protege dataset repair`")


def test_killed_recording_leaves_a_loadable_dataset(tmp_path, capsys):
    report(capsys, "record", kill_record(tmp_path, kills=3, seed=20), 3)


def test_killed_dagger_round_leaves_a_loadable_dataset(tmp_path, capsys):
    report(capsys, "dagger", kill_dagger(tmp_path, kills=3, seed=20), 3)


@pytest.mark.slow
def test_twenty_kills_of_recording_and_of_dagger(tmp_path, capsys):
    started = time.perf_counter()
    record = kill_record(tmp_path / "record", kills=20, seed=2020)
    dagger = kill_dagger(tmp_path / "dagger", kills=20, seed=2020)
    report(capsys, f"record ({time.perf_counter() - started:.0f} s with dagger)", record, 20)
    report(capsys, "dagger", dagger, 20)


def kill_first_save(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave ``path`` as a writer killed while it wrote the chunks of its first episode leaves it."""
    import numpy as np

    from protege.datasets import DatasetError, EpisodeWriter, storage
    from protege.sim import EnvSpec

    write_atomic, chunks = storage.write_atomic, []

    def die_on_tenth_chunk(target: Path, data: bytes) -> None:
        if target.name not in (".zarray", ".zattrs", ".zgroup"):
            chunks.append(target)
            if len(chunks) == 10:
                raise OSError("killed")
        write_atomic(target, data)

    attrs = EnvSpec.make("lift", cameras=("front",), image_size=32).to_attrs()
    with EpisodeWriter(path, attrs) as writer:
        monkeypatch.setattr(storage, "write_atomic", die_on_tenth_chunk)
        shapes = {"action": (7,), "image_front": (32, 32, 3), "timestamp": ()}
        for t in range(20):
            writer.add_frame({key: np.full(shape, t, np.uint8 if key.startswith("image") else np.float64)
                              for key, shape in shapes.items()})
        with pytest.raises(DatasetError, match="killed"):
            writer.save_episode(seed=0, success=False, source=1)
    monkeypatch.undo()


@pytest.mark.parametrize("legacy", [False, True])
def test_a_kill_in_the_first_save_leaves_an_empty_dataset_every_command_handles(tmp_path, capsys, monkeypatch,
                                                                                 legacy):
    path = tmp_path / "demos.zarr"
    kill_first_save(path, monkeypatch)
    assert any((path / "data").iterdir())  # the killed save's chunks, without the metadata that shows them
    if legacy:  # as writers before this one left it: data arrays of no frames
        group = zarr.open_group(str(path / "data"), mode="r+")
        for key in ("action", "timestamp"):
            group.create_array(key, shape=(0, 7) if key == "action" else (0,), chunks=(64, 7)[: 2 - (key != "action")],
                               dtype="float64")
    assert loads_as_replay_buffer(path) is not legacy
    capsys.readouterr()
    assert main(["dataset", "validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note: the dataset has no episodes" in out
    assert ("empty data arrays but no episode (a writer killed in its first save), which ReplayBuffer loaders "
            "refuse; `protege dataset repair` removes them" in out) is legacy
    assert main(["dataset", "info", str(path)]) == 0
    assert "episodes  0   frames 0" in capsys.readouterr().out
    for argv, expected in (
        (["replay", str(path), "--episode", "0"], f"{path} has no episodes to replay"),
        (["dataset", "export-video", str(path), "--episode", "0", "--out", str(tmp_path / "v.mp4")],
         f"episode 0 out of range: {path} has no episodes"),
        (["train", "--dataset", str(path), "--out", str(tmp_path / "run")], f"{path} has no episodes to train on"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and expected in err, err
    assert not (tmp_path / "run").exists() and not (tmp_path / "v.mp4").exists()
    assert main(["dataset", "repair", str(path)]) == 0
    assert all(p.name.startswith(".") for p in (path / "data").iterdir())  # the group's metadata only
    assert loads_as_replay_buffer(path)
    assert main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "1", "--cameras", "front",
                 "--image-size", "32", "--no-progress", "--out", str(path)]) == 0
    assert main(["dataset", "validate", str(path)]) == 0 and loads_as_replay_buffer(path)
