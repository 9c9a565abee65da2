"""Onboarding an arm: run each task's scripted expert on a few seeds, and say why the failures failed.

:func:`check_seeds` runs one task's episodes in any process (the worker behind `protege sim
check-robot`, :func:`protege.teleop.runtime.robot_check.check_robot`); a task whose needs the arm
does not meet is refused before any episode (:func:`refusal`). A failed episode gets the first
reason that fits, in this order: the object lost (``info["object_lost"]``); the end effector held
short of its expert's target, that target beyond the arm's reach (a target out of reach), a joint at
its limit (joint limits hit), the arm touching something meanwhile (the arm blocked by it, named), or,
making no progress, none of these (IK not converging); on a task done by a grasp, the
gripper closed and never held the object (the gripper not closing on the object); else time out.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from protege.sim.env import ProtegeEnv
from protege.sim.errors import UnsuitableRobotError
from protege.sim.experts import ScriptedExpert, check_expert, make_expert
from protege.sim.robot import RobotSpec
from protege.sim.spec import EnvSpec
from protege.sim.tasks import TASKS

SUCCESS_HOLD = 10  # ticks success must hold to end an episode, as `protege record` ends a demo
STALL_TICKS = 20  # an end effector farther than STALL_FAR from its expert's target over this many last ticks ...
STALL_FAR = 0.025  # (metres) was held back: by the target's distance, a joint limit, a contact or, if it came
STALL_MOVE = 0.01  # less than this much closer, the IK
AT_LIMIT = 0.02  # this close to a joint's limit (radians, or metres) is at it

OBJECT_LOST = "the object lost"
JOINT_LIMITS = "joint limits hit"
OUT_OF_REACH = "a target out of reach"
BLOCKED = "the arm blocked by"
IK_STALLED = "IK not converging"
NO_GRASP = "the gripper not closing on the object"
TIME_OUT = "time out"


@dataclass(frozen=True)
class EpisodeCheck:
    """One expert episode: its seed, outcome, length in control ticks and, if it failed, why."""

    seed: int
    success: bool
    ticks: int
    reason: str | None = None


@dataclass(frozen=True)
class TaskCheck:
    """One task's row: episodes run, successes, mean episode length, each failure reason with the seeds
    it failed (most frequent first) or, where the task or its expert refuses the arm, why (no episode ran)."""

    task: str
    episodes: int
    successes: int
    mean_seconds: float
    reasons: tuple[tuple[str, tuple[int, ...]], ...] = ()
    refused: str | None = None

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "episodes": self.episodes, "successes": self.successes,
                "success_rate": round(self.success_rate, 4), "mean_length_s": round(self.mean_seconds, 3),
                "reasons": {reason: len(seeds) for reason, seeds in self.reasons},
                "failed_seeds": {reason: list(seeds) for reason, seeds in self.reasons}, "refused": self.refused}


def refusal(spec: EnvSpec) -> str | None:
    """Why ``spec``'s task or its expert refuses the arm (:class:`UnsuitableRobotError`'s reason), None if
    neither does."""
    try:
        check_expert(spec)
    except UnsuitableRobotError as exc:
        return exc.reason
    return None


@functools.lru_cache(maxsize=len(TASKS))
def _env(spec: EnvSpec) -> ProtegeEnv:
    """One env per task and worker process: building one costs more than an episode."""
    return ProtegeEnv(spec, terminate_on_success=False)


def check_seeds(spec: EnvSpec, seeds: Sequence[int]) -> list[EpisodeCheck]:
    """Run the noise-free scripted expert of ``spec``'s task on each seed."""
    env = _env(spec)
    expert = make_expert(env)
    return [run_episode(env, expert, seed) for seed in seeds]


def run_episode(env: ProtegeEnv, expert: ScriptedExpert, seed: int) -> EpisodeCheck:
    """One episode, ended as scripted collection ends it: success held :data:`SUCCESS_HOLD` ticks, the
    object lost or the time limit; success is the task's at the end."""
    obs, info = env.reset(seed=seed)
    expert.reset()
    trail: collections.deque[tuple[np.ndarray, set[str]]] = collections.deque(maxlen=STALL_TICKS + 1)
    held = ticks = 0
    closed = grasped = False
    ended = False
    while not ended:
        action = expert.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        ticks += 1
        held = held + 1 if info["success"] else 0
        trail.append((obs["ee_pos"], _touched(env)))
        if env.task.grasps:
            closed |= bool(action[-1] > 0.5)
            grasped |= env.holds(0)
        ended = held >= SUCCESS_HOLD or terminated or truncated
    if info["success"]:
        return EpisodeCheck(seed, True, ticks)
    return EpisodeCheck(seed, False, ticks, _diagnose(env, expert, info, list(trail), closed and not grasped))


