"""`protege sim list`, `protege sim view --task T` and `protege sim check-robot SPEC`."""

from __future__ import annotations

import argparse
import os

from protege.launch.cli import emit_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="sim_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="tasks, robots, cameras, action spaces and input devices")
    lst.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    view = sub.add_parser("view", help="open a window on a task scene (R reset, N next seed, Esc quit)")
    view.add_argument("--task", default="lift")
    view.add_argument("--robot", default="protege_arm", help="built-in robot name or a spec .yaml path")
    view.add_argument("--cameras", default="front,wrist", help="comma-separated cameras shown beside the main view")
    view.add_argument("--expert", action="store_true", help="let the scripted expert drive")
    view.add_argument("--seed", type=int, default=0)
    view.add_argument("--frames", type=int, default=0, help="stop after this many frames (0: until closed)")
    view.add_argument("--screenshot", default=None, help="save the last frame to this PNG")
    check = sub.add_parser("check-robot", help="run every task's scripted expert on an arm: what works, and why not")
    check.add_argument("robot", metavar="SPEC", help="built-in robot name or a spec .yaml path")
    check.add_argument("--tasks", default=None, help="comma-separated tasks (default: all)")
    check.add_argument("--seeds", type=int, default=20, help="episodes per task (default: 20)")
    check.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    check.add_argument("--workers", type=int, default=2, help="parallel worker processes (default: 2)")
    check.add_argument("--json", action="store_true", help="print one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    if args.sim_command == "list":
        return _list(args.json)
    if args.sim_command == "check-robot":
        return _check_robot(args)
    return _view(args)


def _list(as_json: bool) -> int:
    from protege.sim import BUILTIN_ROBOTS, TASKS
    from protege.sim.controllers import ACTION_SPACES
    from protege.sim.errors import SimError
    from protege.sim.robot import load_robot_spec
    from protege.sim.scene import CAMERAS

    robots = {}
    for name in BUILTIN_ROBOTS:
        try:
            spec = load_robot_spec(name)
            robots[name] = f"{spec.dof}-DoF, {spec.mjcf}"
        except SimError as exc:
            robots[name] = f"unavailable: {exc}"
    result = {
        "tasks": {name: f"{task.time_limit:.0f} s, " + (task.__doc__ or "").strip().splitlines()[0]
                  for name, task in TASKS.items()},
        "robots": robots,
        "cameras": list(CAMERAS),
        "action_spaces": list(ACTION_SPACES),
        "devices": _devices(),
    }
    for section in ("tasks", "robots"):
        print(f"{section}:")
        for name, text in result[section].items():
            print(f"  {name:12s} {text}")
    for section in ("cameras", "action_spaces", "devices"):
        print(f"{section}: {', '.join(result[section])}")
    if as_json:
        emit_json(result)
    return 0


def _devices() -> list[str]:
    """keyboard always; one entry per joystick pygame can see."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    import pygame

    pygame.joystick.init()
    pads = [f"gamepad:{i} ({pygame.joystick.Joystick(i).get_name()})" for i in range(pygame.joystick.get_count())]
    return ["keyboard", *pads] if pads else ["keyboard", "gamepad (none attached)"]


def _view(args: argparse.Namespace) -> int:
    from protege.sim import EnvSpec, ProtegeEnv
    from protege.teleop.display import require_display
    from protege.teleop.scene_viewer import view_scene

    require_display("sim view")  # before the scene's renderers reach for the display
    cameras = tuple(c for c in args.cameras.split(",") if c)
    env = ProtegeEnv(EnvSpec.make(args.task, robot=args.robot, cameras=cameras), terminate_on_success=False)
    expert = None
    if args.expert:
        from protege.sim.experts import make_expert

        expert = make_expert(env)
    try:
        view_scene(env, expert, seed=args.seed, frames=args.frames, screenshot=args.screenshot)
    finally:
        env.close()
    return 0


def _check_robot(args: argparse.Namespace) -> int:
    """The onboarding table; exit 0 whatever the tasks' outcomes (the report is the product)."""
    import time

    from protege.launch.errors import UserError
    from protege.sim import TASKS, load_robot_spec
    from protege.sim.onboarding import describe_robot, format_table
    from protege.teleop.runtime.robot_check import check_robot

    if args.seeds < 1 or args.workers < 1 or args.seed < 0:
        raise UserError(f"--seeds and --workers must be at least 1 and --seed at least 0, got {args.seeds}, "
                        f"{args.workers} and {args.seed}")
    tasks = list(TASKS) if args.tasks is None else [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise UserError(f"unknown task(s) {', '.join(unknown) or 'none given'} (choose from {', '.join(TASKS)})")
    robot = load_robot_spec(args.robot)
    print(describe_robot(robot), flush=True)
    started = time.perf_counter()
    rows = check_robot(args.robot, tasks, args.seeds, args.workers, args.seed)
    seconds = time.perf_counter() - started
    print(format_table(rows))
    print(f"{args.seeds} seeds per task from seed {args.seed}, {args.workers} worker(s), {seconds:.1f} s", flush=True)
    if args.json:
        emit_json({"robot": robot.name, "source": str(robot.source or robot.mjcf), "seeds": args.seeds,
                   "seed": args.seed, "workers": args.workers, "seconds": round(seconds, 2),
                   "tasks": [row.to_json() for row in rows]})
    return 0
