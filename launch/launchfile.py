"""Launch files: a workflow as YAML, a list of `protege` commands checked in full before any runs.

    description: collect scripted demos, train, evaluate      # optional, shown by --list
    vars: {out: runs/quickstart, task: lift}                  # optional; ${name} anywhere in a value
    steps:                                                     # each step: {COMMAND: {key: value}}
      - record: {task: "${task}", expert: scripted, out: "${out}/demos.zarr", no_progress: true}
      - dataset validate: {dataset: "${out}/demos.zarr"}     # subcommands: the words, space separated
      - train: {dataset: "${out}/demos.zarr", out: "${out}/mlp", set: {lr: 3e-4}}

A step's keys and their types come from the command's own argparse parser: a key is an option's
long name without the dashes (``--batch-size`` -> ``batch_size``; ``-`` and ``_`` are both
accepted) or a positional's name; flags take true/false; repeatable options take a list (``--set``
also a mapping); null leaves an option out. A value that is exactly ``${name}`` keeps the type of
the variable. Command-line overrides: ``name=value`` sets a declared variable, ``STEP.key=value``
sets a step argument, where STEP is the command's first word (when only one step runs it) or the
step's number from 1; values are parsed as YAML (``steps=100`` is an int, ``cameras=`` the empty
string, ``video_dir=null`` removes the argument).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.resources
import os
import re
import shlex
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from protege.launch.errors import UserError

TOP_LEVEL_KEYS = ("description", "vars", "steps")
NOT_IN_LAUNCH_FILES = ("launch",)  # a launch file that launches launch files is a loop waiting to happen
_VAR = re.compile(r"\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Step:
    """One resolved step: the command words and the argv that `protege` parses for it."""

    number: int
    command: str
    argv: list[str]

    def shell(self) -> str:
        """The step as a command line a person could paste."""
        return shlex.join(["protege", *self.command.split(), *self.argv])


@dataclass(frozen=True)
class LaunchPlan:
    """A validated launch file: every step resolved to a command line."""

    path: Path
    description: str
    variables: dict[str, Any]
    steps: list[Step]


# ---------------------------------------------------------------------------------------- finding files


def shipped_launch_files() -> dict[str, Path]:
    """Launch files that ship with protege, by bare name."""
    folder = importlib.resources.files("protege.launch")
    return {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def find_launch_file(name: str) -> Path:
    """``name`` as a path, else a shipped launch file (``quickstart`` or ``quickstart.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = shipped_launch_files()
    stem = path.name.removesuffix(".yaml")
    if stem in shipped and (path.parent == Path(".") or path.parent.name == "launch"):
        return shipped[stem]
    raise UserError(f"no launch file {name!r}: not a file, and not one of the shipped: {', '.join(sorted(shipped))}")


# ------------------------------------------------------------------------------------- command schemas


def _raise_on_error(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` and its subparsers raise UserError instead of printing usage and exiting."""

    def error(message: str) -> None:
        raise UserError(message)

    parser.error = error  # type: ignore[method-assign]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _raise_on_error(sub)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_parser(root: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """The parser of ``command`` (one or more words, e.g. ``dataset validate``) under ``root``."""
    parser, path = root, []
    for word in command.split():
        choices = _subparsers(parser)
        if word not in choices:
            where = f"'{' '.join(path)}' " if path else ""
            known = ", ".join(c for c in choices if c not in NOT_IN_LAUNCH_FILES)
            raise UserError(f"unknown {where}command '{word}' (known: {known})")
        parser, path = choices[word], [*path, word]
    if not path:
        raise UserError("empty command")
    if path[0] in NOT_IN_LAUNCH_FILES:
        raise UserError(f"command '{path[0]}' cannot run inside a launch file")
    nested = _subparsers(parser)
    if nested:
        raise UserError(f"command '{command}' needs a subcommand: '{command} {'|'.join(nested)}'")
    return parser


def _key(action: argparse.Action) -> str:
    if not action.option_strings:
        return action.dest
    return max(action.option_strings, key=len).lstrip("-").replace("-", "_")


def command_options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """A command's keys for launch files: long option names (underscored) and positional names."""
    return {
        _key(action): action
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
    }


def _is_flag(action: argparse.Action) -> bool:
    return isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))


def _is_list(action: argparse.Action) -> bool:
    nargs = action.nargs
    return isinstance(action, argparse._AppendAction) or nargs in ("+", "*") or (isinstance(nargs, int) and nargs > 0)


def _type_name(convert: Callable[[str], Any] | None) -> str:
    names = {int: "an int", float: "a number", None: "a string"}
    return names.get(convert, f"a {getattr(convert, '__name__', 'value')}")  # type: ignore[arg-type]


def _scalar(key: str, value: Any, action: argparse.Action) -> str:
    """One value of an option as the string argparse gets; wrong types and choices are named."""
    convert = action.type
    if isinstance(value, bool) or not isinstance(value, _SCALARS):
        found = "true/false" if isinstance(value, bool) else type(value).__name__
        raise UserError(f"key '{key}' must be {_type_name(convert)}, got {found} {value!r}")
    if convert is int and isinstance(value, float):
        raise UserError(f"key '{key}' must be an int, got {value!r}")
    try:
        converted = convert(str(value)) if convert is not None else str(value)
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        raise UserError(f"key '{key}' must be {_type_name(convert)}, got {value!r}") from None
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(str(c) for c in action.choices)
        raise UserError(f"key '{key}' must be one of {choices}; got {value!r}")
    return str(value)


def _setting(key: str, name: Any, value: Any) -> str:
    """One entry of a mapping given to a repeatable option, as ``name=value`` (lists comma-joined)."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, _SCALARS) for v in items):
        raise UserError(f"key '{key}.{name}' must be a scalar or a list of scalars, got {value!r}")
    return f"{name}={','.join(str(v) for v in items)}"


def _values(key: str, value: Any, action: argparse.Action) -> list[str]:
    """The strings one list-valued key contributes; a mapping becomes NAME=VALUE items (for --set)."""
    items: Iterable[Any]
    if isinstance(value, Mapping):
        if not isinstance(action, argparse._AppendAction):
            raise UserError(f"key '{key}' takes a list, got a mapping")
        items = [_setting(key, name, v) for name, v in value.items()]
    else:
        items = value if isinstance(value, list) else [value]
    return [_scalar(key, item, action) for item in items]


def _hint(key: str, options: Mapping[str, argparse.Action]) -> str:
    """The closest known key, else all of them, for an unknown-key message."""
    close = difflib.get_close_matches(key, list(options), n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (keys: {', '.join(options)})" if options else " (the command takes no keys)"


def step_argv(parser: argparse.ArgumentParser, args: Mapping[str, Any]) -> list[str]:
    """The argv for one command from its launch-file keys, checked against the command's parser."""
    options = command_options(parser)
    given = {str(k).replace("-", "_"): v for k, v in args.items()}
    for key in given:
        if key not in options:
            raise UserError(f"unknown key '{key}'{_hint(key, options)}")
    missing = [k for k, a in options.items() if a.required and given.get(k) is None]
    if missing:
        raise UserError(f"missing required key{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
    argv: list[str] = []
    positionals: dict[str, list[str]] = {}
    for key, value in given.items():
        action = options[key]
        if value is None:
            continue
        if _is_flag(action):
            if not isinstance(value, bool):
                raise UserError(f"key '{key}' is a flag: true or false, got {value!r}")
            argv += [action.option_strings[-1]] if value else []
        elif not action.option_strings:
            positionals[key] = _values(key, value, action) if _is_list(action) else [_scalar(key, value, action)]
        elif isinstance(action, argparse._AppendAction):
            for item in _values(key, value, action):
                argv += [action.option_strings[-1], item]
        elif _is_list(action):
            argv += [action.option_strings[-1], *_values(key, value, action)]
        else:
            argv += [action.option_strings[-1], _scalar(key, value, action)]
    return argv + [item for key in options if key in positionals for item in positionals[key]]


# ----------------------------------------------------------------------------------------- variables


def _substitute(value: Any, variables: Mapping[str, Any], where: str) -> Any:
    """Replace ``${name}`` in strings (recursively in lists and mappings); ``"${x}"`` keeps x's type."""
    if isinstance(value, list):
        return [_substitute(v, variables, where) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, variables, where) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def lookup(name: str) -> Any:
        if not _VAR_NAME.fullmatch(name):
            raise UserError(f"{where}: malformed variable reference '${{{name}}}'")
        if name not in variables:
            known = ", ".join(variables) or "none declared"
            raise UserError(f"{where}: undefined variable '${{{name}}}' (vars: {known})")
        return variables[name]

    whole = _VAR.fullmatch(value)
    if whole:
        return lookup(whole.group(1))
    return _VAR.sub(lambda m: str(lookup(m.group(1))), value)


def resolve_variables(declared: Mapping[str, Any]) -> dict[str, Any]:
    """Variables with references to other variables expanded; cycles are refused."""
    resolved: dict[str, Any] = {}

    def resolve(name: str, chain: tuple[str, ...]) -> Any:
        if name in resolved:
            return resolved[name]
        if name in chain:
            raise UserError(f"vars: circular reference {' -> '.join([*chain, name])}")
        value = declared[name]
        if isinstance(value, str):
            names = [m.group(1) for m in _VAR.finditer(value)]
            sub = {n: resolve(n, (*chain, name)) for n in names if n in declared}
            value = _substitute(value, sub, f"vars: '{name}'")
        resolved[name] = value
        return value

    for name in declared:
        resolve(name, ())
    return resolved


# ------------------------------------------------------------------------------------------ overrides


def parse_override(text: str) -> tuple[str | None, str, Any]:
    """``name=value`` -> (None, name, value); ``STEP.key=value`` -> (STEP, key, value); value parsed as YAML."""
    target, sep, raw = text.partition("=")
    target = target.strip()
    if not sep or not target:
        raise UserError("expected NAME=VALUE or STEP.KEY=VALUE")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    selector, dot, key = target.rpartition(".")
    if not dot:
        return None, target, value
    if not selector or not key:
        raise UserError("expected NAME=VALUE or STEP.KEY=VALUE")
    return selector, key.replace("-", "_"), value


def _select_steps(selector: str, commands: list[str]) -> int:
    """The index of the step an override's STEP names: its number from 1, or its command's first word."""
    if selector.isdigit():
        number = int(selector)
        if not 1 <= number <= len(commands):
            raise UserError(f"there is no step {number} (steps 1..{len(commands)})")
        return number - 1
    matches = [i for i, c in enumerate(commands) if c.split()[0] == selector]
    if not matches:
        raise UserError(f"no step runs '{selector}' (steps: {', '.join(c.split()[0] for c in commands)})")
    if len(matches) > 1:
        numbers = ", ".join(str(i + 1) for i in matches)
        raise UserError(f"{len(matches)} steps run '{selector}' (steps {numbers}): "
                        f"name one by number, e.g. {matches[0] + 1}.KEY=VALUE")
    return matches[0]


# -------------------------------------------------------------------------------------------- loading


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise UserError("expected a mapping with 'steps' at the top level")
    unknown = [k for k in data if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise UserError(f"unknown top-level key '{unknown[0]}' (allowed: {', '.join(TOP_LEVEL_KEYS)})")
    return data


def _split_step(number: int, step: Any) -> tuple[str, dict[str, Any]]:
    if not isinstance(step, dict) or len(step) != 1:
        raise UserError(f"step {number}: expected one 'COMMAND: {{key: value, ...}}' mapping, got {step!r}")
    ((command, args),) = step.items()
    args = {} if args is None else args
    if not isinstance(command, str) or not isinstance(args, dict):
        raise UserError(f"step {number} ({command}): arguments must be a mapping of key: value")
    return " ".join(command.split()), dict(args)


def load_launch_file(path: str | Path, overrides: Sequence[str] = ()) -> LaunchPlan:
    """Read, override, substitute and validate a launch file; nothing runs. Errors name file and step."""
    path = Path(path)
    try:
        return _load(path, overrides)
    except UserError as exc:
        raise UserError(f"{path.name}: {exc}") from None


def _load(path: Path, overrides: Sequence[str]) -> LaunchPlan:
    data = _read(path)
    description = data.get("description") or ""
    declared = data.get("vars") or {}
    if not isinstance(declared, dict) or not all(isinstance(k, str) and _VAR_NAME.fullmatch(k) for k in declared):
        raise UserError("'vars' must be a mapping of names (letters, digits, _) to values")
    for name, value in declared.items():
        if not isinstance(value, _SCALARS):
            raise UserError(f"vars: '{name}' must be a string, number or true/false, got {type(value).__name__}")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise UserError("'steps' must be a non-empty list of 'COMMAND: {key: value}' mappings")
    steps = [_split_step(i, step) for i, step in enumerate(raw_steps, 1)]
    commands = [command for command, _ in steps]

    from protege.launch.cli import build_parser

    root = build_parser()
    _raise_on_error(root)
    parsers = []
    for number, (command, _) in enumerate(steps, 1):
        try:
            parsers.append(command_parser(root, command))
        except UserError as exc:
            raise UserError(f"step {number}: {exc}") from None

    declared = dict(declared)
    for text in overrides:
        try:
            selector, key, value = parse_override(text)
            if selector is None:
                if key not in declared:
                    known = ", ".join(declared) or "none declared"
                    raise UserError(f"unknown variable '{key}' (vars: {known})")
                if not isinstance(value, _SCALARS):
                    raise UserError(f"variable '{key}' must be a string, number or true/false")
                declared[key] = value
                continue
            index = _select_steps(selector, commands)
            options = command_options(parsers[index])
            if key not in options:
                raise UserError(f"step {index + 1} ({commands[index]}) has no key '{key}'{_hint(key, options)}")
            steps[index][1][key] = value
        except UserError as exc:
            raise UserError(f"override '{text}': {exc}") from None

    variables = resolve_variables(declared)
    resolved: list[Step] = []
    for number, ((command, args), parser) in enumerate(zip(steps, parsers), 1):
        where = f"step {number} ({command})"
        try:
            argv = step_argv(parser, {key: _substitute(v, variables, f"key '{key}'") for key, v in args.items()})
            root.parse_args([*command.split(), *argv])
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        resolved.append(Step(number, command, argv))
    return LaunchPlan(path, str(description).strip(), variables, resolved)


# -------------------------------------------------------------------------------------------- running


# The option naming what a step creates or appends to: run again, the step would add to it or refuse.
OUTPUTS = {"record": "out", "train": "out", "dagger": "out", "dataset merge": "out", "dataset filter": "out",
           "rollout": "record", "browse": "out"}


def existing_outputs(plan: LaunchPlan) -> list[tuple[Step, Path]]:
    """The steps whose output is already there (an earlier run of the file), with that output."""
    from protege.launch.cli import build_parser

    root = build_parser()
    found = []
    for step in plan.steps:
        dest = OUTPUTS.get(step.command)
        value = getattr(root.parse_args([*step.command.split(), *step.argv]), dest) if dest else None
        if value and os.path.lexists(value):
            found.append((step, Path(value)))
    return found


def clear_outputs(plan: LaunchPlan, overwrite: bool) -> None:
    """Refuse, before any step runs, a plan whose outputs exist; with ``overwrite`` delete them instead."""
    existing = existing_outputs(plan)
    if existing and not overwrite:
        listed = ", ".join(f"{path} (step {step.number}, {step.command})" for step, path in existing)
        raise UserError(
            f"{plan.path.name}: {listed} already exist(s) from an earlier run; nothing was run. Start fresh with "
            "--overwrite (deletes them) or another out=..., or continue by running the remaining steps yourself "
            "(--dry-run prints them)"
        )
    for _, path in existing:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def run_plan(plan: LaunchPlan, announce: Callable[[str], None] = print,
             overwrite: bool = False) -> list[dict[str, Any]]:
    """Check the outputs (``clear_outputs``), then run the steps in order, in this process, through each
    command's ``run``; stop at the first failure.

    A failing step raises UserError naming the file, the step and the step's own one-line error.
    Returns one ``{"step", "command", "argv", "seconds"}`` record per step.
    """
    import time

    from protege.launch.cli import build_parser, user_errors

    clear_outputs(plan, overwrite)
    root = build_parser()
    errors = user_errors()
    records = []
    for step in plan.steps:
        where = f"{plan.path.name}: step {step.number} ({step.command})"
        announce(f"==> [{step.number}/{len(plan.steps)}] {step.shell()}")
        args = root.parse_args([*step.command.split(), *step.argv])
        start = time.perf_counter()
        try:
            status = int(importlib.import_module(args._module).run(args) or 0)
        except errors as exc:
            raise UserError(f"{where}: {exc}") from None
        if status != 0:
            raise UserError(f"{where}: exited with status {status}")
        records.append({"step": step.number, "command": step.command, "argv": step.argv,
                        "seconds": round(time.perf_counter() - start, 2)})
    return records
