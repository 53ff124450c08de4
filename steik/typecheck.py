"""The one type checker of the config dataclasses' fields.

A field's annotation is its type: bool, int, float, str, `tuple[T, ...]`, or one of these or
None. `spec(default, ...)` adds what an annotation cannot say: the strings a field accepts
(`choices`) or the range of a number. `typed` turns a value given for a field (from Python, YAML,
JSON, or a command-line text) into the field's type and checks its spec, or raises one SteikError
naming the field, what it accepts and what it got.

Users: `steik.methods` (method overrides from `steik train --set` and `--overrides`, the
workflow's `train.overrides`, and every preset) and `steik.cli._options` (the `--options` of the
other commands). This module imports neither torch nor numpy.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
import types
import typing
from collections.abc import Iterable
from typing import Any

from steik.errors import SteikError

_WRONG = object()
"""What `_convert` returns for a value that does not fit the annotation."""

_BOUNDS = {
    "at_least": operator.ge,
    "above": operator.gt,
    "at_most": operator.le,
    "below": operator.lt,
}
"""The bounds a spec may give a number, each with the comparison the number must pass."""


def spec(
    default: Any,
    *,
    choices: tuple[str, ...] | None = None,
    at_least: float | None = None,
    above: float | None = None,
    at_most: float | None = None,
    below: float | None = None,
) -> Any:
    """A dataclass field with `default` that accepts, besides its type, only one of `choices`, or
    only numbers within the given bounds (`at_least`/`above` from below, `at_most`/`below` from
    above). The spec lives in the field's metadata, where `typed` reads it."""
    given = dict(choices=choices, at_least=at_least, above=above, at_most=at_most, below=below)
    return dataclasses.field(
        default=default, metadata={k: v for k, v in given.items() if v is not None}
    )


def check_names(cls: type, names: Iterable[str], kind: str) -> None:
    """Refuse names that are no field of dataclass `cls`: one SteikError listing them (as
    `unknown <kind> 'x'`) and the valid ones."""
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(names) - set(valid))
    if unknown:
        plural = "s" if len(unknown) > 1 else ""
        listed = ", ".join(repr(name) for name in unknown)
        raise SteikError(f"unknown {kind}{plural} {listed}; valid fields: {', '.join(valid)}")


def typed(cls: type, name: str, value: Any, label: str, *, text: bool = False) -> Any:
    """`value` given for field `name` of dataclass `cls`, as the field's type (an int for a float
    field becomes a float, a whole float for an int field an int, a list a tuple), checked
    against the field's `spec`. With `text`, `value` is a command-line string, first read as
    the type (`true`, `64`, `1e-3`, `2,4` for a tuple).

    Raises one SteikError starting with `label`: `<label> must be <what it accepts>, got
    <value>`, or for a choice `<label> = <value> is not valid; choose one of ...`.
    """
    hint = _hints(cls)[name]
    if text:
        value = _read(hint, value)
    converted = _convert(hint, value)
    if converted is _WRONG:
        raise SteikError(f"{label} must be {_describe(hint)}, got {value!r}")
    if converted is None:  # an optional field left unset: its spec speaks of set values
        return None
    metadata = _metadata(cls)[name]
    choices = metadata.get("choices")
    if choices is not None and converted not in choices:
        raise SteikError(
            f"{label} = {converted!r} is not valid; choose one of {', '.join(choices)}"
        )
    bounds = {key: metadata[key] for key in _BOUNDS if key in metadata}
    if not all(_BOUNDS[key](converted, bound) for key, bound in bounds.items()):
        raise SteikError(f"{label} must be {_range_text(bounds)}, got {converted}")
    return converted


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """Field name -> its annotation as a type (the dataclass modules postpone annotations)."""
    return typing.get_type_hints(cls)


@functools.cache
def _metadata(cls: type) -> dict[str, Any]:
    """Field name -> its spec (empty for a field declared without one)."""
    return {f.name: f.metadata for f in dataclasses.fields(cls)}


def _members(hint: Any) -> tuple[Any, ...]:
    """The types of a union annotation (`int | None`), or the annotation alone."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _read(hint: Any, text: str) -> Any:
    """A command-line text as a value of `hint`'s type, or the text itself where it reads as
    none (so that `_convert` refuses it with the field's message)."""
    members = _members(hint)
    if len(members) > 1:
        if type(None) in members and text.strip().lower() in ("none", "null"):
            return None
        return _read(next(m for m in members if m is not type(None)), text)
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        return tuple(_read(item, v.strip()) for v in text.strip("()[] ").split(",") if v.strip())
    if hint is bool:
        return {"true": True, "1": True, "false": False, "0": False}.get(text.lower(), text)
    readers = {int: (int, float), float: (float,)}.get(hint, ())
    for reader in readers:  # an int field reads `16.7` as a float, which it then refuses
        try:
            return reader(text)
        except ValueError:
            continue
    return text


def _convert(hint: Any, value: Any) -> Any:
    """`value` as type `hint`, or `_WRONG`. Numbers must be finite; bools are no numbers."""
    members = _members(hint)
    if len(members) > 1:
        if value is None:
            return None if type(None) in members else _WRONG
        for member in members:
            converted = _convert(member, value)
            if converted is not _WRONG:
                return converted
        return _WRONG
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            return _WRONG
        items = tuple(_convert(typing.get_args(hint)[0], v) for v in value)
        return _WRONG if any(item is _WRONG for item in items) else items
    if hint is bool or hint is str:
        return value if isinstance(value, hint) else _WRONG
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _WRONG
    if hint is int:
        if isinstance(value, int):
            return value
        return int(value) if math.isfinite(value) and value.is_integer() else _WRONG
    if hint is float:
        try:
            number = float(value)
        except OverflowError:  # an int beyond the floats
            return _WRONG
        return number if math.isfinite(number) else _WRONG
    raise TypeError(f"typecheck does not handle the annotation {hint!r}")


def _describe(hint: Any, plural: bool = False) -> str:
    """What a field of type `hint` accepts, in words (`a whole number`, `a list of strings`)."""
    members = _members(hint)
    if len(members) > 1:
        return " or ".join("null" if m is type(None) else _describe(m, plural) for m in members)
    if typing.get_origin(hint) is tuple:
        return f"a list of {_describe(typing.get_args(hint)[0], plural=True)}"
    words = {
        bool: ("true or false", "true/false values"),
        int: ("a whole number", "whole numbers"),
        float: ("a finite number", "finite numbers"),
        str: ("a string", "strings"),
    }
    return words[hint][plural]


def _range_text(bounds: dict[str, float]) -> str:
    """Bounds in words: `0 or more`, `positive and at most 1`, `at least 1`."""
    words = []
    for key, bound in bounds.items():
        if key == "at_least" and bound == 0:
            words.append("0 or more")
        elif key == "above" and bound == 0:
            words.append("positive")
        else:
            words.append(f"{key.replace('_', ' ')} {bound}")
    return " and ".join(words)
