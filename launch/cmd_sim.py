"""`protege sim list` and `protege sim view --task T`."""

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


def run(args: argparse.Namespace) -> int:
    if args.sim_command == "list":
        return _list(args.json)
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
        "tasks": {name: f"{task.time_limit:.0f} s, " + (task.__doc__ or "").strip().splitlines()[0] for name, task in TASKS.items()},
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
