"""Robot specs (built-in arm, Menagerie Panda and SO-ARM100) and every bad input, in-process and on the CLI."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from protege.sim import EnvSpec, ProtegeEnv, SimError, load_robot_spec
from protege.sim.robot import builtin_spec_path, menagerie_dir

needs_menagerie = pytest.mark.skipif(menagerie_dir() is None, reason="Menagerie robots not found (PROTEGE_MENAGERIE)")


@needs_menagerie
@pytest.mark.parametrize("robot,dof", [("panda", 7), ("so_arm100", 5)])
def test_menagerie_arms_load_and_move_through_their_spec(robot: str, dof: int) -> None:
    env = ProtegeEnv(EnvSpec.make("lift", robot=robot, cameras=()))
    obs, _ = env.reset(seed=0)
    assert obs["joint_pos"].shape == (dof,)
    start = obs["ee_pos"].copy()
    for _ in range(8):
        obs, *_ = env.step(np.array([0.0, 0.0, 0.01, 0, 0, 0, 0]))
    for _ in range(5):
        obs, *_ = env.step(np.zeros(7))
    assert obs["ee_pos"][2] - start[2] == pytest.approx(0.08, abs=0.015)


@needs_menagerie
@pytest.mark.parametrize("robot", ["panda", "so_arm100"])
def test_menagerie_arms_grasp_and_lift_a_cube(robot: str) -> None:
    """Drop the open gripper around the cube, close it, lift: the cube comes along."""
    env = ProtegeEnv(EnvSpec.make("lift", robot=robot, cameras=()), terminate_on_success=False)
    env.reset(seed=0)
    task, data = env.task, env.data
    ee, rot = env.ee_pose()
    cube = ee - rot[:, 2] * 0.0 + np.array([0, 0, 0])
    cube[2] = 0.02
    task.set_object_pose(data, 0, cube, yaw=np.arctan2(rot[1, 0], rot[0, 0]))
    env.set_state(env.get_state())  # re-run forward with the moved cube
    for _ in range(60):  # descend until the fingertips straddle the cube
        pos, _ = env.ee_pose()
        dz = np.clip(0.02 - pos[2], -0.01, 0.01)
        env.step(np.array([0, 0, dz, 0, 0, 0, 0]))
    for _ in range(15):
        env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]))
    for _ in range(25):
        env.step(np.array([0, 0, 0.01, 0, 0, 0, 1.0]))
    assert task.object_pos(data)[2] > 0.08
    assert task.is_success(data)


@needs_menagerie
@pytest.mark.parametrize("robot", ["panda", "so_arm100"])
def test_menagerie_specs_with_swapped_gripper_values_are_refused(tmp_path: Path, robot: str) -> None:
    raw = yaml.safe_load(builtin_spec_path(robot).read_text())
    raw["gripper"]["open"], raw["gripper"]["closed"] = raw["gripper"]["closed"], raw["gripper"]["open"]
    path = tmp_path / f"{robot}.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SimError, match=f"robot {robot}: the gripper closes at open=.*; swap open and closed"):
        load_robot_spec(path)


def test_unknown_task_and_robot_and_camera_are_named() -> None:
    with pytest.raises(SimError, match="unknown task 'fly'"):
        ProtegeEnv(EnvSpec.make("fly"))
    with pytest.raises(SimError, match="unknown robot 'r2d2'"):
        ProtegeEnv(EnvSpec.make("lift", robot="r2d2"))
    with pytest.raises(SimError, match="unknown camera nose"):
        ProtegeEnv(EnvSpec.make("lift", cameras=("front", "nose")))
    with pytest.raises(SimError, match="unknown action space"):
        ProtegeEnv(EnvSpec.make("lift", cameras=(), action_space="torque"))


def _write_spec(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(builtin_spec_path("protege_arm").read_text())
    raw["mjcf"] = str(builtin_spec_path("protege_arm").parent / raw["mjcf"])
    raw.update(changes)
    path = tmp_path / "arm.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_spec_file_loads_an_arm_without_code(tmp_path: Path) -> None:
    spec = load_robot_spec(_write_spec(tmp_path, name="my_arm"))
    assert spec.name == "my_arm" and spec.dof == 6


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"arm_joints": ["joint1", "joint2", "joint3", "joint4", "joint5", "elbow"]}, "joint 'elbow'"),
        ({"arm_actuators": ["joint1", "joint2", "joint3", "joint4", "joint5", "motor9"]}, "actuator 'motor9'"),
        ({"ee": {"site": "tool_tip"}}, "site 'tool_tip'"),
        ({"gripper": {"actuator": "claw", "open": 0.04, "closed": 0.0}}, "actuator 'claw'"),
        ({"home_keyframe": "ready"}, "keyframe 'ready'"),
        ({"mjcf": "/nonexistent/arm.xml"}, "MJCF file not found"),
        ({"mjcf": "${NO_SUCH_VARIABLE_X}/arm.xml"}, "NO_SUCH_VARIABLE_X is not set"),
        ({"colour": "red"}, "unknown key"),
        (
            {"gripper": {"actuator": "gripper", "open": 0.0, "closed": 0.04}},
            r"the gripper closes at open=0 and opens at closed=0.04 .*; swap open and closed in .*arm.yaml$",
        ),
        (
            {"workspace": {"center": [0.42], "half_extent": [0.1, 0.16]}},
            r"workspace.center must be a list of 2 numbers",
        ),
        (
            {"workspace": {"center": 5, "half_extent": [0.1, 0.16]}},
            r"workspace.center must be a list of 2 numbers, got 5",
        ),
        ({"gripper": {"actuator": "gripper", "open": "wide", "closed": 0.0}}, r"gripper.open must be a number"),
        ({"gripper": {"actuator": "gripper", "open": 0.04}}, r"arm.yaml: gripper lacks closed$"),
        ({"arm_joints": 6}, r"arm_joints must be a list of names, got 6"),
        ({"ee": {"site": "ee", "pos": [0, 0]}}, r"ee.pos must be a list of 3 numbers"),
        ({"wrist_camera": {"fovy": "wide"}}, r"wrist_camera.fovy must be a number"),
    ],
)
def test_malformed_specs_are_named(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(SimError, match=message):
        load_robot_spec(_write_spec(tmp_path, **changes))


def test_missing_spec_file_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="not found"):
        load_robot_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(SimError, match="not valid YAML"):
        load_robot_spec(bad)


@pytest.mark.parametrize(
    "args,message",
    [
        (["sim", "view", "--task", "fly", "--frames", "1"], "unknown task 'fly'"),
        (["sim", "view", "--robot", "r2d2", "--frames", "1"], "unknown robot 'r2d2'"),
        (["sim", "view", "--cameras", "nose", "--frames", "1"], "unknown camera nose"),
    ],
)
def test_cli_bad_input_is_one_line_and_nonzero(args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "protege.launch.cli", *args], capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "SDL_VIDEODRIVER": "dummy"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
