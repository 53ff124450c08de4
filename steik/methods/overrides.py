"""Method-field overrides: values given for `MethodConfig` fields, checked before a preset takes
them, from Python or YAML/JSON (`steik train --overrides`, the workflow's `train.overrides`) or
from command-line texts (`steik train --set FIELD=VALUE` and its shortcut flags).

Every path goes through `steik.typecheck.typed`, so a value is refused with the same message
wherever it was given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steik.errors import SteikError
from steik.methods.config import MethodConfig
from steik.typecheck import check_names, typed

_FIXED = {"name": "--method", "experiment": "--experiment"}
"""Fields a preset takes from its arguments, never from an override (-> the flag that sets it)."""


def check_overrides(overrides: Mapping[str, Any], text: bool = False) -> dict[str, Any]:
    """Overrides with their types checked and normalised (ints as int, numbers as float, lists as
    tuples) and their specs (choices, ranges) checked; with `text`, the values are command-line
    texts. An unknown field, a wrong type or a value out of range is a SteikError naming the
    field."""
    check_names(MethodConfig, overrides, "method field")
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in _FIXED:
            raise SteikError(
                f"method field {key!r} cannot be overridden; it is chosen by {_FIXED[key]}"
            )
        out[key] = typed(MethodConfig, key, value, f"method field {key}", text=text)
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """`FIELD=VALUE` from the command line -> (field, value typed like the field), checked as
    `check_overrides` checks the workflow's values."""
    if "=" not in text:
        raise SteikError(f"--set expects FIELD=VALUE, got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    return key, check_overrides({key: raw}, text=True)[key]


def overrides_from_cli(
    sets: list[str],
    iterations: int | None = None,
    points_per_iter: int | None = None,
    lr: float | None = None,
) -> dict[str, Any]:
    """Method-field overrides from the command line: `--set FIELD=VALUE` texts plus the
    shortcuts `--iterations`, `--points-per-iter` (N manifold + N off-surface) and `--lr`."""
    overrides = dict(parse_override(text) for text in sets)
    if iterations is not None:
        overrides["iterations"] = iterations
    if points_per_iter is not None:
        overrides["n_manifold"] = overrides["n_offsurface"] = points_per_iter
    if lr is not None:
        overrides["lr"] = lr
    return overrides
