"""`protege replay`: replay a recorded episode in the sim and report how far it drifts from the recording.

    protege replay demos.zarr --episode 3                     # restore every recorded state (exact)
    protege replay demos.zarr --episode 3 --mode actions      # step the recorded actions open loop
    protege replay demos.zarr --episode 3 --video ep3.mp4     # headless, to video
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="dataset to replay from (NAME.zarr)")
    parser.add_argument("--episode", type=int, required=True, help="episode index (negative counts from the end)")
    parser.add_argument("--mode", choices=("states", "actions"), default="states",
                        help="states: restore data/sim_state frame by frame; actions: step the recorded actions "
                             "from the first state (default: states)")
    parser.add_argument("--video", help="write the replayed cameras to this mp4")
    parser.add_argument("--window", action="store_true", help="show the replay in a window at the recording rate")
    parser.add_argument("--robot", help="robot spec file, for datasets of an arm that is not built in")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")


def run(args: argparse.Namespace) -> int:
    from protege.launch.cli import check_suffix, emit_json
    from protege.teleop.replay import replay

    if args.video:
        check_suffix("--video", args.video, ".mp4")
    if args.window:
        from protege.teleop.display import require_display

        require_display("replay")
    result = replay(args.dataset, args.episode, mode=args.mode, video=args.video, window=args.window,
                    robot=args.robot)
    where = ""
    if result.max_deviation > 0:
        worst = max(result.per_key, key=result.per_key.__getitem__)
        where = f" ({worst}, frame {result.worst_frame})"
    print(f"replayed episode {result.episode} ({result.mode}, {result.frames} frames): max deviation "
          f"{result.max_deviation:.3g}{where}" + (f"; video {result.video}" if result.video else ""), flush=True)
    if args.json:
        emit_json({"dataset": args.dataset, **result.as_dict()})
    return 0
