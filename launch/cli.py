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
        help=f"run the workers ({workers} of them) as Ray actors: a local Ray instance (started, or the one `ray start` left), "
             "or the cluster at ADDRESS (auto, ray://HOST:10001); needs pip install 'protege[ray]'",
    )


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
