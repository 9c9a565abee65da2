"""`protege dataset`: inspect, validate, repair, merge, filter, relook and export datasets.

Heavy imports (zarr, OpenCV) happen inside ``run`` so that ``protege --help`` stays instant.
"""

from __future__ import annotations

import argparse
from typing import Any

MAX_VIDEO_FPS = 65535  # mp4v counts its time base in 16 bits


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
        return cmd

    info = action("info", "episodes, frames, keys with shapes and dtypes, fps, sources, success rate, size on disk")
    info.add_argument("dataset", help="dataset directory or fsspec URL (s3://..., memory://...)")
    info.add_argument("--episodes", action="store_true",
                      help="list every episode (index, length, seed, source, success, duration) instead of the "
                           "summary; with --json the summary gains the list as per_episode")

    validate = action("validate", "check every invariant; exit status 1 and one line per problem if broken")
    validate.add_argument("dataset", help="dataset directory or fsspec URL")
    validate.add_argument("--quick", action="store_true", help="check structure only, without decoding every chunk")

    repair = action("repair", "trim the uncommitted frames and temp files a killed writer left (not while one writes)")
    repair.add_argument("dataset", help="dataset directory or fsspec URL")

    merge = action("merge", "concatenate the episodes of compatible datasets into a new one")
    merge.add_argument("inputs", nargs="+", metavar="DATASET", help="two or more datasets, in order")
    merge.add_argument("-o", "--out", required=True, help="new dataset to create (must not exist)")
    merge.add_argument("--format", type=int, choices=(2, 3), help="zarr format of the output (default: first input's)")

    filter_cmd = action("filter", "copy the episodes that match every condition into a new dataset")
    filter_cmd.add_argument("dataset", help="dataset to read")
    filter_cmd.add_argument("-o", "--out", required=True, help="new dataset to create (must not exist)")
    filter_cmd.add_argument("--episodes", metavar="LIST", help="episode ids and ranges, e.g. 0,3,5-9")
    filter_cmd.add_argument("--success-only", action="store_true", help="keep successful episodes only")
    filter_cmd.add_argument("--source", metavar="NAMES", help="keep these sources, e.g. human,intervention")
    filter_cmd.add_argument("--format", type=int, choices=(2, 3), help="zarr format of the output (default: input's)")

    relook = action("relook", "write every episode again under other looks: its camera images rendered from its "
                              "recorded states with new lights, colours, camera poses and distractors")
    relook.add_argument("dataset", help="dataset recorded with sim_state and at least one camera")
    relook.add_argument("-o", "--out", required=True, help="new dataset to create (must not exist)")
    relook.add_argument("--looks", type=int, required=True,
                        help="looks per episode; look 0 is the episode's own (its recorded images when the "
                             "dataset was recorded with the same --randomize)")
    relook.add_argument("--randomize", metavar="FAMILY[=MAGNITUDE],...",
                        help="the looks to draw: any of lighting, colors, camera, distractors, or visual for all "
                             "four (default: the dataset's own --randomize)")
    relook.add_argument("--workers", type=int, default=1,
                        help="processes rendering episodes (default: 1; the output is the same for any number)")
    relook.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    video = action("export-video", "write one episode as an mp4, all cameras side by side")
    video.add_argument("dataset", help="dataset to read")
    video.add_argument("--episode", type=int, required=True, help="episode index")
    video.add_argument("--out", required=True, help="video file to write, e.g. episode.mp4")
    video.add_argument("--fps", type=float, help="frame rate (default: the dataset's)")

    export = action("export", "write a dataset as a LeRobotDataset v3.0 folder or a robomimic HDF5 file")
    export.add_argument("dataset", help="dataset to read")
    export.add_argument("--to", required=True, choices=("lerobot", "robomimic"), help="format to write")
    export.add_argument("out", help="new LeRobot folder or .hdf5 file to create (must not exist)")
    export.add_argument("--repo-id", help="lerobot: the dataset's name for LeRobotDataset(repo_id, root=OUT)")
    export.add_argument("--task-text", help="lerobot: the task description (default: the task's name)")
    export.add_argument("--state-keys", metavar="KEYS",
                        help="lerobot: keys concatenated into observation.state (default: those of "
                             "joint_pos,joint_vel,ee_pos,ee_quat,gripper present)")
    export.add_argument("--env-state-keys", metavar="KEYS",
                        help="lerobot: keys concatenated into observation.environment_state (default: every "
                             "other low-dim observation key, e.g. object_pos,object_quat,goal_pos); '' for none")

    import_cmd = action("import", "build a dataset from a LeRobotDataset v3.0 folder or a robomimic HDF5 file")
    import_cmd.add_argument("source", help="LeRobot folder or robomimic .hdf5 file")
    import_cmd.add_argument("--from", dest="from_format", required=True, choices=("lerobot", "robomimic"),
                            help="format of the source")
    import_cmd.add_argument("--out", required=True, help="new dataset to create (must not exist)")


