"""Observation kinds and shapes: read from the ``observations`` attribute, or by the old rule without it."""

from __future__ import annotations

import numpy as np
import pytest

from protege.datasets import Dataset, DatasetError, Episode, EpisodeWriter, Source

ATTRS = {"fps": 20, "robot": "arm", "task": "lift", "action_space": "ee_delta"}
OBSERVATIONS = [{"key": "state", "kind": "lowdim", "shape": [2]}, {"key": "ee_pos", "kind": "privileged", "shape": [3]}]


def _write(path, attrs, **data):
    with EpisodeWriter(path, attrs=attrs) as writer:
        writer.add_episode(Episode({"action": np.zeros((4, 7)), **data}, seed=0, success=True, source=Source.EXPERT))
    return Dataset(path)


def test_kinds_come_from_the_recorded_observations(tmp_path):
    ds = _write(tmp_path / "d.zarr", {**ATTRS, "observations": OBSERVATIONS},
                state=np.zeros((4, 2)), ee_pos=np.zeros((4, 3)), object_pos=np.zeros((4, 3)))
    assert ds.observation_kinds == {"state": "lowdim", "ee_pos": "privileged"}  # recorded order; object_pos unlisted


def test_datasets_without_the_attribute_keep_the_old_rule(tmp_path):
    ds = _write(tmp_path / "d.zarr", ATTRS, goal_pos=np.zeros((4, 3)), ee_pos=np.zeros((4, 3)), state=np.zeros((4, 2)),
                image_front=np.zeros((4, 8, 8, 3), np.uint8))
    assert ds.observation_kinds == {"ee_pos": "lowdim", "goal_pos": "privileged", "image_front": "image"}


def test_recorded_shapes_are_enforced_and_malformed_observations_refused(tmp_path):
    with pytest.raises(DatasetError, match="observation 'state' of shape \\(2,\\), the frame has \\(3,\\)"):
        _write(tmp_path / "a.zarr", {**ATTRS, "observations": OBSERVATIONS}, state=np.zeros((4, 3)))
    with pytest.raises(DatasetError, match="attrs observations must be a list"):
        _write(tmp_path / "b.zarr", {**ATTRS, "observations": [{"key": "state", "kind": "proprio", "shape": [2]}]})
