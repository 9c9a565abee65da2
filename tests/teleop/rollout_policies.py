"""Torch-free policies for rollout tests, importable by spawned worker processes."""

from __future__ import annotations

import numpy as np


class ReachObjectPolicy:
    """Moves the end effector toward the first object, gripper open: deterministic, never succeeds at lift."""

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        delta = np.clip((obs["object_pos"][:3] - obs["ee_pos"] + [0.0, 0.0, 0.05]) / 0.02, -1.0, 1.0) * 0.02
        return np.concatenate([delta, np.zeros(3), [0.0]])


def make_reach_policy() -> ReachObjectPolicy:
    return ReachObjectPolicy()
