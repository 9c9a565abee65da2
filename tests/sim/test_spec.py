"""EnvSpec: one JSON form for datasets and checkpoints, old attributes still read, arms told apart by hash."""

from __future__ import annotations

import dataclasses

import pytest

from protege.sim import EnvSpec, IncompatibleEnvError, ProtegeEnv, SimError
from protege.sim.spec import check_compatible


def problem(expected: EnvSpec, given: EnvSpec, images: bool = False) -> str | None:
    """check_compatible's complaint about ``given`` (without its context), None if it has none."""
    try:
        check_compatible(expected, given, "trained on", images=images)
    except IncompatibleEnvError as exc:
        return str(exc).removeprefix("trained on ")
    return None


def test_the_spec_makes_the_env_and_round_trips_through_attrs():
    spec = EnvSpec.make("push", cameras=("front",), image_size=(48, 64), control_hz=10.0, action_space="joint")
    env = ProtegeEnv(spec)
    assert env.env_spec == spec and env.n_substeps == spec.substeps == 50
    assert spec.action_scale == tuple(env.action_space.high)
    assert env.observation_space["image_front"].shape == (48, 64, 3)
    assert EnvSpec.from_attrs(spec.to_attrs()) == spec
    assert spec.to_attrs()["fps"] == 10.0 and spec.to_attrs()["image_size"] == [48, 64]


def test_older_attributes_are_read():
    old = {"fps": 20, "robot": "protege_arm", "task": "lift", "action_space": "ee_delta", "cameras": ["front"],
           "image_size": 96, "action_scale": [0.02] * 3 + [0.1] * 3 + [1.0]}
    spec = EnvSpec.from_attrs(old)
    assert spec.image_size == (96, 96) and spec.substeps == 25 and spec.robot_source == "protege_arm"
    assert spec.robot_hash == "" and problem(spec, EnvSpec.make("lift")) is None  # an unknown hash is not compared
    assert ProtegeEnv(spec).env_spec.robot_hash == EnvSpec.make("lift").robot_hash
    with pytest.raises(SimError, match="env attributes lack fps"):
        EnvSpec.from_attrs({"task": "lift", "robot": "protege_arm"})
    with pytest.raises(SimError, match="unknown action space 'torque'"):
        EnvSpec.from_attrs({**old, "action_space": "torque"})


def test_a_copied_arm_is_the_same_arm_and_an_edited_one_is_refused(tmp_path, copy_arm):
    builtin = EnvSpec.make("lift", cameras=())
    same = EnvSpec.make("lift", robot=str(copy_arm(tmp_path / "same")), cameras=())
    assert same.robot == "protege_arm" and same.robot_source == str(tmp_path / "same" / "protege_arm.yaml")
    assert problem(builtin, same) is None
    other_path = copy_arm(tmp_path / "other", mjcf_edit=lambda xml: xml.replace('pos="0 0 0.3"', 'pos="0 0 0.32"', 1))
    other = EnvSpec.make("lift", robot=str(other_path), cameras=())
    assert problem(builtin, other).startswith("another arm named 'protege_arm'")
    with pytest.raises(SimError, match="is another arm than the recorded 'protege_arm'"):
        ProtegeEnv(builtin.with_robot(str(other_path)))
    with pytest.raises(SimError, match="is 'protege_arm', not the recorded 'panda'"):
        dataclasses.replace(builtin, robot="panda", robot_hash="").load_robot()


def test_the_compatibility_check_names_action_space_rate_and_with_images_the_cameras():
    spec = EnvSpec.make("lift", cameras=())
    joint, slow = (EnvSpec.make("lift", cameras=(), action_space="joint"),
                   EnvSpec.make("lift", cameras=(), control_hz=10))
    assert problem(spec, joint) == "action space 'ee_delta', not 'joint'"
    assert problem(spec, slow) == "rate 20 Hz with 25 substeps, not 10 Hz with 50"
    assert problem(spec, EnvSpec.make("reach", cameras=())) == "task 'lift', not 'reach'"
    assert problem(spec, dataclasses.replace(spec, cameras=("front",))) is None  # observations are checked by shape
    assert problem(spec, dataclasses.replace(spec, cameras=("front",)), images=True) == "cameras (), not ('front',)"
    front = EnvSpec.make("lift", cameras=("front",))
    assert problem(front, EnvSpec.make("lift", cameras=("front",), image_size=64), images=True) == \
        "image size (128, 128), not (64, 64)"
    assert problem(spec, dataclasses.replace(spec, image_size=(64, 64)), images=True) is None  # no camera, no size


def test_observations_are_the_envs_with_kind_and_shape():
    spec = EnvSpec.make("push", cameras=("front",), image_size=(48, 64))
    env = ProtegeEnv(spec, terminate_on_success=False)
    obs, _ = env.reset(seed=0)
    assert [key for key, _, _ in spec.observations] == list(obs)  # every key, in the env's order
    assert {key: shape for key, _, shape in spec.observations} == {key: value.shape for key, value in obs.items()}
    kinds = {key: kind for key, kind, _ in spec.observations}
    assert kinds == {"joint_pos": "lowdim", "joint_vel": "lowdim", "ee_pos": "lowdim", "ee_quat": "lowdim",
                     "gripper": "lowdim", "object_pos": "privileged", "object_quat": "privileged",
                     "goal_pos": "privileged", "image_front": "image"}
    assert spec.to_attrs()["observations"][-1] == {"key": "image_front", "kind": "image", "shape": [48, 64, 3]}
    assert EnvSpec.from_attrs({k: v for k, v in spec.to_attrs().items() if k != "observations"}).observations == ()
    fewer = dataclasses.replace(spec, task="lift", cameras=())  # as rollout --task/--cameras do
    assert [key for key, _, _ in fewer.observations][-2:] == ["object_pos", "object_quat"]


def test_the_env_names_its_images_as_the_dataset_format_does():
    """Two leaves name images (the layers keep sim and datasets apart): they must agree."""
    from protege.datasets.schema import IMAGE_PREFIX, is_image_key
    from protege.sim.spec import camera_of, image_key

    assert image_key("wrist") == IMAGE_PREFIX + "wrist" and is_image_key(image_key("wrist"))
    assert camera_of(image_key("front")) == "front" and camera_of("ee_pos") is None
