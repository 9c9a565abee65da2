"""`protege rollout`: evaluate a trained policy in the sim, headless and in parallel, or take over live.

    protege rollout --checkpoint runs/mlp --episodes 50 --envs 4 --json
    protege rollout --checkpoint runs/mlp --episodes 10 --video-dir videos/ --record rollouts.zarr
    protege rollout --checkpoint runs/mlp --intervene keyboard --record corrections.zarr
    protege rollout --checkpoint runs/mlp --episodes 100 --disturb object_push=0.04,latency
    protege rollout --checkpoint runs/diffusion --episodes 100 --inference-delay 4 --chunking rtc

The env is the one the policy was trained for (the env spec its dataset recorded: task, arm, rate,
action space; cameras and image size from the policy's inputs). An arm given by a spec file is
loaded from --robot or from the path the run recorded, and must be the recorded arm (same spec and
MJCF). Every evaluation is appended to RUN/evals.jsonl, which `protege report` plots.

A chunked policy's next chunk can be made to arrive --inference-delay ticks after its request, the arm
running meanwhile, with a --chunking strategy (protege.policies.chunking); a window computes chunks in a
worker thread and measures the delay.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protege.launch.cli import add_ray_argument
from protege.launch.runfiles import EvalRecord, append_eval
from protege.launch.runs import EVAL_SEED
from protege.policies.chunking import STRATEGIES

if TYPE_CHECKING:
    from protege.launch.runs import OpenRun
    from protege.sim.disturbances import Disturbance
    from protege.sim.spec import EnvSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="RUN",
                        help="training run directory (protege train --out)")
    parser.add_argument("--episodes", type=int, default=50, help="episodes to roll out (default: 50)")
    parser.add_argument("--envs", type=int, default=1, help="parallel env processes (default: 1)")
    parser.add_argument("--seed", type=int, help=f"first episode seed (default: {EVAL_SEED}, or one past the largest "
                                                 "seed already in --record if that is larger)")
    add_ray_argument(parser, "--envs")
    parser.add_argument("--task", help="task to run (default: the checkpoint's; another task is refused)")
    parser.add_argument("--robot", help="robot name or spec file (default: the one the run recorded; another arm is "
                                        "refused)")
    parser.add_argument("--cameras", help="comma-separated cameras to observe and record (default: the policy's)")
    parser.add_argument("--success-hold", type=int, default=10,
                        help="an episode succeeds once success has held this many ticks (default: 10)")
    parser.add_argument("--disturb", metavar="NAME[=MAG],...",
                        help="seeded disturbances (unit, default magnitude): object_push (m, 0.04), arm_shove (m, "
                             "0.04), obs_noise (m, 0.005), latency (ticks, 1), lighting (scale, 1), colors (rgb, 0.2), "
                             "camera (scale, 1), distractors (objects, 3); 'default' is object_push,arm_shove and "
                             "'visual' the last four; with --intervene they strike the window's episodes, for the "
                             "person to recover from")
    parser.add_argument("--video-dir", help="write per-episode mp4 videos here")
    parser.add_argument("--videos", type=int, help="how many episodes get a video (default: all with --video-dir)")
    parser.add_argument("--video-camera", default="front", help="camera the videos show (default: front)")
    parser.add_argument("--record", metavar="D.zarr", help="append every rollout to this dataset (source=policy)")
    parser.add_argument("--intervene", choices=("keyboard", "gamepad"),
                        help="show a window and let a person take over live with this device (HG-DAgger)")
    parser.add_argument("--bindings", help="YAML file overriding key and button bindings (with --intervene)")
    parser.add_argument("--request-help", type=float, metavar="DOUBT",
                        help="with --intervene: the policy pauses and asks the person to take over when its doubt "
                             "(an mlp trained with --set members=5: its members' spread) passes DOUBT")
    parser.add_argument("--time-limit", type=float, metavar="SECONDS",
                        help="with --intervene: time per episode, shown as time left; 0: none "
                             "(default: 5 times the task's, lift: 40 s)")
    parser.add_argument("--no-wait", action="store_true",
                        help="with --intervene: start each episode at once and close after the last one (default: "
                             "wait for the start key before each episode and end on a summary)")
    parser.add_argument("--chunking", choices=STRATEGIES,
                        help="how chunks take over: sync (wait for each), naive (switch on arrival), ensemble "
                             "(average overlapping chunks), rtc (real-time chunking: the new chunk agrees with the "
                             "actions still to run); default: the policy's own, and with a delay rtc where the "
                             "policy can follow (diffusion; act trained with --set rtc_train_max_delay=K), "
                             "ensemble for act, else naive")
    parser.add_argument("--inference-delay", metavar="TICKS|auto",
                        help="headless: a chunk requested at tick t is usable at t + TICKS while the arm keeps "
                             "running (default 0: no delay); auto: the policy's measured prediction time, rounded "
                             "up to ticks. Windows (--intervene) always measure it")
    parser.add_argument("--device", default="cpu", help="torch device for the policy (default: cpu)")
    parser.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA weights")
    parser.add_argument("--no-log", action="store_true", help="do not append the result to RUN/evals.jsonl")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")


def parse_disturb(text: str | None, env: EnvSpec | None = None, flag: str = "--disturb") -> tuple[Disturbance, ...]:
    """``flag``'s disturbances (none when not given), checked against ``env`` when given (a latency or a
    displacement that cannot make sense there); one line, naming ``flag``, on a bad specification."""
    from protege.launch.errors import UserError
    from protege.sim import SimError
    from protege.sim.disturbances import check_disturbances, parse_disturbances

    if text is None:
        return ()
    try:
        disturb = parse_disturbances(text)
        if env is not None:
            check_disturbances(disturb, env)
    except SimError as exc:
        raise UserError(f"{flag}: {exc}") from None
    return disturb


def parse_delay(text: str | None) -> int | str:
    """``--inference-delay``: a whole number of ticks >= 0, or ``auto``; one line otherwise."""
    from protege.launch.errors import UserError

    if text is None:
        return 0
    if text == "auto":
        return text
    try:
        delay = int(text)
    except ValueError:
        raise UserError(f"--inference-delay takes a whole number of ticks or auto, got {text!r}") from None
    if delay < 0:
        raise UserError(f"--inference-delay must be >= 0 ticks, got {delay}")
    return delay


def run(args: argparse.Namespace) -> int:
    from protege.launch.cli import SEEDS, check_processes, check_range, connect_ray, emit_json, parse_cameras
    from protege.launch.errors import UserError
    from protege.launch.runs import open_run
    from protege.policies.trainer import resolve_device
    from protege.teleop.runtime.loop import first_seed

    if args.episodes < 1 or args.envs < 1:
        raise UserError(f"--episodes and --envs must be at least 1 (got {args.episodes} and {args.envs})")
    check_processes("--envs", args.envs, args.ray)
    if args.success_hold < 0:
        raise UserError(f"--success-hold must be >= 0 (got {args.success_hold})")
    if args.videos is not None and (args.videos < 0 or not args.video_dir):
        raise UserError("--videos needs --video-dir and must be >= 0")
    person = [flag for flag, given in (("--time-limit", args.time_limit is not None), ("--bindings", args.bindings),
                                       ("--no-wait", args.no_wait), ("--request-help", args.request_help is not None))
              if given]
    if person and not args.intervene:
        raise UserError(f"{', '.join(person)}: a person's settings, only with --intervene")
    if args.seed is not None:
        check_range("--seed", args.seed, SEEDS)
    if len(parse_cameras(args.video_camera, "--video-camera")) != 1:
        raise UserError(f"--video-camera takes one camera, got {args.video_camera!r}")
    cameras = None if args.cameras is None else list(parse_cameras(args.cameras))
    delay = parse_delay(args.inference_delay)
    if args.intervene and args.inference_delay is not None:
        raise UserError("--inference-delay is for headless rollouts: a window measures the real delay")
    device = str(resolve_device(args.device, 0))
    args.seed = first_seed(args.record, args.seed, start=EVAL_SEED)  # appending never repeats a seed
    run = open_run(args.checkpoint, robot=args.robot, task=args.task, cameras=cameras, device=device,
                   ema=not args.no_ema, chunking=args.chunking, delay=None if args.intervene else delay)
    disturb = parse_disturb(args.disturb, run.env)
    if args.intervene:
        result = _intervene(args, run, disturb)
    else:
        connect_ray(args.ray)
        if args.video_dir:
            Path(args.video_dir).mkdir(parents=True, exist_ok=True)  # an impossible one fails before any episode
        summary = run.evaluate(args.episodes, seed=args.seed, envs=args.envs, disturb=disturb,
                               success_hold=args.success_hold, record_to=args.record, video_dir=args.video_dir,
                               videos=args.episodes if args.videos is None else args.videos,
                               video_camera=args.video_camera, progress=not args.no_progress, ray=args.ray).summary
        strategy = args.chunking or "the policy's own"
        delayed = f" (chunks: {strategy}, {run.delay} ticks late)" if args.chunking or run.delay else ""
        print(summary.line(run.env.task) + delayed, flush=True)
        record = EvalRecord.from_summary(summary, str(args.checkpoint), run.meta.step)
        result = {**record.to_json(), "chunking": args.chunking, "inference_delay": run.delay}
        if not args.no_log:
            append_eval(Path(args.checkpoint), record)
    if args.json:
        emit_json(result)
    return 0


def _intervene(args: argparse.Namespace, run: OpenRun, disturb: tuple[Disturbance, ...]) -> dict[str, Any]:
    """A window shows the policy acting; holding the take-over input hands control to the person (and
    ``disturb`` strikes the scene, for recoveries)."""
    from protege.datasets import EpisodeWriter
    from protege.launch.errors import UserError
    from protege.sim.disturbances import describe
    from protege.teleop.devices import load_bindings, make_device
    from protege.teleop.display import require_display
    from protege.teleop.intervene import run_intervention
    from protege.teleop.runtime.collect import make_env
    from protege.teleop.runtime.loop import check_dataset, person_time_limit

    if not args.record:
        raise UserError("--intervene records the corrections: give the dataset with --record D.zarr")
    if args.envs != 1 or args.video_dir or args.ray:
        raise UserError("--intervene runs one env in a window: drop --envs, --video-dir and --ray")
    if args.request_help is not None and not run.meta.policy_config.knows_doubt:
        raise UserError(f"--request-help reads the policy's doubt: {run.path} is a {run.meta.policy} without an "
                        "ensemble of members (train an mlp with --set members=5)")
    require_display("rollout")
    env = make_env(run.env)
    device = make_device(args.intervene, load_bindings(args.bindings), env.action_space.high[:6])
    time_limit = person_time_limit(env, args.time_limit)
    check_dataset(args.record, run.env)
    with EpisodeWriter(args.record, attrs=run.env.to_attrs(), background=True) as writer:
        result = run_intervention(env, run.make_policy(), device, writer, args.episodes, args.seed,
                                  success_hold=args.success_hold, time_limit=time_limit, wait=not args.no_wait,
                                  disturb=disturb, request_help=args.request_help)
    env.close()
    timing = result["timing"]
    under = f" under {describe(disturb)} ({sum(e['strikes'] for e in result['episodes'])} strikes)" if disturb else ""
    print(f"saved {result['saved']} episode(s) to {args.record}{under} ({result['intervened_frames']} of "
          f"{result['frames']} frames driven by you); loop {timing['achieved_hz']} Hz, "
          f"{timing['late_ticks']} late of {timing['ticks']} ticks", flush=True)
    return {"checkpoint": str(args.checkpoint), "record": args.record, **result}
