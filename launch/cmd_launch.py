"""`protege launch`: run a launch file (YAML), a whole workflow as a list of protege commands.

    protege launch quickstart                               # a shipped file, by name
    protege launch launch/train_mlp.yaml dataset=demos.zarr train.steps=2000
    protege launch quickstart --dry-run                     # print the resolved commands, run nothing
    protege launch --list                                   # the shipped launch files

The whole file is validated (every step's keys and types against the command's own options,
every ${variable}, every override) before the first step runs, and so are the steps' outputs: if
an earlier run left a dataset or run directory there, the launch refuses before changing anything
(``--overwrite`` deletes them first). Steps then run in order in this process and the first failure
stops the launch with that step's one-line error (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EXAMPLES = """examples:
  protege launch quickstart                                  a shipped launch file, by name
  protege launch launch/train_mlp.yaml dataset=demos.zarr train.steps=2000 --dry-run
  protege launch --list

overrides:
  NAME=VALUE        set a variable declared under vars:, e.g. out=runs/try2 task=push
  STEP.KEY=VALUE    set a step's argument; STEP is its command (train.steps=100) or its number (2.steps=100)
  values are YAML: 100 is an int, true a flag, KEY= the empty string, KEY=null leaves the option out"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXAMPLES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("file", nargs="?", metavar="FILE", help="launch file: a path, or the name of a shipped one")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="variable or step-argument overrides")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the resolved commands; run nothing")
    parser.add_argument("--list", action="store_true", help="list the shipped launch files and exit")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete what an earlier run left at the steps' outputs, then run (default: refuse)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    _options_anywhere(parser)


def _options_anywhere(parser: argparse.ArgumentParser) -> None:
    """Let options sit between FILE and the overrides (``launch quickstart --dry-run out=x``).

    Plain argparse stops filling positionals at the first option; its intermixed parse does not,
    but the top-level parser has subcommands, so this one subparser switches to it on its own.
    """
    plain = parser.parse_known_args

    def parse_known_args(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        parser.parse_known_args = plain  # type: ignore[method-assign]  (the intermixed parse calls it)
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            parser.parse_known_args = parse_known_args  # type: ignore[method-assign]

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]


def run(args: argparse.Namespace) -> int:
    from protege.launch.cli import emit_json
    from protege.launch.errors import UserError
    from protege.launch.launchfile import find_launch_file, load_launch_file, run_plan, shipped_launch_files

    if args.list:
        if args.file:
            raise UserError(f"--list lists the shipped launch files: drop {args.file!r}, or drop --list to run it")
        return _list(shipped_launch_files())
    if not args.file:
        raise UserError("name a launch file (e.g. quickstart) or pass --list")
    plan = load_launch_file(find_launch_file(args.file), args.overrides)
    if args.dry_run:
        for step in plan.steps:
            print(step.shell())
        records = []
    else:
        if plan.description:
            print(f"{plan.path.name}: {plan.description}", flush=True)
        records = run_plan(plan, announce=lambda line: print(line, flush=True), overwrite=args.overwrite)
        seconds = sum(r["seconds"] for r in records)
        print(f"{plan.path.name}: {len(records)} step(s) done in {seconds:.0f} s", flush=True)
    if args.json:
        emit_json({
            "file": str(plan.path), "vars": plan.variables, "dry_run": args.dry_run,
            "commands": [step.shell() for step in plan.steps], "steps": records,
        })
    return 0


def _list(files: dict[str, Path]) -> int:
    import yaml

    width = max(map(len, files), default=0)
    for name, path in sorted(files.items()):
        try:
            description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        except (yaml.YAMLError, AttributeError):
            description = "(unreadable)"
        print(f"{name:<{width}}  {' '.join(str(description).split())}")
    return 0
