"""Onboarding an arm: what the spec loader measures, what the tasks need, how the slot_push expert fits the
gripper, and the reasons check-robot finds for failed episodes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from protege.sim import EnvSpec, ProtegeEnv, load_robot_spec
from protege.sim.errors import UnsuitableRobotError
from protege.sim.experts import check_expert, make_expert
from protege.sim.onboarding import BLOCKED, JOINT_LIMITS, NO_GRASP, OUT_OF_REACH, check_seeds, run_episode

WIDE = Path(__file__).parents[1] / "robots" / "wide_gripper" / "wide_gripper.yaml"


def test_the_loader_measures_the_gripper_and_the_reach() -> None:
    arm = load_robot_spec("protege_arm").geometry
    assert arm.gripper is not None and arm.gripper.fingers == ("finger_left", "finger_right")
    # Each finger is a 8 x 1.4 x 2.4 cm box sliding 4 cm; the ee point sits 2 cm above the fingertips.
    assert (arm.gripper.width_open, arm.gripper.width_closed) == pytest.approx((0.108, 0.028), abs=1e-4)
    assert (arm.gripper.thickness, arm.gripper.finger_length, arm.gripper.tip_depth) == pytest.approx(
        (0.024, 0.08, 0.02), abs=1e-4)
    assert arm.shoulder == pytest.approx((0.0, 0.0, 0.06))
    assert arm.reach == pytest.approx(0.1 + 0.3 + 0.14 + 0.14 + 0.06 + 0.115)
    wide = load_robot_spec(WIDE).geometry.gripper
    assert wide is not None and (wide.width_closed, wide.thickness) == pytest.approx((0.08, 0.08), abs=1e-4)


def test_slot_push_refuses_the_wide_gripper_in_one_line_and_the_other_tasks_take_it() -> None:
    with pytest.raises(UnsuitableRobotError) as refused:
        check_expert(EnvSpec.make("slot_push", str(WIDE), cameras=()))
    assert str(refused.value) == (
        "robot wide_gripper cannot do slot_push: its closed gripper is 8.0 cm wide and 8.0 cm thick, wider either "
        "way than the 6.0 cm slot it must push through (at most 5.0 cm)")
    assert pickle.loads(pickle.dumps(refused.value)).reason == refused.value.reason  # crosses process boundaries
    with pytest.raises(UnsuitableRobotError):
        make_expert(ProtegeEnv(EnvSpec.make("slot_push", str(WIDE), cameras=())))
    for task in ("reach", "push", "lift", "stack"):
        check_expert(EnvSpec.make(task, str(WIDE), cameras=()))


def test_a_workspace_beyond_the_arm_s_reach_is_refused(copy_arm, tmp_path: Path) -> None:
    path = copy_arm(tmp_path, "far_workspace")
    path.write_text(path.read_text().replace("center: [0.42, 0.0]", "center: [1.2, 0.0]"))
    with pytest.raises(UnsuitableRobotError, match=r"lift: its workspace corner \(1\.30, -0\.16\) is 1\.31 m from its "
                                                   r"shoulder, beyond its 0\.85 m reach"):
        check_expert(EnvSpec.make("lift", str(path), cameras=()))


def test_the_slot_push_expert_turns_thick_fingers_to_push_with_the_closed_width(copy_arm, tmp_path: Path) -> None:
    """Fingers 8 cm thick across the closing axis do not pass the slot; closed, they are 2.8 cm wide along it:
    the expert pushes with the closing axis across the push, and gets the block through."""
    path = copy_arm(tmp_path, "thick_fingers", lambda mjcf: mjcf.replace('size="0.04 0.007 0.012"',
                                                                        'size="0.04 0.007 0.04"'))
    env = ProtegeEnv(EnvSpec.make("slot_push", str(path), cameras=()), terminate_on_success=False)
    expert = make_expert(env)
    assert expert.push_heading == pytest.approx(np.pi / 2)
    assert (expert.pusher_half, expert.pusher_side) == pytest.approx((0.04, 0.014), abs=1e-4)
    assert all(run_episode(env, expert, seed).success for seed in range(3))
    assert make_expert(ProtegeEnv(EnvSpec.make("slot_push", cameras=()))).push_heading == 0.0  # the built-in arm


def test_fingers_that_stop_short_of_the_cube_are_named(copy_arm, tmp_path: Path) -> None:
    """Fingers whose travel ends 5 cm apart close around the 4 cm cube and never touch it."""
    path = copy_arm(tmp_path, "short_travel", lambda mjcf: mjcf.replace('range="0 0.04"', 'range="0.025 0.04"'))
    checks = check_seeds(EnvSpec.make("lift", str(path), cameras=()), [0, 1])
    assert [(c.success, c.reason) for c in checks] == [(False, NO_GRASP)] * 2


def test_a_joint_at_its_limit_is_named(copy_arm, tmp_path: Path) -> None:
    """A base joint that turns 0.05 rad each way leaves the arm short of targets off its centre line."""
    narrow = 'joint1" axis="0 0 1" range="-0.05 0.05"'
    path = copy_arm(tmp_path, "stiff_base", lambda mjcf: mjcf.replace('joint1" axis="0 0 1" range="-2.9 2.9"', narrow))
    env = ProtegeEnv(EnvSpec.make("reach", str(path), cameras=()), terminate_on_success=False)
    expert = make_expert(env)
    env.task.reset = lambda data, rng: data.mocap_pos.__setitem__(0, [0.42, 0.3, 0.1])  # well off the centre line
    check = run_episode(env, expert, 0)
    assert (check.success, check.reason) == (False, f"{JOINT_LIMITS} (joint1)")


def test_a_target_beyond_the_reach_is_named() -> None:
    env = ProtegeEnv(EnvSpec.make("reach", cameras=()), terminate_on_success=False)
    expert = make_expert(env)
    env.task.reset = lambda data, rng: data.mocap_pos.__setitem__(0, [1.2, 0.0, 0.3])
    check = run_episode(env, expert, 0)
    assert (check.success, check.reason) == (False, OUT_OF_REACH)


def test_a_contact_that_holds_the_arm_back_is_named() -> None:
    env = ProtegeEnv(EnvSpec.make("reach", cameras=()), terminate_on_success=False)
    expert = make_expert(env)
    env.task.reset = lambda data, rng: data.mocap_pos.__setitem__(0, [0.42, 0.0, -0.05])  # under the table top
    check = run_episode(env, expert, 0)
    assert (check.success, check.reason) == (False, f"{BLOCKED} table")
