"""`protege browse`: browse a dataset's episodes; rewind to any frame and correct from there.

    protege browse rollouts.zarr                                   # window: list, timeline, cameras, plots
    protege browse rollouts.zarr --checkpoint runs/mlp             # the policy resumes after a correction
    protege browse rollouts.zarr --script fixes.yaml --out fixes.zarr   # headless scripted corrections

A script is a YAML or JSON list of ``{episode, frame, source: keyboard|gamepad|expert, ticks}``.
Loading a checkpoint needs torch; it happens here, so the teleop package never imports it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protege.policies.base import Policy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset to browse (NAME.zarr)")
    parser.add_argument("--checkpoint", help="training run whose policy drives on after a correction")
    parser.add_argument("--device", choices=("keyboard", "gamepad"), default="keyboard",
                        help="what a person corrects with (default: keyboard)")
    parser.add_argument("--bindings", help="YAML file overriding key and button bindings and speeds")
    parser.add_argument("--script",
                        help="run these corrections headlessly (YAML/JSON list) instead of opening a window")
    parser.add_argument("--out", help="dataset the corrections go to (default: the browsed one)")
    parser.add_argument("--robot", help="robot spec file, for datasets (and checkpoints) of an arm that is not built "
                                        "in (default: the spec file they recorded)")
    parser.add_argument("--success-hold", type=int, default=10,
                        help="a correction ends once success has held this many ticks; 0: never (default: 10)")
    parser.add_argument("--time-limit", type=float, metavar="SECONDS",
                        help="time per correction, from the first input in the window; 0: none (default: 5 times "
                             "the task's in the window, lift: 40 s; what is left of the task's with --script)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")


def _load_policy(run_dir: str, attrs: dict[str, Any], robot: str | None) -> Policy:
    """The checkpoint's policy, refused unless it was trained in the dataset's env (task, arm, action
    space, rate) and fits its observations; a chunked one computes its chunks in a worker thread."""
    from protege.launch.runs import open_run
    from protege.sim import EnvSpec

    env = EnvSpec.from_attrs(attrs).with_robot(robot).resolved()
    return open_run(run_dir, robot=robot, env=env, delay=None).make_policy()


def run(args: argparse.Namespace) -> int:
    from protege.datasets import Dataset
    from protege.launch.cli import emit_json
    from protege.teleop.errors import TeleopError

    if args.success_hold < 0 or (args.time_limit or 0) < 0:
        raise TeleopError("--success-hold and --time-limit must be >= 0")
    window_only = [flag for flag, given in (("--device", args.device != "keyboard"), ("--bindings", args.bindings))
                   if given]
    if args.script and window_only:
        raise TeleopError(f"{', '.join(window_only)}: for the window; a --script names each correction's source")
    if args.script:
        import os

        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # headless: scripted key events need no display
        from protege.teleop.correct import load_script, run_script

        corrections = load_script(args.script)
        ds = Dataset(args.dataset)
        if "sim_state" not in ds:  # before loading any checkpoint
            raise TeleopError(f"rewind needs sim_state: {ds.path} was recorded without data/sim_state; nothing written")
        policy = _load_policy(args.checkpoint, ds.attrs, args.robot) if args.checkpoint else None
        result = run_script(args.dataset, corrections, out=args.out, policy=policy, robot=args.robot,
                            success_hold=args.success_hold, time_limit=args.time_limit)
        for c in result["corrections"]:
            print(f"episode {c['episode']} frame {c['frame']}: {c['source']} corrected {c['corrected_ticks']} of "
                  f"{c['ticks']} ticks, {'success' if c['success'] else 'no success'} -> episode {c['new_episode']}",
                  flush=True)
        print(f"wrote {len(result['corrections'])} correction(s) to {result['out']}", flush=True)
    else:
        from protege.teleop.browser import BrowserModel
        from protege.teleop.browser_view import BrowserApp, RewindOptions
        from protege.teleop.devices import load_bindings
        from protege.teleop.display import require_display

        require_display("browse")
        model = BrowserModel(args.dataset)
        policy = _load_policy(args.checkpoint, model.ds.attrs, args.robot) if args.checkpoint else None
        rewind = RewindOptions(device=args.device, policy=policy, out=args.out, robot=args.robot,
                               bindings=load_bindings(args.bindings), success_hold=args.success_hold,
                               time_limit=args.time_limit)
        result = {"dataset": args.dataset, "out": args.out or args.dataset, **BrowserApp(model, rewind).run()}
        print(f"saved {len(result['saved'])} correction(s) to {result['out']}", flush=True)
    if args.json:
        emit_json(result)
    return 0