def _diagnose(env: ProtegeEnv, expert: ScriptedExpert, info: dict[str, Any],
              trail: list[tuple[np.ndarray, set[str]]], closed_on_nothing: bool) -> str:
    if info["object_lost"]:
        return OBJECT_LOST
    ee, rot = env.ee_pose()
    target = np.asarray(expert.plan(ee, rot)[0], float)
    distances = [float(np.linalg.norm(target - p)) for p, _ in trail]
    if len(trail) > STALL_TICKS and min(distances) > STALL_FAR:  # short of the target all along
        geometry = env.robot.geometry
        if float(np.linalg.norm(target - geometry.shoulder)) > geometry.reach:
            return OUT_OF_REACH
        q, limits = env.data.qpos[env.arm_qpos_adr], env.arm_joint_range
        at_limit = [name for name, x, (low, high) in zip(env.robot.arm_joints, q, limits, strict=True)
                    if x < low + AT_LIMIT or x > high - AT_LIMIT]
        if at_limit:
            return f"{JOINT_LIMITS} ({', '.join(at_limit)})"
        touched = set().union(*(names for _, names in trail))
        if touched:
            return f"{BLOCKED} {', '.join(sorted(touched))}"
        if distances[0] - distances[-1] < STALL_MOVE:
            return IK_STALLED
    return NO_GRASP if closed_on_nothing else TIME_OUT


def _touched(env: ProtegeEnv) -> set[str]:
    """What the arm touches but itself: bodies by name, the world's geoms (the table) by theirs."""
    model, robot = env.model, set(env.robot_bodies)
    names = set()
    for contact in env.data.contact[: env.data.ncon]:
        for mine, other in ((contact.geom1, contact.geom2), (contact.geom2, contact.geom1)):
            body = int(model.geom_bodyid[other])
            if model.geom_bodyid[mine] in robot and body not in robot:
                names.add(model.body(body).name if body else model.geom(other).name)
    return names


def summarise(spec: EnvSpec, checks: Sequence[EpisodeCheck], refused: str | None = None) -> TaskCheck:
    """One task's row from its episodes (or its refusal)."""
    failed: dict[str, list[int]] = collections.defaultdict(list)
    for check in checks:
        if check.reason is not None:
            failed[check.reason].append(check.seed)
    reasons = sorted(((reason, tuple(seeds)) for reason, seeds in failed.items()), key=lambda r: -len(r[1]))
    seconds = float(np.mean([c.ticks for c in checks])) / spec.control_hz if checks else 0.0
    return TaskCheck(spec.task, len(checks), sum(c.success for c in checks), seconds, tuple(reasons), refused)


def describe_robot(robot: RobotSpec) -> str:
    """One line: the arm, its source, and what the loader measured of it."""
    geometry = robot.geometry
    gripper = geometry.gripper
    hand = "no gripper found (no collision geom moves between open and closed)" if gripper is None else (
        f"gripper {100 * gripper.width_open:.1f} cm wide open, {100 * gripper.width_closed:.1f} cm closed, "
        f"{100 * gripper.thickness:.1f} cm thick, fingers {100 * gripper.finger_length:.1f} cm long "
        f"({', '.join(gripper.fingers)})")
    return f"robot {robot.name} ({robot.dof}-DoF, {robot.source or robot.mjcf}): {hand}; reach {geometry.reach:.2f} m"


def format_table(rows: Sequence[TaskCheck]) -> str:
    """The check-robot table: task, success, mean episode length, and why the failures failed."""
    lines = [f"{'task':<10} {'success':>14} {'length':>8}  why not"]
    for row in rows:
        if row.refused is not None:
            lines.append(f"{row.task:<10} {'refused':>14} {'-':>8}  {row.refused}")
            continue
        success = f"{row.successes}/{row.episodes} {100 * row.success_rate:3.0f}%"
        why = ", ".join(f"{reason} ({_seeds(seeds)})" for reason, seeds in row.reasons)
        lines.append(f"{row.task:<10} {success:>14} {row.mean_seconds:>6.1f} s  {why}".rstrip())
    return "\n".join(lines)


def _seeds(seeds: tuple[int, ...], shown: int = 3) -> str:
    """``seed 7``, ``seeds 3, 7, 12`` or ``5 seeds: 3, 7, 12, ...``."""
    listed = ", ".join(map(str, seeds[:shown])) + (", ..." if len(seeds) > shown else "")
    return (f"seed {listed}" if len(seeds) == 1 else f"seeds {listed}" if len(seeds) <= shown
            else f"{len(seeds)} seeds: {listed}")


__all__ = ["EpisodeCheck", "TaskCheck", "check_seeds", "describe_robot", "format_table", "refusal", "run_episode",
           "summarise"]
