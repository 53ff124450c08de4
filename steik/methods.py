"""Method presets: the rows of the paper's tables as frozen dataclasses (SPEC 3-4, 9).

`preset(name, experiment, **overrides)` is the only way the rest of the package gets a
configuration; an unknown method, experiment or field fails with the list of valid ones.

Also the project's shared vocabulary: method labels as the paper's tables print them, the run
folder names of (method, seed), and the names of neurons, activations, initialisations,
divergences and schedules. This module imports neither torch nor numpy, so the workflow can
validate a configuration while it builds its job graph.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from steik.errors import SteikError
from steik.schedule import SCHEDULES, WeightSchedule

METHODS = ("igr_wo_n", "siren_wo_n", "digs", "lin_lln", "qua_ldiv", "steik")
EXPERIMENTS = ("srb", "shapenet", "scene", "2d")
NEURONS = ("linear", "quadratic")
ACTIVATIONS = ("sine", "softplus")
INITS = ("siren", "geometric_sine", "mfgi", "geometric_relu")
DIVERGENCES = ("none", "full", "directional")
DIVERGENCE_NORMS = ("l1", "l2")

METHOD_LABELS: dict[str, str] = {
    "igr_wo_n": "IGR wo n",
    "siren_wo_n": "SIREN wo n",
    "digs": "DiGS",
    "lin_lln": "Lin + L_L.n.",
    "qua_ldiv": "Qua + L_div",
    "steik": "StEik",
}
"""Method name -> its row label in the paper's tables (and in every table and figure here)."""


def method_label(method: str) -> str:
    """The paper's label of a method (the name itself for one the paper does not have)."""
    return METHOD_LABELS.get(method, method)


def run_name(method: str, seed: int) -> str:
    """Folder of a (method, seed) under `results/<dataset>/`: the method, suffixed `-seed<S>`
    for seeds other than 0."""
    return method if int(seed) == 0 else f"{method}-seed{int(seed)}"


def parse_run(run: str) -> tuple[str, int]:
    """(method, seed) of a run folder name (the inverse of `run_name`)."""
    method, _, seed = run.partition("-seed")
    return method, int(seed or 0)


def run_label(run: str) -> str:
    """Display label of a run folder name (`steik` -> `StEik`, `digs-seed2` -> `DiGS (seed 2)`)."""
    method, seed = parse_run(run)
    return f"{method_label(method)} (seed {seed})" if seed else method_label(method)


SRB_SCHEDULE = (1e2, 0.2, 1e2, 0.4, 0.0, 0.0)
SCENE_SCHEDULE = (1e1, 0.1, 1e1, 0.3, 0.0, 0.0)