def run(args: argparse.Namespace) -> int:
    handlers = {
        "info": _info,
        "validate": _validate,
        "repair": _repair,
        "merge": _merge,
        "filter": _filter,
        "relook": _relook,
        "export-video": _export_video,
        "export": _export,
        "import": _import,
    }
    return handlers[args.dataset_command](args)


def _finish(args: argparse.Namespace, result: dict[str, Any], lines: list[str]) -> int:
    if args.json:
        from protege.launch.cli import emit_json

        emit_json(result)
    else:
        print("\n".join(lines))
    return 0


def _info(args: argparse.Namespace) -> int:
    from protege.datasets import Dataset
    from protege.datasets.tools import dataset_info, episode_rows

    ds = Dataset(args.dataset)
    info = dataset_info(ds)
    if args.episodes:
        rows = episode_rows(ds)
        lines = ["episode  length      seed  source        success  duration", *(
            f"{row['episode']:>7}  {row['length']:>6}  {row['seed']:>8}  {row['source']:<12}  "
            f"{'yes' if row['success'] else 'no':<7}  {row['duration_s']:>6.2f} s"
            for row in rows
        )]
        return _finish(args, {**info, "per_episode": rows}, lines)
    success = "n/a" if info["success_rate"] is None else f"{100 * info['success_rate']:.1f}%"
    sources = ", ".join(f"{name} {count}" for name, count in info["sources"].items()) or "none"
    width = max((len(key) for key in info["keys"]), default=0)
    lines = [
        f"dataset   {info['path']} (zarr format {info['zarr_format']}, schema {info['schema_version']})",
        f"episodes  {info['episodes']}   frames {info['frames']}   fps {info['fps']:g}"
        f"   ({info['duration_s'] / 60:.1f} min)",
        f"setup     robot {info['robot']}, task {info['task']}, action space {info['action_space']}, "
        f"cameras {', '.join(info['cameras']) or 'none'}",
        f"sources   {sources}",
        f"success   {success}",
        f"size      {info['size_bytes'] / 2**20:.1f} MiB",
        "keys",
        *(
            f"  {key:<{width}}  {tuple(spec['shape'])!s:<16} {spec['dtype']:<8} chunk {spec['chunk_frames']} frames"
            for key, spec in info["keys"].items()
        ),
        *(f"note: {note}" for note in info["notes"]),
    ]
    return _finish(args, info, lines)


def _validate(args: argparse.Namespace) -> int:
    from protege.datasets.validate import validate_dataset

    report = validate_dataset(args.dataset, deep=not args.quick)
    status = "valid" if report.valid else f"INVALID ({len(report.errors)} problems)"
    lines = [f"{report.path}: {status}, {report.episodes} episodes, {report.frames} frames"]
    lines += [f"error: {error}" for error in report.errors] + [f"note: {note}" for note in report.notes]
    _finish(args, report.to_dict(), lines)
    return 0 if report.valid else 1


