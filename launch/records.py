"""Typed JSON records: frozen dataclasses whose fields are checked when read back, with one-line errors.

A record's fields are annotated with ``str``, ``int``, ``float``, ``bool``, ``X | None``,
``tuple[X, ...]``, ``tuple[X, Y]``, ``dict[str, X]``, ``Any`` or another record. Reading refuses a
missing required field or a value of the wrong type in one line naming the place (a file, its line)
and the field; keys a record does not know are ignored (a newer version's additions), and missing
fields that have defaults take them (an older version's files).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Self

from protege.launch.errors import UserError


class Record:
    """Base of the record dataclasses: ``to_json`` writes the JSON object that ``from_json`` reads back."""

    def to_json(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, value: Any, where: str) -> Self:
        """The record ``value`` (parsed JSON) holds; ``where`` names it in errors (``runs/x/evals.jsonl line 3``)."""
        return _record(cls, value, where, "")


def _record(cls: type[Any], value: Any, where: str, path: str) -> Any:
    if not isinstance(value, dict):
        raise UserError(f"{where}: {path + ': ' if path else ''}expected a JSON object, got {_shown(value)}")
    hints = typing.get_type_hints(cls)
    fields = {}
    for field in dataclasses.fields(cls):
        name = f"{path}.{field.name}" if path else field.name
        if field.name in value:
            fields[field.name] = _value(hints[field.name], value[field.name], where, name)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise UserError(f"{where} lacks {name}")
    return cls(**fields)


def _value(hint: Any, value: Any, where: str, path: str) -> Any:
    """``value`` checked against the annotation ``hint`` (lists become tuples, ints in float fields floats)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return _record(hint, value, where, path)
    if origin in (typing.Union, types.UnionType):
        (arm,) = [a for a in args if a is not type(None)]
        return None if value is None else _value(arm, value, where, path)
    if origin is tuple and isinstance(value, list):
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], v, where, f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) == len(args):
            return tuple(_value(a, v, where, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict and isinstance(value, dict):
        return {k: _value(args[1], v, where, f"{path}.{k}") for k, v in value.items()}
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if (hint is int and type(value) is int) or (hint in (str, bool) and isinstance(value, hint)):
        return value
    raise UserError(f"{where}: {path}: expected {_expected(hint)}, got {_shown(value)}")


def _expected(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return "a list" if args[-1] is Ellipsis else f"a list of {len(args)}"
    if origin is dict:
        return "a JSON object"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[hint]


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plain(value: Any) -> Any:
    """``value`` with its tuples as lists, as JSON reads it back."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