@dataclass(frozen=True)
class MethodConfig:
    """Everything that defines one training run of one method on one shape."""

    name: str
    """Method name (a row of the paper's tables)."""
    experiment: str
    """Experiment whose settings were used: srb, shapenet, scene or 2d."""
    neuron: str = "quadratic"
    """`linear` (z = W x + b) or `quadratic` (StEik's neuron)."""
    activation: str = "sine"
    """`sine` (sin 30 z) or `softplus` (beta 100)."""
    init: str = "mfgi"
    """siren, geometric_sine, mfgi or geometric_relu (SPEC 2)."""
    hidden: int = 128
    """Width of each hidden layer."""
    layers: int = 5
    """Number of hidden widths (`layers x hidden`)."""
    sphere_radius: float = 1.6
    """Radius of the initial zero level set for the geometric inits."""
    sphere_scaling: float = 0.1
    """Output scaling of the sphere mapping."""
    div: str = "directional"
    """Divergence term: `none`, `full` (DiGS L_div) or `directional` (StEik L_L.n.)."""
    div_norm: str = "l1"
    """`l1` or `l2` applied to the per-point divergence."""
    w_sdf: float = 2e3
    w_inter: float = 1e2
    w_normal: float = 1e2
    w_eikonal: float = 5e1
    schedule: str = "linear"
    """Divergence-weight schedule between knots: linear, quintic, step or none."""
    schedule_knots: tuple[float, ...] = SRB_SCHEDULE
    """Flat knot list (w0, f1, w1, ..., w_end); w0 is the divergence weight at the start."""
    use_normals: bool = False
    """Whether the normal term is used (the headline methods use points only)."""
    lr: float = 1e-4
    """Adam learning rate (constant)."""
    iterations: int = 10_000
    n_manifold: int = 15_000
    """Scan points per iteration."""
    n_offsurface: int = 15_000
    """Uniform off-surface points per iteration."""
    offsurface_extent: float = 1.1
    """Off-surface points are uniform in [-extent, extent]^d (normalised frame)."""
    grad_clip: float = 10.0
    """Per-shape gradient-norm clip; 0 disables clipping."""
    log_every: int = 100
    """Iterations between two rows of the training log."""
    checkpoint_every: int = 1000
    """Iterations between two checkpoints (0: only at the end)."""
    notes: tuple[str, ...] = field(default=())
    """Free-form provenance notes (e.g. what was scaled down)."""

    @property
    def sphere(self) -> tuple[float, float] | None:
        """Sphere output mapping for the geometric sine inits, none otherwise."""
        if self.init in ("geometric_sine", "mfgi"):
            return (self.sphere_radius, self.sphere_scaling)
        return None

    @property
    def structure(self) -> str:
        return f"{self.layers} x {self.hidden}"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> MethodConfig:
        """Rebuild a configuration from `as_dict()` output (as stored in model files); keys of
        fields this version does not have are ignored, missing ones take their defaults."""
        known = {k: v for k, v in values.items() if k in FIELDS}
        for name in ("schedule_knots", "notes"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)

    def digest(self) -> str:
        """Short hash of every field: identifies a configuration in checkpoints and tables."""
        text = json.dumps(self.as_dict(), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


FIELDS = tuple(f.name for f in dataclasses.fields(MethodConfig))

# Per experiment: base settings of StEik and of DiGS (SPEC 3-4). Baselines without a divergence
# take DiGS's settings with the terms they do not use set to zero.
_STEIK_BASE: dict[str, dict[str, Any]] = {
    "srb": dict(w_sdf=2e3, lr=1e-4),
    "shapenet": dict(w_sdf=5e3, lr=5e-5),
    "scene": dict(
        w_sdf=5e3,
        lr=8e-6,
        iterations=100_000,
        schedule_knots=SCENE_SCHEDULE,
        layers=8,
        hidden=256,
        init="siren",
    ),
    "2d": dict(
        w_sdf=3e3,
        lr=5e-5,
        layers=4,
        hidden=128,
        grad_clip=0.0,
        sphere_scaling=1.0,
        offsurface_extent=1.2,
    ),
}
_DIGS_BASE: dict[str, dict[str, Any]] = {
    "srb": dict(w_sdf=3e3, lr=5e-5),
    "shapenet": dict(w_sdf=3e3, lr=5e-5),
    "scene": dict(
        w_sdf=5e3,
        lr=8e-6,
        iterations=100_000,
        schedule_knots=SCENE_SCHEDULE,
        layers=8,
        hidden=512,
    ),
    "2d": dict(
        w_sdf=3e3,
        lr=5e-5,
        layers=4,
        hidden=256,
        grad_clip=0.0,
        sphere_scaling=1.0,
        offsurface_extent=1.2,
    ),
}
_LINEAR_HIDDEN = {"srb": 256, "shapenet": 256, "scene": 512, "2d": 128}
_QUADRATIC_HIDDEN = {"srb": 128, "shapenet": 128, "scene": 256, "2d": 128}
# The reference 2D scripts pass "4 hidden layers" to both networks, which the linear network
# counts after its first layer (5 hidden widths) and the quadratic one in total (4): DiGS's
# sanity check is a linear 5 x 128, StEik's a quadratic 4 x 128.
_LINEAR_LAYERS = {"2d": 5}


def _method_fields(name: str, experiment: str) -> dict[str, Any]:
    """Fields of method `name` in `experiment` before user overrides."""
    if name in ("steik", "lin_lln", "qua_ldiv"):
        fields = dict(_STEIK_BASE[experiment])
    else:
        fields = dict(_DIGS_BASE[experiment])
    linear = dict(neuron="linear", hidden=_LINEAR_HIDDEN[experiment])
    if experiment in _LINEAR_LAYERS:
        linear["layers"] = _LINEAR_LAYERS[experiment]
    quadratic = dict(neuron="quadratic", hidden=_QUADRATIC_HIDDEN[experiment])
    if name == "steik":
        fields.update(quadratic, div="directional")
    elif name == "qua_ldiv":
        fields.update(quadratic, div="full")
    elif name == "lin_lln":
        fields.update(linear, div="directional", init="mfgi")
    elif name == "digs":
        fields.update(linear, div="full", init="mfgi")
    elif name == "siren_wo_n":
        fields.update(linear, div="none", init="siren", schedule="none", schedule_knots=(0.0, 0.0))
    elif name == "igr_wo_n":
        fields.update(
            neuron="linear",
            hidden=512,
            layers=8,
            activation="softplus",
            init="geometric_relu",
            div="none",
            w_inter=0.0,
            schedule="none",
            schedule_knots=(0.0, 0.0),
        )
    return fields


def preset(name: str, experiment: str, **overrides: Any) -> MethodConfig:
    """The configuration of method `name` with `experiment`'s settings, then `overrides`.

    Every override is checked (known field, type, range) before the configuration is built, so
    the command line and the workflow's start-up check refuse the same values with the same text.
    """
    if name not in METHODS:
        raise SteikError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    if experiment not in EXPERIMENTS:
        raise SteikError(
            f"unknown experiment {experiment!r}; valid experiments: {', '.join(EXPERIMENTS)}"
        )
    fields = _method_fields(name, experiment)
    fields.update(check_overrides(overrides))
    config = MethodConfig(name=name, experiment=experiment, **fields)
    validate(config)
    return config


_FIELD_TYPES = {f.name: str(f.type) for f in dataclasses.fields(MethodConfig)}
_FIXED = {"name": "--method", "experiment": "--experiment"}


def check_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Overrides with their types checked and normalised (ints as int, numbers as float, knot
    lists as tuples); an unknown field, a wrong type or a non-finite number is a SteikError
    naming the field."""
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise SteikError(
            f"unknown method field(s) {', '.join(unknown)}; valid fields: {', '.join(FIELDS)}"
        )
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in _FIXED:
            raise SteikError(
                f"method field {key!r} cannot be overridden; it is chosen by {_FIXED[key]}"
            )
        out[key] = _typed(key, value)
    return out


def _typed(key: str, value: Any) -> Any:
    """`value` as the type of field `key`, or a SteikError saying what was expected."""
    kind = _FIELD_TYPES[key]

    def wrong(expected: str) -> SteikError:
        return SteikError(f"method field {key} must be {expected}, got {value!r}")

    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a whole number")
        if not (math.isfinite(value) and float(value).is_integer()):
            raise wrong("a whole number")
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a number")
        if not math.isfinite(value):
            raise wrong("a finite number")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    # tuples: schedule_knots (numbers) and notes (strings)
    if not isinstance(value, list | tuple):
        raise wrong("a list")
    if key == "schedule_knots":
        items = [_typed_number(key, v) for v in value]
        return tuple(items)
    if not all(isinstance(v, str) for v in value):
        raise wrong("a list of strings")
    return tuple(value)


def _typed_number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SteikError(f"method field {key} must hold finite numbers, got {value!r}")
    return float(value)


_AT_LEAST_ONE = ("hidden", "layers", "iterations", "n_manifold", "n_offsurface", "log_every")
_NOT_NEGATIVE = ("w_sdf", "w_inter", "w_normal", "w_eikonal", "grad_clip", "checkpoint_every")
_POSITIVE = ("lr", "offsurface_extent", "sphere_scaling", "sphere_radius")


def validate(config: MethodConfig) -> None:
    """Reject values no run could use, naming the field and what it accepts."""
    choices = {
        "neuron": NEURONS,
        "activation": ACTIVATIONS,
        "init": INITS,
        "div": DIVERGENCES,
        "div_norm": DIVERGENCE_NORMS,
        "schedule": SCHEDULES,
    }
    for name, valid in choices.items():
        if getattr(config, name) not in valid:
            raise SteikError(
                f"{name} = {getattr(config, name)!r} is not valid; choose one of {', '.join(valid)}"
            )
    for name in _AT_LEAST_ONE:
        if getattr(config, name) < 1:
            raise SteikError(f"{name} must be at least 1, got {getattr(config, name)}")
    for name in _NOT_NEGATIVE:
        if not getattr(config, name) >= 0:
            raise SteikError(f"{name} must be 0 or more, got {getattr(config, name)}")
    for name in _POSITIVE:
        if not getattr(config, name) > 0:
            raise SteikError(f"{name} must be positive, got {getattr(config, name)}")
    try:
        WeightSchedule.from_knots(config.schedule, config.schedule_knots)
    except ValueError as error:
        raise SteikError(f"schedule_knots: {error}") from None
    if any(w < 0 for w in config.schedule_knots[0::2]):
        raise SteikError(f"schedule_knots: weights must be 0 or more, got {config.schedule_knots}")


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


def parse_override(text: str) -> tuple[str, Any]:
    """`FIELD=VALUE` from the command line -> (field, value typed like the field), checked as
    `check_overrides` checks the workflow's values."""
    if "=" not in text:
        raise SteikError(f"--set expects FIELD=VALUE, got {text!r}")
    key, raw = (part.strip() for part in text.split("=", 1))
    if key not in _FIELD_TYPES:
        raise SteikError(f"unknown method field {key!r}; valid fields: {', '.join(FIELDS)}")
    kind = _FIELD_TYPES[key]
    value: Any = raw
    try:
        if kind == "int":
            number = float(raw)
            value = int(number) if number.is_integer() else number
        elif kind == "float":
            value = float(raw)
        elif kind == "bool":
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            value = raw.lower() in ("true", "1")
        elif kind.startswith("tuple"):
            items = [v.strip() for v in raw.strip("()[] ").split(",") if v.strip()]
            value = tuple(float(v) for v in items) if key == "schedule_knots" else tuple(items)
    except ValueError:
        raise SteikError(f"--set {key}: cannot read {raw!r} as {kind}") from None
    return key, check_overrides({key: value})[key]
