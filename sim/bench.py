"""`protege bench sim`: env steps per second with 0, 1 and 2 cameras, against raw mj_step."""

from __future__ import annotations

import time

import mujoco
import numpy as np

from protege.sim.env import ProtegeEnv
from protege.sim.spec import EnvSpec


def _env_rate(env: ProtegeEnv, steps: int, seed: int) -> float:
    env.reset(seed=seed)
    actions = np.random.default_rng(seed).uniform(env.action_space.low, env.action_space.high, (steps, env.action_space.shape[0]))
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action * 0.3)
        if terminated or truncated:
            env.reset(seed=seed)
    return steps / (time.perf_counter() - start)


def _raw_rate(env: ProtegeEnv, steps: int) -> float:
    """mj_step throughput for the same substeps per control step, on the same model."""
    model, data = env.model, env.data
    start = time.perf_counter()
    for _ in range(steps):
        mujoco.mj_step(model, data, nstep=env.n_substeps)
    return steps / (time.perf_counter() - start)


def run_bench(task: str = "lift", robot: str = "protege_arm", steps: int = 2000, repeats: int = 5) -> dict:
    """Median over ``repeats`` runs; ratios are taken within each run."""
    state_only = ProtegeEnv(EnvSpec.make(task, robot=robot, cameras=()))
    env_rates, raw_rates, ratios = [], [], []
    for r in range(repeats):
        env_rate = _env_rate(state_only, steps, seed=r)
        raw_rate = _raw_rate(state_only, steps)
        env_rates.append(env_rate)
        raw_rates.append(raw_rate)
        ratios.append(env_rate / raw_rate)
    result = {
        "task": task,
        "robot": robot,
        "control_hz": state_only.control_hz,
        "substeps": state_only.n_substeps,
        "state_only_steps_per_s": float(np.median(env_rates)),
        "raw_mj_step_equiv_per_s": float(np.median(raw_rates)),
        "env_to_raw_ratio": float(np.median(ratios)),
    }
    for cameras in (("front",), ("front", "wrist")):
        env = ProtegeEnv(EnvSpec.make(task, robot=robot, cameras=cameras, image_size=128))
        rate = float(np.median([_env_rate(env, steps // 10, seed=r) for r in range(repeats)]))
        env.close()
        result[f"cameras_{len(cameras)}_steps_per_s"] = rate
        result[f"cameras_{len(cameras)}_x_realtime"] = rate / state_only.control_hz
    result["state_only_x_realtime"] = result["state_only_steps_per_s"] / state_only.control_hz
    return result


def format_bench(result: dict) -> str:
    return "\n".join(
        [
            f"sim bench: {result['task']} on {result['robot']}, {result['control_hz']:.0f} Hz control, "
            f"{result['substeps']} physics substeps per step",
            f"  state only     {result['state_only_steps_per_s']:9.0f} steps/s  ({result['state_only_x_realtime']:.0f}x real time)",
            f"  raw mj_step    {result['raw_mj_step_equiv_per_s']:9.0f} steps/s  (same substeps)",
            f"  env / raw      {result['env_to_raw_ratio']:9.2f}",
            f"  1 camera       {result['cameras_1_steps_per_s']:9.0f} steps/s  ({result['cameras_1_x_realtime']:.1f}x real time, 128x128)",
            f"  2 cameras      {result['cameras_2_steps_per_s']:9.0f} steps/s  ({result['cameras_2_x_realtime']:.1f}x real time, 128x128)",
        ]
    )
