"""Workers never outlive their parent: SIGKILL or SIGTERM of a collection or a parallel rollout leaves no process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protege.datasets import Dataset, DatasetError
from protege.datasets.validate import validate_dataset

SMALL = ["--cameras", "front", "--no-progress"]


def descendants(pid: int) -> set[int]:
    """Live (not zombie) processes below ``pid``, read from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.add(pid)
    return left


def saved(dataset: Path) -> int:
    try:
        return Dataset(dataset).num_episodes
    except DatasetError:  # not created yet
        return 0


def start_and_kill(argv: list[str], out: Path, sig: int, ready: int, deadline_s: float = 120.0
                   ) -> tuple[subprocess.Popen, set[int]]:
    """Start ``protege argv``, wait for ``ready`` processes below it and a saved episode, send ``sig``."""
    proc = subprocess.Popen([sys.executable, "-m", "protege.launch.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"})
    start = time.monotonic()
    children: set[int] = set()
    while len(children) < ready or not saved(out):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - start < deadline_s, "workers never started"
        time.sleep(0.2)
        children |= descendants(proc.pid)
    proc.send_signal(sig)
    return proc, children


def finish(proc: subprocess.Popen, timeout: float = 60.0) -> tuple[str, str]:
    """Wait for the killed command; one still running after ``timeout`` fails with every thread's stack."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler prints where each thread is
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"the command did not stop within {timeout} s:\n{err[-6000:]}") from None


def assert_all_gone(children: set[int], within_s: float = 10.0) -> None:
    start = time.monotonic()
    while alive(children) and time.monotonic() - start < within_s:
        time.sleep(0.2)
    assert not alive(children), f"left running: {alive(children)}"


COMMANDS = {
    "record": lambda tmp: ["record", "--task", "lift", "--expert", "scripted", "--workers", "2", "--episodes", "400",
                           "--image-size", "32", "--out", str(tmp / "d.zarr"), *SMALL],
    "rollout": lambda tmp: ["rollout", "--checkpoint", str(tmp / "run"), "--envs", "2", "--episodes", "400",
                            "--no-log", "--record", str(tmp / "r.zarr"), *SMALL],
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from protege.launch import cli
    from protege.policies.config import TrainConfig
    from protege.policies.trainer import train

    root = tmp_path_factory.mktemp("orphans")
    demos = str(root / "demos.zarr")
    assert cli.main(["record", "--task", "lift", "--expert", "scripted", "--episodes", "2", "--image-size", "32",
                     "--out", demos, *SMALL]) == 0
    train(TrainConfig(dataset=demos, out=str(root / "run"), steps=2, warmup_steps=1, progress=False))
    return root / "run"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_killing_the_parent_leaves_no_worker(run_dir: Path, tmp_path: Path, command: str, sig: int) -> None:
    (tmp_path / "run").symlink_to(run_dir)
    out = tmp_path / ("d.zarr" if command == "record" else "r.zarr")
    # two workers plus the multiprocessing resource tracker
    proc, children = start_and_kill(COMMANDS[command](tmp_path), out, sig, ready=3)
    _, err = finish(proc)
    assert_all_gone(children)
    if sig == signal.SIGTERM:  # a clean stop like Ctrl-C: one line, every saved episode kept and valid
        assert proc.returncode == 143 and err.splitlines()[-1] == f"protege {command}: terminated", err
        assert "Traceback" not in err, err
        assert saved(out) >= 1
        assert validate_dataset(out).valid
