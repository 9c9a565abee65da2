"""The env step's fast path (the first substep reusing the last mj_forward, the direct IK) simulates exactly what
plain mj_step with mink's IK does, and the observations it hands out stay as they were handed out."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

import protege.sim  # noqa: F401  (picks the headless GL backend before mujoco loads)
from protege.sim import EnvSpec, ProtegeEnv

STEPS = 60


class _PlainEnv(ProtegeEnv):
    """The step as it was: a full mj_step for every substep, then mj_forward."""

    def _advance(self) -> None:
        mujoco.mj_step(self.model, self.data, nstep=self.n_substeps)
        mujoco.mj_forward(self.model, self.data)


@pytest.mark.parametrize("task", ["lift", "stack", "slot_push"])
def test_fast_step_matches_plain_mj_step_and_mink(task: str) -> None:
    spec = EnvSpec.make(task, cameras=())
    fast, plain = ProtegeEnv(spec), _PlainEnv(spec, ik="mink")
    rng = np.random.default_rng(7)
    for env in (fast, plain):
        env.reset(seed=3)
    for t in range(STEPS):
        action = rng.uniform(fast.action_space.low, fast.action_space.high)
        a, b = fast.step(action), plain.step(action)
        np.testing.assert_array_equal(fast.get_state(), plain.get_state(), err_msg=f"step {t}")
        for key in a[0]:
            np.testing.assert_array_equal(a[0][key], b[0][key], err_msg=f"{key} at step {t}")
        assert a[1:] == b[1:]
        if t == STEPS // 2:  # a caller moving the state between steps gets a plain mj_step
            for env in (fast, plain):
                env.data.qvel[env.arm_dof_adr] += 0.1
                mujoco.mj_forward(env.model, env.data)


def test_observations_handed_out_do_not_change() -> None:
    env = ProtegeEnv(EnvSpec.make("lift", cameras=()))
    obs, _ = env.reset(seed=0)
    kept = {key: value.copy() for key, value in obs.items()}
    for _ in range(3):
        env.step(env.action_space.high)
    for key, value in kept.items():
        np.testing.assert_array_equal(obs[key], value)


def test_set_state_observes_what_the_step_did() -> None:
    env = ProtegeEnv(EnvSpec.make("stack", cameras=()))
    env.reset(seed=1)
    rng = np.random.default_rng(1)
    for _ in range(20):
        obs, *_ = env.step(rng.uniform(env.action_space.low, env.action_space.high))
    state, ncon = env.get_state(), env.data.ncon
    env.set_state(state)
    again, _ = env.observe()
    assert env.data.ncon == ncon
    for key in obs:
        np.testing.assert_array_equal(obs[key], again[key])
