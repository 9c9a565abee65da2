"""Bad input ends in a one-line error and leaves datasets untouched."""

import argparse
import hashlib
from pathlib import Path

import pytest

from protege.datasets import EpisodeWriter
from protege.launch import cmd_record
from protege.sim import IncompatibleEnvError
from protege.teleop.devices import load_bindings
from protege.teleop.errors import TeleopError


def record(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cmd_record.add_arguments(parser)
    return cmd_record.run(parser.parse_args(list(argv)))


def digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode() + f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("keyboard:\n  keys: {w: forward, fnord: back}\n", "unknown key name 'fnord'"),
        ("keyboard:\n  keys: {w: +sideways}\n", "unknown target '+sideways'"),
        ("gamepad:\n  xbox: {buttons: {0: launch}}\n", "unknown target 'launch'"),
        ("keyboard:\n  speed: {translate: 3}\n", "fraction in (0, 1]"),
        ("mouse: {}\n", "unknown section 'mouse'"),
    ],
)
def test_bad_bindings_file_is_one_line(tmp_path, text, expected):
    path = tmp_path / "bindings.yaml"
    path.write_text(text)
    with pytest.raises(TeleopError) as err:
        load_bindings(path)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_bindings_file_overrides_defaults(tmp_path):
    import pygame

    path = tmp_path / "bindings.yaml"
    path.write_text("keyboard:\n  keys: {up: forward, down: back, space: gripper}\n  speed: {rotate: 0.2}\n")
    keyboard = load_bindings(path).keyboard
    assert set(keyboard.keys) == {pygame.K_UP, pygame.K_DOWN, pygame.K_SPACE}
    assert (keyboard.speed.translate, keyboard.speed.rotate) == (0.5, 0.2)


def test_bad_bindings_via_command_writes_nothing(tmp_path):
    path = tmp_path / "bindings.yaml"
    path.write_text("keyboard:\n  keys: {fnord: forward}\n")
    out = tmp_path / "demos.zarr"
    with pytest.raises(TeleopError):
        record("--task", "lift", "--device", "keyboard", "--bindings", str(path), "--out", str(out))
    assert not out.exists()


@pytest.fixture
def reach_dataset(tmp_path):
    out = tmp_path / "reach.zarr"
    assert record("--task", "reach", "--expert", "scripted", "--episodes", "1", "--cameras", "",
                  "--no-progress", "--out", str(out)) == 0
    return out


@pytest.mark.parametrize("who", [("--expert", "scripted"), ("--device", "keyboard")])
def test_dataset_of_another_task_is_refused_untouched(reach_dataset, who):
    before = digest(reach_dataset)
    with pytest.raises(IncompatibleEnvError) as err:
        record("--task", "lift", *who, "--episodes", "1", "--cameras", "", "--out", str(reach_dataset))
    assert "holds episodes of task 'reach', not 'lift'" in str(err.value) and "\n" not in str(err.value)
    assert digest(reach_dataset) == before


def test_dataset_with_other_cameras_is_refused_untouched(reach_dataset):
    before = digest(reach_dataset)
    with pytest.raises(IncompatibleEnvError) as err:
        record("--task", "reach", "--expert", "scripted", "--episodes", "1", "--cameras", "front",
               "--out", str(reach_dataset))
    assert "holds episodes of cameras (), not ('front',)" in str(err.value) and "\n" not in str(err.value)
    assert digest(reach_dataset) == before


def test_dataset_of_another_robot_is_refused(tmp_path):
    out = tmp_path / "other.zarr"
    EpisodeWriter(out, attrs={"fps": 20.0, "robot": "panda", "task": "lift", "action_space": "ee_delta"}).close()
    with pytest.raises(IncompatibleEnvError, match="holds episodes of robot 'panda', not 'protege_arm'"):
        record("--task", "lift", "--expert", "scripted", "--cameras", "", "--out", str(out))
