"""Seeded random damage to a recorded dataset: every command either succeeds with the original data or
fails with one line (validate: lists errors); no traceback, and no damage tolerated: readers check that
every committed chunk exists and that whole episodes (and per-episode values) match their checksums.

The default run applies 300 mutations (flipped bytes in chunks and metadata, truncated and deleted
files) to one working copy, restoring the mutated file after each; ``-m slow`` keeps going for
``PROTEGE_FUZZ_SECONDS`` (default 600). A failure prints the seed and the mutation that reproduce it.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from protege.datasets import Dataset, DatasetError, SequenceSampler
from protege.launch.cli import main

SEED = 25
DEFAULT_MUTATIONS = 300
SLOW_SECONDS = float(os.environ.get("PROTEGE_FUZZ_SECONDS", "600"))
KINDS = ("flip", "flip", "truncate", "delete")


@dataclass(frozen=True)
class Mutation:
    file: str  # relative to the dataset root
    kind: str  # flip, truncate or delete
    detail: str  # which bytes, or the new size

    def __str__(self) -> str:
        return f"{self.kind} {self.file} {self.detail}".strip()


def mutate(path: Path, rng: random.Random) -> Mutation:
    """Damage one file of the dataset at ``path`` at random and say how."""
    files = sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    name = rng.choice(files)
    target = path / name
    data = bytearray(target.read_bytes())
    kind = rng.choice(KINDS) if data else "delete"
    if kind == "delete":
        target.unlink()
        return Mutation(name, kind, "")
    if kind == "truncate":
        size = rng.randrange(len(data))
        target.write_bytes(data[:size])
        return Mutation(name, kind, f"to {size} of {len(data)} bytes")
    flips = [(rng.randrange(len(data)), rng.randrange(1, 256)) for _ in range(rng.choice((1, 1, 2, 4)))]
    for offset, mask in flips:
        data[offset] ^= mask
    target.write_bytes(data)
    return Mutation(name, kind, ", ".join(f"byte {offset} ^ {mask:#04x}" for offset, mask in flips))


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))  # a traceback is an exception escaping here: the test fails with it
    out, err = capsys.readouterr()
    return status, out, err


def read_back(path: Path) -> dict[str, Any]:
    """Everything a reader sees: attrs, per-episode values, every episode, and every sampler window."""
    ds = Dataset(path)
    seen: dict[str, Any] = {"attrs": ds.attrs, "ends": ds.episode_ends, "keys": ds.keys}
    seen.update({f"meta/{name}": ds.meta(name) for name in ds.meta_names})
    for episode in range(ds.num_episodes):
        seen.update({f"{episode}/{key}": value for key, value in ds.episode(episode).data.items()})
    sampler = SequenceSampler(Dataset(path), [key for key in ds.keys if key != "action"], n_obs_steps=2, horizon=4)
    seen.update({f"window/{key}": value for key, value in sampler.sample(np.arange(len(sampler))).items()})
    return seen


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) if isinstance(a[k], np.ndarray) else a[k] == b[k]
               for k in a)


def without_size(info: str) -> str:
    """``dataset info`` output less its size line (a truncated unused file may change it)."""
    return "\n".join(line for line in info.splitlines() if not line.startswith("size "))


def one_line_error(status: int, err: str) -> bool:
    return status == 2 and err.count("\n") == 1 and err.startswith("protege ") and "Traceback" not in err


@dataclass
class Baseline:
    info: str
    episodes: str
    data: dict[str, Any]
    video: str
    replay: str


class Fuzzer:
    """Applies mutations to ``work`` (a copy of ``original``) and checks every command after each."""

    def __init__(self, original: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.original, self.work, self.capsys = original, work, capsys
        shutil.copytree(original, work)
        self.video = work.parent / "episode.mp4"
        self.baseline = Baseline(
            info=without_size(self.cli("dataset", "info", str(work))[1]),
            episodes=self.cli("dataset", "info", str(work), "--episodes")[1],
            data=read_back(work),
            video=self.cli("dataset", "export-video", str(work), "--episode", "1", "--out", str(self.video))[1],
            replay=self.cli("replay", str(work), "--episode", "1", "--mode", "states")[1],
        )

    def cli(self, *argv: str) -> tuple[int, str, str]:
        return run_cli(self.capsys, *argv)

    def check(self, heavy: bool) -> list[str]:
        """Problems with the damaged dataset: each a line naming the command and what it did."""
        problems: list[str] = []
        work = str(self.work)
        verdicts = {}
        for quick in ((), ("--quick",)):
            status, out, err = self.cli("dataset", "validate", work, *quick)
            verdicts[bool(quick)] = status == 0
            if status not in (0, 1) and not one_line_error(status, err):
                problems.append(f"validate {quick}: status {status}, stderr {err!r}")
        if verdicts[True] is False and verdicts[False] is True:
            problems.append("validate: --quick rejects what the full check accepts")

        def expect(command: str, result: tuple[int, str, str], baseline: str, compare: Any = lambda s: s) -> None:
            status, out, err = result
            if status == 0 and compare(out) != baseline:
                problems.append(f"{command}: succeeded with damaged values (printed {out!r})")
            elif status != 0 and not one_line_error(status, err):
                problems.append(f"{command}: status {status}, stderr {err!r}")

        expect("info", self.cli("dataset", "info", work), self.baseline.info, without_size)
        expect("info --episodes", self.cli("dataset", "info", work, "--episodes"), self.baseline.episodes)
        try:
            data = read_back(self.work)
        except DatasetError as exc:
            if "\n" in str(exc):
                problems.append(f"reader: a multi-line DatasetError: {exc!r}")
        else:
            if not same(data, self.baseline.data):
                problems.append("reader: returned damaged values")
        if heavy:
            self.video.unlink(missing_ok=True)
            expect("export-video",
                   self.cli("dataset", "export-video", work, "--episode", "1", "--out", str(self.video)),
                   self.baseline.video)
            expect("replay", self.cli("replay", work, "--episode", "1", "--mode", "states"), self.baseline.replay)
        return problems

    def restore(self, mutation: Mutation) -> None:
        shutil.copy2(self.original / mutation.file, self.work / mutation.file)

    def run(self, rng: random.Random, count: int | None, seconds: float | None) -> tuple[int, list[str]]:
        """Mutate, check and restore ``count`` times (or for ``seconds``); return the count and the failures."""
        failures: list[str] = []
        deadline = time.monotonic() + seconds if seconds is not None else None
        done = 0
        while (count is None or done < count) and (deadline is None or time.monotonic() < deadline):
            mutation = mutate(self.work, rng)
            try:
                problems = self.check(heavy=done % 4 == 0)
            except Exception as exc:  # a traceback from a command: report it with the mutation
                problems = [f"raised {type(exc).__name__}: {exc}"]
            failures += [f"mutation {done} ({mutation}): {problem}" for problem in problems]
            self.restore(mutation)
            done += 1
        return done, failures


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three scripted lift episodes with one 32 px camera, recorded once for every fuzz run."""
    path = tmp_path_factory.mktemp("fuzz") / "lift.zarr"
    argv = ["record", "--task", "lift", "--expert", "scripted", "--episodes", "3", "--cameras", "front",
            "--image-size", "32", "--out", str(path), "--no-progress"]
    assert main(argv) == 0
    return path


def fuzz(recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int,
         count: int | None = None, seconds: float | None = None) -> int:
    fuzzer = Fuzzer(recorded, tmp_path / "work.zarr", capsys)
    done, failures = fuzzer.run(random.Random(seed), count, seconds)
    with capsys.disabled():
        print(f"\nfuzz seed {seed}: {done} mutations, {len(failures)} failures")
    assert not failures, f"seed {seed}: {len(failures)} failures, the first:\n" + "\n".join(failures[:10])
    return done


def test_random_damage_ends_in_the_original_data_or_one_line(recorded, tmp_path, capsys):
    assert fuzz(recorded, tmp_path, capsys, SEED, count=DEFAULT_MUTATIONS) == DEFAULT_MUTATIONS


@pytest.mark.slow
def test_random_damage_for_ten_minutes(recorded, tmp_path, capsys):
    assert fuzz(recorded, tmp_path, capsys, int(time.time()), seconds=SLOW_SECONDS) > DEFAULT_MUTATIONS
