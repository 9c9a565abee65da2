"""`protege record`: teleoperate with a keyboard or gamepad, or generate demos with the scripted expert.

    protege record --task lift --device keyboard --out demos.zarr
    protege record --task lift --expert scripted --episodes 100 --workers 2 --out demos.zarr

Heavy imports (mujoco, pygame, zarr) happen inside ``run`` so that ``protege --help`` stays instant.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

from protege.launch.cli import add_ray_argument

if TYPE_CHECKING:
    from protege.sim.disturbances import Disturbance

# Options of one way of recording, with their defaults: another value given with the other way is refused.
TELEOP_ONLY: dict[str, Any] = {"bindings": None, "time_limit": None, "auto_save": False}
SCRIPTED_ONLY: dict[str, Any] = {"workers": 1, "ray": None, "noise": None, "dart": False, "randomize": None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", required=True, help="task to record (see `protege sim list`)")
    parser.add_argument("--robot", default="protege_arm", help="robot name or spec file (default: protege_arm)")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", choices=("keyboard", "gamepad"), help="a person drives with this device")
    who.add_argument("--expert", choices=("scripted",), help="the task's scripted expert drives, headless")
    parser.add_argument("--out", required=True, help="dataset to create or append to (NAME.zarr)")
    parser.add_argument("--cameras", default="front,wrist",
                        help="comma-separated cameras to record (default: front,wrist)")
    parser.add_argument("--image-size", type=int, default=128, help="camera image side in pixels (default: 128)")
    parser.add_argument("--fps", type=float, default=20.0, help="control and recording rate in Hz (default: 20)")
    parser.add_argument("--seed", type=int, default=None,
                        help="first scene seed (default: one past the largest seed already in --out, else 0)")
    parser.add_argument("--success-hold", type=int, default=10,
                        help="end (and for a person, save) an episode once success has held this many ticks; 0: never")
    teleop = parser.add_argument_group("teleoperation (--device)")
    teleop.add_argument("--bindings", help="YAML file overriding key and button bindings and speeds")
    teleop.add_argument("--time-limit", type=float, metavar="SECONDS",
                        help="time per take, shown as time left; 0: none (default: 5 times the task's, lift: 40 s)")
    teleop.add_argument("--auto-save", action="store_true",
                        help="save a take as soon as success has held, without stopping for review")
    scripted = parser.add_argument_group("scripted collection (--expert)")
    scripted.add_argument("--episodes", type=int, default=10, help="episodes to collect (default: 10)")
    scripted.add_argument("--workers", type=int, default=1, help="parallel worker processes (default: 1)")
    add_ray_argument(scripted, "--workers")
    scripted.add_argument("--noise", type=float, default=None,
                          help="expert action noise, fraction of each phase's speed limit (default: 0.2)")
    scripted.add_argument("--dart", action="store_true",
                          help="record the expert's noise-free action for each state the noisy expert visits (DART "
                               "labels; replaying the actions then no longer reproduces the episode)")
    scripted.add_argument("--randomize", metavar="FAMILY[=MAGNITUDE],...",
                          help="domain randomisation: each episode's look drawn from its seed, any of lighting, "
                               "colors, camera, distractors, or visual for all four (magnitudes as --disturb's)")
    scripted.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    from protege.launch.cli import IMAGE_SIDES, SEEDS, check_range, emit_json, parse_cameras
    from protege.sim.robot import TIMESTEP
    from protege.teleop.errors import TeleopError

    cameras = list(parse_cameras(args.cameras))
    if not 1 <= args.fps <= 1 / TIMESTEP:
        raise TeleopError(f"--fps must be 1 to {1 / TIMESTEP:g} Hz (the physics rate), got {args.fps:g}")
    if args.success_hold < 0:
        raise TeleopError("--success-hold must be >= 0")
    check_range("--image-size", args.image_size, IMAGE_SIDES)
    if args.seed is not None:
        check_range("--seed", args.seed, SEEDS)
    _check_mode(args)
    if args.expert:
        result = _collect(args, cameras)
    else:
        result = _teleoperate(args, cameras)
    if args.json:
        emit_json(result)
    return 0


def _check_mode(args: argparse.Namespace) -> None:
    """TeleopError naming the options of the other way of recording, which it would ignore."""
    from protege.teleop.errors import TeleopError

    other = TELEOP_ONLY if args.expert else SCRIPTED_ONLY
    given = [f"--{name.replace('_', '-')}" for name, default in other.items() if getattr(args, name) != default]
    if given:
        only = "--device (scripted collection keeps the task's time limit)" if args.expert else "--expert scripted"
        raise TeleopError(f"{', '.join(given)}: only with {only}")


def parse_randomize(text: str | None, cameras: list[str]) -> tuple[Disturbance, ...]:
    """``--randomize``'s visual families (none when not given); one line on another disturbance or with no
    camera to see them."""
    from protege.launch.cmd_rollout import parse_disturb
    from protege.launch.errors import UserError
    from protege.sim.visual import VISUAL_FAMILIES

    families = parse_disturb(text, flag="--randomize")
    physical = [f.name for f in families if f.name not in VISUAL_FAMILIES]
    if physical:
        raise UserError(f"--randomize draws what cameras see ({', '.join(VISUAL_FAMILIES)} or visual), "
                        f"not {physical[0]}: disturb the physics at evaluation with --disturb")
    if families and not cameras:
        raise UserError("--randomize changes only what cameras see: record at least one (--cameras front,wrist)")
    return families


def _collect(args: argparse.Namespace, cameras: list[str]) -> dict[str, Any]:
    from protege.launch.cli import check_processes, connect_ray
    from protege.sim import EnvSpec
    from protege.sim.experts import DEMO_NOISE, check_expert
    from protege.teleop.errors import TeleopError
    from protege.teleop.runtime.collect import collect
    from protege.teleop.runtime.loop import first_seed

    if args.episodes < 1 or args.workers < 1:
        raise TeleopError("--episodes and --workers must be at least 1")
    check_processes("--workers", args.workers, args.ray)
    noise = DEMO_NOISE if args.noise is None else args.noise
    if not 0 <= noise < math.inf:
        raise TeleopError(f"--noise must be >= 0 and finite, got {noise}")
    spec = EnvSpec.make(args.task, args.robot, cameras, args.image_size, args.fps)
    randomize = parse_randomize(args.randomize, cameras)
    check_expert(spec)  # an arm the task or its expert cannot use is refused before any episode
    seed = first_seed(args.out, args.seed)
    connect_ray(args.ray)
    result = collect(spec, args.out, args.episodes, noise=noise, success_hold=args.success_hold, workers=args.workers,
                     seed=seed, progress=not args.no_progress, ray=args.ray, dart=args.dart, randomize=randomize)
    print(f"collected {result['episodes']} {args.task} episodes (seeds {seed}..{seed + args.episodes - 1}), "
          f"{result['successes']} successful, {result['frames']} frames into {args.out} in {result['seconds']} s "
          f"({result['episodes_per_min']} episodes/min with {args.workers} {'Ray actor' if args.ray else 'worker'}(s))",
          flush=True)
    return result


def _teleoperate(args: argparse.Namespace, cameras: list[str]) -> dict[str, Any]:
    import protege.sim  # noqa: F401  (picks the headless GL backend before mujoco loads)
    from protege.datasets import EpisodeWriter
    from protege.sim import EnvSpec, ProtegeEnv
    from protege.teleop.devices import load_bindings, make_device
    from protege.teleop.display import require_display
    from protege.teleop.recorder import Recorder
    from protege.teleop.runtime.loop import check_dataset, first_seed, person_time_limit

    require_display("record")
    bindings = load_bindings(args.bindings)
    spec = EnvSpec.make(args.task, args.robot, cameras, args.image_size, args.fps)
    env = ProtegeEnv(spec, terminate_on_success=False)
    device = make_device(args.device, bindings, env.action_space.high[:6])
    time_limit = person_time_limit(env, args.time_limit)
    attrs = spec.to_attrs()
    check_dataset(args.out, spec)
    seed = first_seed(args.out, args.seed)
    with EpisodeWriter(args.out, attrs=attrs, background=True) as writer:
        recorder = Recorder(env, device, writer, seed=seed, success_hold=args.success_hold,
                            time_limit=time_limit, auto_save=args.auto_save)
        result = recorder.run()
    env.close()
    timing = result["timing"]
    print(f"saved {len(result['saved'])} episode(s) to {args.out}, discarded {result['discarded']}; "
          f"loop {timing['achieved_hz']} Hz, {timing['late_ticks']} late of {timing['ticks']} ticks", flush=True)
    return {"out": args.out, **result}
