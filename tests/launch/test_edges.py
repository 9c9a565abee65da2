"""Issue 35's edges, tried as a new user would: each ends in one line naming the problem and exit status 2, before
anything is written (the dataset edges are in tests/datasets/test_dataset_edges.py)."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest
from helpers import demos_and_run, one_line

from protege.sim import EnvSpec, SimError
from protege.sim.disturbances import check_disturbances, parse_disturbances
from protege.sim.robot import menagerie_dir
from protege.sim.tasks import TASKS

RECORD = ["record", "--task", "lift", "--expert", "scripted", "--cameras", "", "--no-progress"]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2-episode lift dataset without cameras and a tiny mlp trained on it."""
    return demos_and_run(tmp_path_factory.mktemp("edges"), RECORD)


def free_port() -> int:
    """A loopback port where nothing listens (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- --ray where nothing answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["", "ray://"])
@pytest.mark.parametrize("command", ["record", "rollout", "dagger"])
def test_ray_address_where_nothing_answers_fails_at_once_naming_it(made, tmp_path, capsys, monkeypatch, scheme,
                                                                   command):
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh command, whatever ran before here
    address = f"{scheme}127.0.0.1:{free_port()}"
    out = tmp_path / "out"
    argv = {"record": [*RECORD, "--episodes", "2", "--out", str(out)],
            "rollout": ["rollout", "--checkpoint", str(made[1]), "--episodes", "2", "--record", str(out),
                        "--no-progress", "--no-log"],
            "dagger": ["dagger", "--task", "reach", "--expert", "scripted", "--out", str(out), "--no-progress"]}
    started = time.monotonic()
    one_line(capsys, [*argv[command], "--ray", address], f"--ray {address}: nothing answers there")
    assert time.monotonic() - started < 15
    assert not out.exists()


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:notaport", "ray://127.0.0.1:70000"])
def test_malformed_ray_address_is_one_line(tmp_path, capsys, monkeypatch, address):
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    one_line(capsys, [*RECORD, "--out", str(tmp_path / "out"), "--ray", address], f"--ray {address}: not an address")
    assert not (tmp_path / "out").exists()


# -- --disturb magnitudes that cannot make sense -----------------------------------------------------------


@pytest.mark.parametrize("text,expected", [
    ("latency=100000", "latency=100000: a delay of the whole episode or more (lift runs 160 ticks at 20 Hz)"),
    ("latency=160", "latency=160: a delay of the whole episode"),
    ("arm_shove=5", "arm_shove=5: wider than the protege_arm workspace (0.38 m across)"),
    ("object_push=1", "object_push=1: wider than"),
    ("obs_noise=0.5", "obs_noise=0.5: wider than"),
])
def test_rollout_refuses_a_disturbance_beyond_the_task(made, capsys, text, expected):
    one_line(capsys, ["rollout", "--checkpoint", str(made[1]), "--episodes", "1", "--no-progress", "--no-log",
                      "--disturb", text], f"--disturb: disturbance {expected}")


@pytest.mark.skipif(menagerie_dir() is None, reason="Menagerie robots not found (PROTEGE_MENAGERIE)")
def test_every_arm_and_task_takes_the_default_disturbances_and_the_bound_is_the_arms():
    for robot in ("protege_arm", "panda", "so_arm100"):
        for task in TASKS:
            check_disturbances(parse_disturbances("default,obs_noise,latency=20"), EnvSpec.make(task, robot, ()))
    with pytest.raises(SimError, match=r"object_push=0.2: wider than the so_arm100 workspace \(0.16 m across\)"):
        check_disturbances(parse_disturbances("object_push=0.2"), EnvSpec.make("reach", "so_arm100", ()))


def test_dagger_and_the_learning_table_refuse_it_before_any_work(tmp_path, capsys):
    one_line(capsys, ["dagger", "--task", "reach", "--expert", "scripted", "--out", str(tmp_path / "dg"),
                      "--disturb", "latency=100000"], "--disturb: disturbance latency=100000", "reach runs 100 ticks")
    one_line(capsys, ["bench", "learn", "--out", str(tmp_path / "table"), "--tasks", "reach,lift", "--disturb",
                      "arm_shove=5"], "--disturb: disturbance arm_shove=5: wider than")
    assert list(tmp_path.iterdir()) == []


# -- outputs that would mix with other files, options that would be ignored -----------------------------------


def test_dagger_refuses_an_out_that_holds_a_training_run_or_other_files(made, tmp_path, capsys):
    run = shutil.copytree(made[1], tmp_path / "run")
    before = sorted(p.name for p in run.iterdir())
    dagger = ["dagger", "--task", "lift", "--expert", "scripted", "--no-progress"]
    one_line(capsys, [*dagger, "--out", str(run)], f"{run} already holds a training run: choose a new --out")
    assert sorted(p.name for p in run.iterdir()) == before
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    one_line(capsys, [*dagger, "--out", str(other)], f"{other} already holds other files")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("argv,expected", [
    (["--expert", "scripted", "--time-limit", "-5"], "--time-limit: only with --device (scripted collection keeps"),
    (["--expert", "scripted", "--bindings", "b.yaml", "--auto-save"], "--bindings, --auto-save: only with --device"),
    (["--device", "keyboard", "--workers", "2", "--dart"], "--workers, --dart: only with --expert scripted"),
    (["--device", "keyboard", "--noise", "0.5"], "--noise: only with --expert scripted"),
    (["--device", "keyboard", "--randomize", "visual"], "--randomize: only with --expert scripted"),
])
def test_record_refuses_the_options_of_the_other_way_of_recording(tmp_path, capsys, argv, expected):
    one_line(capsys, ["record", "--task", "lift", *argv, "--out", str(tmp_path / "d.zarr")], expected)
    assert not (tmp_path / "d.zarr").exists()


# -- the sweep: counts, seeds, sizes, rates, names, devices -------------------------------------------------


@pytest.mark.parametrize("argv,expected", [
    ("--fps 0", "--fps must be 1 to 500 Hz (the physics rate), got 0"),
    ("--fps nan", "--fps must be 1 to 500 Hz"),
    ("--fps 1000000", "--fps must be 1 to 500 Hz"),
    ("--image-size 100000", "--image-size must be 1 to 2048, got 100000"),
    ("--cameras nope", "--cameras: unknown camera nope (choose from front, wrist, side, top)"),
    ("--cameras front,front", "--cameras: camera 'front' is named twice"),
    ("--seed -5", "--seed must be 0 to 4294967295, got -5"),
    ("--noise nan", "--noise must be >= 0 and finite, got nan"),
    ("--workers 1000", "--workers 1000: more than 4 processes per CPU"),
    ("--success-hold -1", "--success-hold must be >= 0"),
    ("--randomize fog", "--randomize: unknown disturbance 'fog'"),
    ("--randomize colors=-1", "--randomize: disturbance colors: magnitude must be a finite number >= 0"),
    ("--randomize lighting,object_push", "--randomize draws what cameras see"),
])
def test_record_sweep(tmp_path, capsys, argv, expected):
    one_line(capsys, [*RECORD, "--out", str(tmp_path / "d.zarr"), *argv.split()], expected)
    assert not (tmp_path / "d.zarr").exists()


@pytest.mark.parametrize("argv,expected", [
    ("--seed -5", "--seed must be 0 to 4294967295, got -5"),
    ("--cameras front,front", "--cameras: camera 'front' is named twice"),
    ("--video-dir {T}/v --video-camera nope", "--video-camera: unknown camera nope"),
    ("--video-dir {T}/v --video-camera front,wrist", "--video-camera takes one camera"),
    ("--device nope", "unknown device 'nope' (auto, cpu, cuda or cuda:N)"),
    ("--bindings b.yaml --no-wait", "--bindings, --no-wait: a person's settings, only with --intervene"),
    ("--envs 1000", "--envs 1000: more than 4 processes per CPU"),
])
def test_rollout_sweep(made, tmp_path, capsys, argv, expected):
    one_line(capsys, ["rollout", "--checkpoint", str(made[1]), "--episodes", "1", "--no-progress", "--no-log",
                      *argv.format(T=tmp_path).split()], expected)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,expected", [
    ("--seed -5", "--seed must be 0 to 4294967295, got -5"),
    ("--cameras front,front", "--cameras: camera 'front' is named twice"),
    ("--cameras front --image-size 100000", "--image-size must be 1 to 2048"),
    ("--set nope=1", "unknown config key 'nope'"),
    ("--set log_every=0", "log_every must be at least 1, got 0"),
    ("--noise nan", "--noise must be >= 0 and finite, got nan"),
    ("--compare-bc --compare-dart nan", "--compare-dart takes a noise > 0 and needs --compare-bc, got nan"),
    ("--envs 1000", "--envs 1000: more than 4 processes per CPU"),
    ("--beta 0.3", "--beta 0.3: only with --mixing tick"),
    ("--bindings b.yaml --flow rewind", "--bindings, --flow: only with a person as the expert"),
])
def test_dagger_sweep(tmp_path, capsys, argv, expected):
    one_line(capsys, ["dagger", "--task", "reach", "--expert", "scripted", "--out", str(tmp_path / "dg"),
                      "--no-progress", *argv.split()], expected)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,expected", [
    ("--seed -5", "--seed must be 0 to 4294967295, got -5"),
    ("--set seed=-5", "--seed must be 0 to 4294967295, got -5"),
    ("--policy diffusion --set rtc_train_max_delay=-1", "rtc_train_max_delay must be 0 to horizon - 1 = 15"),
    ("--policy act --set rtc_train_max_delay=20", "rtc_train_max_delay must be 0 to horizon - 1 = 19 actions, got 20"),
    ("--policy diffusion --set inputs=pixels", "unknown inputs 'pixels' (choose from state, vision)"),
    ("--policy mlp --set members=0", "members must be at least 1, got 0"),
    ("--policy diffusion --set inputs=vision", "inputs=vision needs a dataset with cameras"),
])
def test_train_sweep(made, tmp_path, capsys, argv, expected):
    one_line(capsys, ["train", "--dataset", str(made[0]), "--out", str(tmp_path / "run"), "--steps", "1",
                      *argv.split()], expected)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,expected", [
    ("learn --out {T}/t --device nope", "unknown device 'nope'"),
    ("learn --out {T}/t --jobs 100", "--jobs x --envs 100: more than 4 processes per CPU"),
    ("learn --out {T}/t --noise nan", "--noise must be >= 0 and finite"),
    ("learn --out {T}/t --tasks ,", "--tasks and --policies must each name one at least"),
    ("sim --demos 5 --steps 3", "--demos, --steps: for bench learn or chunking or vision only, not bench sim"),
    ("chunking --out {T}/t --jobs 2", "--jobs: for bench learn only, not bench chunking"),
    ("chunking --out {T}/t --delays 9", "--delays must be ticks from 0 to 8"),
    ("chunking --out {T}/t --delays soon", "--delays takes comma-separated whole numbers"),
    ("chunking --out {T}/t --policies mlp", "unknown task or policy mlp"),
    ("learn --out {T}/t --delays 1", "--delays: for bench chunking only, not bench learn"),
    ("chunking", "bench chunking needs --out DIR"),
    ("vision", "bench vision needs --out DIR"),
    ("vision --out {T}/t --policies mlp", "bench vision: unknown task or policy mlp"),
    ("vision --out {T}/t --disturb fog", "bench vision: unknown disturbance 'fog'"),
    ("vision --out {T}/t --jobs 2", "--jobs: for bench learn only, not bench vision"),
])
def test_bench_sweep(tmp_path, capsys, argv, expected):
    one_line(capsys, ["bench", *argv.format(T=tmp_path).split()], expected)
    assert list(tmp_path.iterdir()) == []


def test_browse_script_refuses_the_windows_options(made, tmp_path, capsys):
    script = tmp_path / "c.yaml"
    script.write_text("- {episode: 0, frame: 3, source: expert, ticks: 2}\n")
    one_line(capsys, ["browse", str(made[0]), "--script", str(script), "--out", str(tmp_path / "b.zarr"),
                      "--device", "gamepad"], "--device: for the window; a --script names each correction's source")
    assert [p.name for p in tmp_path.iterdir()] == ["c.yaml"]


@pytest.mark.parametrize("argv,expected", [
    (["launch", "--list", "quickstart"], "--list lists the shipped launch files: drop 'quickstart'"),
    (["dataset", "export-video", "D", "--episode", "0", "--out", "{T}/v.avi"], "writes a .mp4 file"),
    (["dataset", "export-video", "D", "--episode", "0", "--out", "{T}/v.mp4", "--fps", "0"],
     "--fps must be > 0 and at most 65535"),
    (["replay", "D", "--episode", "0", "--video", "{T}/v"], "--video {T}/v: writes a .mp4 file"),
    (["dataset", "info", "nope://x.zarr"], "nope://x.zarr: Protocol not known: nope"),
    (["dataset", "merge", "D", "D2", "-o", "nope://x.zarr"], "nope://x.zarr: Protocol not known: nope"),
])
def test_files_and_urls_sweep(made, tmp_path, tmp_path_factory, capsys, argv, expected):
    paths = {"D": str(made[0])}
    if "D2" in argv:  # a second dataset, outside tmp_path
        paths["D2"] = str(shutil.copytree(made[0], tmp_path_factory.mktemp("second") / "d2.zarr"))
    one_line(capsys, [paths.get(a, a.format(T=tmp_path)) for a in argv], expected.format(T=tmp_path))
    assert list(tmp_path.iterdir()) == []
