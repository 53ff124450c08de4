"""Arguments the commands share, and options that cross from the workflow to a command as data.

The workflow passes method overrides and stage options as one JSON mapping per command
(`--overrides`, `--options`) instead of re-parsed flag strings, so a value keeps its type from the
YAML config to the dataclass that uses it, and a new option needs no new flag. Flags a person
types (`--resolution 64`) are merged on top.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from steik.errors import SteikError
from steik.typecheck import check_names, typed

T = TypeVar("T")


def add_files(parser: argparse.ArgumentParser, flag: str, metavar: str, help: str) -> None:
    """A required list of files (`--flag A B C`)."""
    parser.add_argument(flag, nargs="+", required=True, metavar=metavar, help=help)


def add_figure(parser: argparse.ArgumentParser, resolution: int | None = None) -> None:
    """The PNG to write, and the grid points per axis of level-set figures."""
    parser.add_argument("--out", required=True, help="PNG to write")
    if resolution is not None:
        parser.add_argument("--resolution", type=int, default=resolution,
                            help=f"grid points per axis (default {resolution})")  # fmt: skip


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]"
    )


def add_options(parser: argparse.ArgumentParser, fields_of: str) -> None:
    parser.add_argument(
        "--options", metavar="JSON", help=f"options as a JSON mapping (fields of {fields_of})"
    )


def options_with_flags(args: argparse.Namespace, cls: type[T], flags: Sequence[str]) -> T:
    """The config dataclass `cls` from `--options` JSON, with the given flags (argument names)
    that were set on the command line winning."""
    options = json_mapping(args.options, "--options")
    options.update({key: getattr(args, key) for key in flags if getattr(args, key) is not None})
    return build_config(cls, options, "--options")


def json_mapping(text: str | None, flag: str) -> dict[str, Any]:
    """The mapping a JSON option holds (empty when the option was not given)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise SteikError(
            f"{flag}: not valid JSON ({error}); pass a mapping like '{{\"a\": 1}}'"
        ) from None
    if not isinstance(value, dict):
        raise SteikError(f"{flag}: expected a JSON mapping of names to values, got {text!r}")
    return value


def build_config(cls: type[T], options: dict[str, Any], flag: str) -> T:
    """`cls(**options)` for a frozen config dataclass, each value typed and checked by the one
    type checker (`steik.typecheck.typed`, as method overrides are); unknown names are refused,
    and the dataclass itself checks its ranges."""
    check_names(cls, options, f"{flag} field")
    return cls(**{key: typed(cls, key, value, f"{flag}: {key}") for key, value in options.items()})
