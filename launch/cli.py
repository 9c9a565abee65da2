"""The `protege` command: one subcommand per workflow, each defined in its own module.

A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int`` and keeps heavy
imports (torch, mujoco rendering) inside ``run`` so that ``protege --help`` stays instant.
User-facing failures raise a subclass of :class:`protege.launch.errors.UserError` (or of the
sim/datasets/policies error classes listed in ``USER_ERRORS``); they end as one line on stderr
and exit status 2, never as a traceback, as does a file-system error on a path (an ``--out``
under a file, an unwritable ``--video-dir``). A closed output pipe (``protege ... | head``) ends a
command quietly with status 141. SIGTERM (``timeout``, container stops) stops a command as Ctrl-C does
(saved episodes kept), with status 143.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

SEEDS = range(2**32)  # episode seeds a command takes: numpy's classic seed range
IMAGE_SIDES = range(1, 2049)  # camera image side, pixels: beyond what a policy takes; a take's frames stay in memory
PROCESSES_PER_CPU = 4  # local worker processes (--envs, --workers) per CPU at most

# name -> (module, one-line help). Modules are imported only to build their own parser.
COMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("protege.launch.cmd_sim", "list tasks, robots, cameras and devices; view a scene"),
    "dataset": ("protege.launch.cmd_dataset", "inspect, validate, repair, merge, filter and export datasets"),
    "record": ("protege.launch.cmd_record", "record demonstrations by teleoperation or with the scripted expert"),
    "train": ("protege.launch.cmd_train", "train a policy on a dataset"),
    "rollout": ("protege.launch.cmd_rollout", "evaluate a policy in the sim; optionally take over live"),
    "dagger": ("protege.launch.cmd_dagger", "DAgger: roll out, let an expert label or correct, aggregate, retrain"),
    "replay": ("protege.launch.cmd_replay", "replay a recorded episode in the sim and measure its deviation"),
    "browse": ("protege.launch.cmd_browse", "browse a dataset's episodes; rewind to a frame and correct"),
    "launch": ("protege.launch.cmd_launch", "run a launch file (YAML) describing a whole workflow"),
    "report": ("protege.launch.cmd_report", "write an HTML report with plots and videos of a run"),
    "bench": ("protege.launch.cmd_bench", "measure throughput of sim, record, dataset, train, inference"),
}


def user_errors() -> tuple[type[BaseException], ...]:
    """Exception classes whose message is shown to the user as a one-line error."""
    classes: list[type[BaseException]] = []
    for module, name in (
        ("protege.sim.errors", "SimError"),
        ("protege.datasets.errors", "DatasetError"),
        ("protege.policies.errors", "PolicyError"),
        ("protege.teleop.errors", "TeleopError"),
        ("protege.launch.errors", "UserError"),
    ):
        try:
            classes.append(getattr(importlib.import_module(module), name))
        except ImportError:  # a package that does not exist yet has no errors to catch
            continue
    return tuple(classes)


def add_ray_argument(parser: argparse.ArgumentParser, workers: str) -> None:
    """``--ray [ADDRESS]``: run the per-seed workers as Ray actors (needs the ``protege[ray]`` extra)."""
    parser.add_argument(
        "--ray", nargs="?", const="local", metavar="ADDRESS",
        help=f"run the workers ({workers} of them) as Ray actors: a local Ray instance (started, or the one "
             "`ray start` left), or the cluster at ADDRESS (auto, ray://HOST:10001); needs pip install 'protege[ray]'",
    )


def parse_cameras(text: str, flag: str = "--cameras") -> tuple[str, ...]:
    """A comma-separated camera list (``""``: none); one line on a camera no scene has, or one named twice."""
    from protege.launch.errors import UserError
    from protege.sim.scene import CAMERAS

    cameras = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = [c for c in cameras if c not in CAMERAS]
    if unknown:
        raise UserError(f"{flag}: unknown camera {unknown[0]} (choose from {', '.join(CAMERAS)})")
    twice = sorted({c for c in cameras if cameras.count(c) > 1})
    if twice:
        raise UserError(f"{flag}: camera {twice[0]!r} is named twice")
    return cameras


def check_range(flag: str, value: float, allowed: range, why: str = "") -> None:
    """One line unless ``value``, given with ``flag``, is within ``allowed`` (``why`` says why it is bounded)."""
    from protege.launch.errors import UserError

    if not allowed.start <= value < allowed.stop:
        raise UserError(f"{flag} must be {allowed.start} to {allowed.stop - 1}{why}, got {value:g}")


def check_processes(flag: str, count: int, ray: str | None) -> None:
    """One line if ``count`` worker processes, run locally (Ray places its actors itself), are more than
    :data:`PROCESSES_PER_CPU` per CPU: each builds an env and a GL context of its own."""
    from protege.launch.errors import UserError

    cpus = os.cpu_count() or 1
    if ray is None and count > PROCESSES_PER_CPU * cpus:
        raise UserError(f"{flag} {count}: more than {PROCESSES_PER_CPU} processes per CPU ({cpus} CPUs here), each "
                        "with an env and a GL context of its own; --ray runs more on a cluster")


def check_suffix(flag: str, path: str, suffix: str) -> None:
    """One line unless ``path``, given with ``flag``, ends in ``suffix`` (the type of file written there)."""
    from protege.launch.errors import UserError

    if not path.lower().endswith(suffix):
        raise UserError(f"{flag} {path}: writes a {suffix} file; give a path ending in {suffix}")


def connect_ray(address: str | None) -> None:
    """Join ``--ray``'s cluster now, when given: an address that is malformed or where nothing answers is
    refused in one line before anything is written (the pools then find Ray joined)."""
    if address is not None:
        from protege.teleop.runtime.ray_pool import connect

        connect(address)


def emit_json(result: dict[str, Any]) -> None:
    """Print ``result`` as one JSON object on the last line of standard output."""
    sys.stdout.flush()
    print(json.dumps(result, default=_json_default), flush=True)


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="protege", description="Teleoperation and imitation learning for simulated robot arms."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``docker stop``, ``kill``): stops a command the way Ctrl-C does."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    errors = user_errors()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        status = int(importlib.import_module(args._module).run(args) or 0)
        sys.stdout.flush()  # a reader that has gone away (`| head`) shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit writes nowhere
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe
    except errors as exc:
        print(f"protege {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # not about a path the user gave
            raise
        print(f"protege {args.command}: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"protege {args.command}: terminated", file=sys.stderr)
        return 143  # 128 + SIGTERM
    except KeyboardInterrupt:
        print(f"protege {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