def _repair(args: argparse.Namespace) -> int:
    from protege.datasets.tools import repair_dataset

    result = repair_dataset(args.dataset)
    line = (
        f"{result['path']}: trimmed {result['trimmed_frames']} uncommitted frames and removed "
        f"{result['removed_temp_files']} temp files; {result['episodes']} episodes, {result['frames']} frames"
    )
    return _finish(args, result, [line])


def _merge(args: argparse.Namespace) -> int:
    from protege.datasets.tools import merge_datasets

    result = merge_datasets(args.inputs, args.out, args.format)
    return _finish(args, result, [_wrote(result)])


def _filter(args: argparse.Namespace) -> int:
    from protege.datasets.tools import filter_dataset

    sources = [name.strip() for name in args.source.split(",")] if args.source else []
    result = filter_dataset(args.dataset, args.out, args.episodes, args.success_only, sources, args.format)
    return _finish(args, result, [_wrote(result)])


def _relook(args: argparse.Namespace) -> int:
    from protege.launch.cli import check_processes
    from protege.launch.cmd_rollout import parse_disturb
    from protege.teleop.relook import relook

    randomize = parse_disturb(args.randomize, flag="--randomize") if args.randomize is not None else None
    check_processes("--workers", args.workers, None)
    result = relook(args.dataset, args.out, args.looks, randomize, args.workers, progress=not args.no_progress)
    return _finish(args, result, [f"{_wrote(result)}: {result['looks']} looks of each episode of {result['input']} "
                                  f"(--randomize {result['randomize']})"])


def _wrote(result: dict[str, Any]) -> str:
    return f"wrote {result['episodes']} episodes ({result['frames']} frames) to {result['output']}"


def _export_video(args: argparse.Namespace) -> int:
    from protege.datasets import Dataset
    from protege.datasets.video import export_video
    from protege.launch.cli import check_suffix
    from protege.launch.errors import UserError

    check_suffix("--out", args.out, ".mp4")
    if args.fps is not None and not 0 < args.fps <= MAX_VIDEO_FPS:
        raise UserError(f"--fps must be > 0 and at most {MAX_VIDEO_FPS} (mp4v's time base), got {args.fps:g}")
    result = export_video(Dataset(args.dataset), args.episode, args.out, args.fps)
    size = f"{result['width']}x{result['height']}"
    line = f"wrote {result['frames']} frames ({size}, {', '.join(result['cameras'])}) to {result['path']}"
    return _finish(args, result, [line])


def _keys(text: str | None) -> list[str] | None:
    return None if text is None else [key.strip() for key in text.split(",") if key.strip()]


def _export(args: argparse.Namespace) -> int:
    from protege.datasets.interop import export_dataset

    options: dict[str, Any] = {"progress": not args.json}
    lerobot_only = [flag for flag, value in (("--repo-id", args.repo_id), ("--task-text", args.task_text),
                    ("--state-keys", args.state_keys), ("--env-state-keys", args.env_state_keys)) if value is not None]
    if args.to != "lerobot" and lerobot_only:
        from protege.launch.errors import UserError

        raise UserError(f"{', '.join(lerobot_only)}: only with --to lerobot")
    if args.to == "lerobot":
        options.update(repo_id=args.repo_id, task_text=args.task_text, state_keys=_keys(args.state_keys),
                       env_state_keys=_keys(args.env_state_keys))
    result = export_dataset(args.dataset, args.to, args.out, **options)
    lines = [
        f"wrote {result['episodes']} episodes ({result['frames']} frames) as {result['format']} to {result['output']}"
    ]
    if args.to == "lerobot":
        lines.append(f"load it with LeRobotDataset({result['repo_id']!r}, root={result['output']!r})")
    return _finish(args, result, lines)


def _import(args: argparse.Namespace) -> int:
    from protege.datasets.interop import import_dataset

    result = import_dataset(args.source, args.from_format, args.out, progress=not args.json)
    lines = [_wrote(result)]
    if not result["sim_state"]:
        lines.append("note: the source has no simulator state: replay --mode states and browse rewind are unavailable")
    return _finish(args, result, lines)
