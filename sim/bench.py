"""`protege bench sim`: env steps per second with 0, 1 and 2 cameras, each beside its limit measured in the
same run on the same trajectories.

The limit of a state-only step is raw ``mj_step`` for the same substeps; the limit of a step with cameras is
raw ``mj_step`` plus MuJoCo's own ``mujoco.Renderer`` drawing the same cameras (same size and render flags).
Both replay the controls the env applied, from the same states, so they simulate exactly the env's
trajectories (contacts included). Env and limit take turns every few steps, and every figure is the median
over the repeats; the ratios are taken within each repeat, which keeps them honest on a shared, noisy
machine.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import mujoco
import numpy as np

from protege.sim.env import STATE_SPEC, ProtegeEnv
from protege.sim.spec import EnvSpec

BLOCK = 20  # control steps run by the env, then by the limit, in turn


def _actions(env: ProtegeEnv, steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low, high = env.action_space.low, env.action_space.high
    return rng.uniform(low, high, (steps, env.action_space.shape[0])) * 0.3


def _interleaved(env: ProtegeEnv, actions: np.ndarray, seed: int, renderer: mujoco.Renderer | None = None,
                 cameras: Sequence[str] = (), option: mujoco.MjvOption | None = None) -> tuple[float, float]:
    """Seconds of ``env`` stepping through ``actions`` (resetting with ``seed`` when an episode ends), and
    seconds of the limit replaying the controls the env applied, from the same states, on a data of its own:
    bare ``mj_step`` for the same substeps (with ``renderer``: then ``mj_forward`` and the cameras drawn).
    They take turns every :data:`BLOCK` steps, so both see the same load on a shared machine."""
    model, raw = env.model, mujoco.MjData(env.model)
    env.reset(seed=seed)
    start = env.get_state()
    env_s = raw_s = 0.0
    for first in range(0, len(actions), BLOCK):
        ctrls: list[np.ndarray] = []
        restarts: dict[int, np.ndarray] = {0: start}  # where the limit restarts from, by position in ctrls
        t = time.perf_counter()
        for action in actions[first : first + BLOCK]:
            _, _, terminated, truncated, _ = env.step(action)
            ctrls.append(env.data.ctrl.copy())
            if terminated or truncated:
                env.reset(seed=seed)
                restarts[len(ctrls)] = env.get_state()
        env_s += time.perf_counter() - t
        for i, ctrl in enumerate(ctrls):
            if i in restarts:
                mujoco.mj_setState(model, raw, restarts[i], STATE_SPEC)
                mujoco.mj_forward(model, raw)
            t = time.perf_counter()
            raw.ctrl[:] = ctrl
            mujoco.mj_step(model, raw, nstep=env.n_substeps)
            if renderer is not None:
                mujoco.mj_forward(model, raw)  # the scene of the new state, as the env draws it
                for camera in cameras:
                    renderer.update_scene(raw, camera=camera, scene_option=option)
                    renderer.render()
            raw_s += time.perf_counter() - t
        start = restarts.get(len(ctrls), env.get_state())
    return env_s, raw_s


def _plain_renderer(env: ProtegeEnv) -> tuple[mujoco.Renderer, mujoco.MjvOption]:
    """``mujoco.Renderer`` at the env's image size with the env's render flags (shadows, reflections and
    skybox off; helper geoms and sites hidden)."""
    height, width = env.env_spec.image_size
    renderer = mujoco.Renderer(env.model, height, width)
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX):
        renderer.scene.flags[flag] = False
    option = mujoco.MjvOption()
    option.geomgroup[4] = 0
    option.sitegroup[4] = 0
    return renderer, option


def _pair(env: ProtegeEnv, steps: int, repeats: int, cameras: Sequence[str] = ()) -> dict[str, float]:
    """Median env rate, median limit rate and median ratio over ``repeats`` interleaved runs."""
    renderer, option = _plain_renderer(env) if cameras else (None, None)
    env_rates, raw_rates, ratios = [], [], []
    try:
        for r in range(repeats):
            env_s, raw_s = _interleaved(env, _actions(env, steps, seed=r), r, renderer, cameras, option)
            env_rates.append(steps / env_s)
            raw_rates.append(steps / raw_s)
            ratios.append(raw_s / env_s)
    finally:
        if renderer is not None:
            renderer.close()
    return {"env": float(np.median(env_rates)), "limit": float(np.median(raw_rates)), "ratio": float(np.median(ratios))}


def run_bench(task: str = "lift", robot: str = "protege_arm", steps: int = 2000, repeats: int = 5) -> dict:
    """Figures for ``task`` on ``robot``; medians over ``repeats`` runs, ratios taken within each run."""
    state_only = ProtegeEnv(EnvSpec.make(task, robot=robot, cameras=()))
    figures = _pair(state_only, steps, repeats)
    result = {
        "task": task,
        "robot": robot,
        "control_hz": state_only.control_hz,
        "substeps": state_only.n_substeps,
        "state_only_steps_per_s": figures["env"],
        "raw_mj_step_equiv_per_s": figures["limit"],
        "env_to_raw_ratio": figures["ratio"],
    }
    for cameras in (("front",), ("front", "wrist")):
        env = ProtegeEnv(EnvSpec.make(task, robot=robot, cameras=cameras, image_size=128))
        env.reset(seed=0)
        env.step(np.zeros(env.action_space.shape))  # the GL context and the first frame outside the timing
        figures = _pair(env, max(steps // 10, 1), repeats, cameras)
        env.close()
        n = len(cameras)
        result[f"cameras_{n}_steps_per_s"] = figures["env"]
        result[f"cameras_{n}_x_realtime"] = figures["env"] / state_only.control_hz
        result[f"cameras_{n}_limit_steps_per_s"] = figures["limit"]
        result[f"cameras_{n}_to_limit_ratio"] = figures["ratio"]
    result["state_only_x_realtime"] = result["state_only_steps_per_s"] / state_only.control_hz
    # Each camera's cost per step, from the state-only and camera figures of this run.
    per_camera = 1e3 * (1 / result["cameras_2_steps_per_s"] - 1 / result["state_only_steps_per_s"]) / 2
    result["ms_per_camera"] = per_camera
    return result


def format_bench(result: dict) -> str:
    hz = result["control_hz"]
    lines = [
        (f"sim bench: {result['task']} on {result['robot']}, {hz:.0f} Hz control, "
         f"{result['substeps']} physics substeps per step; each figure beside its limit, measured in this run"),
        (f"  state only     {result['state_only_steps_per_s']:9.0f} steps/s  "
         f"({result['state_only_x_realtime']:.0f}x real time)"),
        f"    raw mj_step  {result['raw_mj_step_equiv_per_s']:9.0f} steps/s  (same substeps, same trajectories)",
        f"    env / raw    {result['env_to_raw_ratio']:9.2f}",
    ]
    for n in (1, 2):
        lines += [
            (f"  {n} camera{'s' if n > 1 else ' '}      {result[f'cameras_{n}_steps_per_s']:9.0f} steps/s  "
             f"({result[f'cameras_{n}_x_realtime']:.1f}x real time, 128x128)"),
            (f"    limit        {result[f'cameras_{n}_limit_steps_per_s']:9.0f} steps/s  "
             "(raw mj_step + mujoco.Renderer, same cameras and flags)"),
            f"    env / limit  {result[f'cameras_{n}_to_limit_ratio']:9.2f}",
        ]
    lines.append(f"  per camera     {result['ms_per_camera']:9.2f} ms per step (2 cameras against state only)")
    return "\n".join(lines)
