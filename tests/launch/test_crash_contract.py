"""Crash safety to the diffusion_policy contract: `kill -9` real recording and DAgger commands at random moments.

After every kill, every saved episode validates, and the dataset loads as diffusion_policy's ReplayBuffer
loads it (every data array as long as ``meta/episode_ends[-1]``) without repair, unless the kill landed
in the writer's commit window; those kills are counted, and `protege dataset repair` must fix them.
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
    """diffusion_policy's ReplayBuffer check, on the raw Zarr: every data array's length == episode_ends[-1]."""
    root = zarr.open_group(str(path), mode="r")
    ends = root["meta"]["episode_ends"][:]
    steps = int(ends[-1]) if len(ends) else 0
    return all(array.shape[0] == steps for _, array in root["data"].arrays())


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
