"""Method presets: the rows of the paper's tables as frozen dataclasses (SPEC 3-4, 9).

`preset(name, experiment, **overrides)` is the only way the rest of the package gets a
configuration; an unknown method, experiment or field fails with the list of valid ones.

Besides the SPEC 3 family (`loss = "digs"`: siren_wo_n, digs, lin_lln, qua_ldiv, steik), the
presets hold the SPEC 11 baselines with their own objectives (`steik.baselines`): `igr_wo_n`
(IGR's recipe), `sal`, `igr_ff` and `phase_ff`. docs/methods.md gives the source of every value.
`learning_rate(config, iteration)` is the step schedule those baselines use.

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

METHODS = (
    "igr_wo_n", "siren_wo_n", "digs", "lin_lln", "qua_ldiv", "steik", "sal", "igr_ff", "phase_ff",
)  # fmt: skip
EXPERIMENTS = ("srb", "shapenet", "scene", "2d")
POISSON = "poisson"
"""Screened Poisson reconstruction (`steik.poisson`): a method of the workflow and the tables
without a network, hence without a MethodConfig."""
BASELINE_METHODS = ("igr_wo_n", "sal", "igr_ff", "phase_ff")
"""Methods trained with an objective of `steik.baselines` instead of SPEC 3's loss."""
LOSSES = ("digs", "igr", "sal", "phase")
"""Objective families: `digs` = SPEC 3 (sdf, inter, normal, eikonal, div), the others SPEC 11."""
NEURONS = ("linear", "quadratic")
ACTIVATIONS = ("sine", "softplus", "relu")
INITS = ("siren", "geometric_sine", "mfgi", "geometric_relu", "geometric_sal")
OUTPUT_MAPS = ("none", "phase_log")
DIVERGENCES = ("none", "full", "directional")
DIVERGENCE_NORMS = ("l1", "l2")
STEPS = ("auto", "explicit", "compiled", "autograd")
"""Derivative paths of the training step (the `step` field; `steik.derivatives`)."""

METHOD_LABELS: dict[str, str] = {
    "igr_wo_n": "IGR wo n",
    "siren_wo_n": "SIREN wo n",
    "sal": "SAL",
    "igr_ff": "IGR+FF",
    "phase_ff": "PHASE+FF",
    "digs": "DiGS",
    "lin_lln": "Lin + L_L.n.",
    "qua_ldiv": "Qua + L_div",
    "steik": "StEik",
    "poisson": "Screened Poisson",
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
    # -- SPEC 11 baselines (defaults: the SPEC 3 family, unchanged) -----------------------------
    loss: str = "digs"
    """Objective: `digs` (SPEC 3's terms, the trainer's own), `igr`, `sal` or `phase`
    (`steik.baselines`)."""
    skip_in: tuple[int, ...] = ()
    """Weight layers (0 = first) whose input is [h, x] / sqrt(2) (IGR: (4,))."""
    weight_norm: bool = False
    """Weight normalisation of every layer but the last (SAL)."""
    fourier_features: int = 0
    """Number m of Gaussian Fourier features in front of the first layer (0: none)."""
    fourier_scale: float = 1.0
    """Standard deviation of the Fourier frequencies, cycles per unit of the normalised frame."""
    output_map: str = "none"
    """`none`, or `phase_log`: the network's output for extraction/metrics is PHASE's distance
    -sqrt(eps) log(1 - |u|) sign(u) of its phase field u."""
    phase_epsilon: float = 0.01
    """PHASE's epsilon: weight of |grad u|^2 in the energy and scale of the log transform."""
    phase_ball_radius: float = 0.0
    """PHASE reconstruction: radius of the ball around each scan point over which u is averaged
    (0: u at the point itself)."""
    phase_ball_samples: int = 1
    """PHASE reconstruction: samples per ball (drawn in mirrored pairs: a linear u averages to
    its value at the centre)."""
    local_sigma_neighbours: int = 50
    """IGR and SAL: sigma_i of scan point i = distance to its k-th nearest other scan point."""
    sal_global_sigma: float = 1.0
    """SAL: standard deviation of its second (coarse) Gaussian around the scan points."""
    sal_pool_size: int = 250_000
    """SAL: the scan is tiled max(1, pool // N) times for each of its two Gaussian pools."""
    lr_decay_every: int = 0
    """Iterations between two learning-rate decays (0: constant learning rate)."""
    lr_decay_factor: float = 0.5
    """Factor applied to the learning rate at each decay."""
    lr_min: float = 0.0
    """Floor of the decayed learning rate (IGR: 5e-6)."""
    fourier_keep_input: bool = True
    """With Fourier features: whether x itself stays in the first layer's input, `[x, sin, cos]`
    (True), or the input is `[sin, cos]` alone (False; skip connections still carry x)."""
    phase_mu: float = 0.0
    """PHASE: weight mu of mean (|grad w(x_i)| - 1)^2 over the scan points, the unit-gradient
    term public re-implementations add when they have no normals (0: off, the paper's
    points-only loss as we read it). The normals term, with normals, is weighted by
    `w_normal`."""
    step: str = "auto"
    """Derivative path of the training step (`steik.derivatives`): `auto` (explicit derivatives
    where they cover the network, compiled for runs of at least 5e7 iterations x points,
    autograd otherwise), `explicit`, `compiled` or `autograd`. Same numbers up to float
    rounding; left at `auto` it does not enter the digest (see `digest`)."""

    def __post_init__(self) -> None:
        # Configurations read back from JSON (model files) carry lists; keep tuples throughout.
        for name in ("schedule_knots", "notes", "skip_in"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))

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
        """Short hash of every field: identifies a configuration in checkpoints and tables.

        Fields added for the SPEC 11 baselines enter the hash only when they differ from their
        defaults, so every configuration that existed before keeps its digest (and checkpoints).
        """
        data = self.as_dict()
        for name, default in _BASELINE_FIELD_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        text = json.dumps(data, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


FIELDS = tuple(f.name for f in dataclasses.fields(MethodConfig))
_BASELINE_FIELD_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(MethodConfig)[FIELDS.index("loss") :]
}
"""The fields after `notes` and their defaults (see `MethodConfig.digest`)."""


def learning_rate(config: MethodConfig, iteration: int) -> float:
    """Learning rate of the optimisation step with 0-based index `iteration`.

    Constant `lr` when `lr_decay_every` is 0; otherwise the step schedule of IGR's and SAL's
    `StepLearningRateSchedule`: lr * factor^(iteration // every), floored at `lr_min`.
    """
    if config.lr_decay_every == 0:
        return config.lr
    decays = int(iteration) // config.lr_decay_every
    return max(config.lr * config.lr_decay_factor**decays, config.lr_min)


def network_kwargs(config: MethodConfig) -> dict[str, Any]:
    """Keyword arguments of `steik.nn.SDFNetwork` (besides in_dim, n_shapes, seeds) for a
    configuration: the one mapping from method fields to network options."""
    return dict(
        hidden=config.hidden,
        layers=config.layers,
        neuron=config.neuron,
        activation=config.activation,
        init=config.init,
        sphere=config.sphere,
        skip_in=config.skip_in,
        weight_norm=config.weight_norm,
        fourier_features=config.fourier_features,
        fourier_scale=config.fourier_scale,
        fourier_keep_input=config.fourier_keep_input,
        output_map=config.output_map,
        phase_epsilon=config.phase_epsilon,
    )


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


# SPEC 11 baselines: each public code base publishes one reconstruction recipe, used here for
# every experiment (docs/methods.md gives file and line of every value). None has SPEC 3's
# divergence, inter term or gradient clipping.
_NO_DIVERGENCE: dict[str, Any] = dict(
    div="none", schedule="none", schedule_knots=(0.0, 0.0), w_inter=0.0, grad_clip=0.0
)
_IGR: dict[str, Any] = dict(
    loss="igr",
    neuron="linear",
    activation="softplus",
    init="geometric_relu",
    hidden=512,
    layers=8,
    skip_in=(4,),
    **_NO_DIVERGENCE,
    w_sdf=1.0,
    w_normal=1.0,
    w_eikonal=0.1,
    lr=5e-3,
    lr_decay_every=2_000,
    lr_decay_factor=0.5,
    lr_min=5e-6,
    iterations=100_000,
    n_manifold=16_384,
    n_offsurface=2_048,
    offsurface_extent=1.8,
    local_sigma_neighbours=50,
)
"""IGR's reconstruction: 8 x 512 softplus, skip into layer 4, geometric init, squared eikonal
(0.1) on local + global samples, 16,384 scan points, lr 0.005 halved every 2,000 iterations."""
_SAL: dict[str, Any] = dict(
    loss="sal",
    neuron="linear",
    activation="relu",
    init="geometric_sal",
    hidden=512,
    layers=8,
    weight_norm=True,
    **_NO_DIVERGENCE,
    w_sdf=1.0,
    w_normal=0.0,
    w_eikonal=0.0,
    lr=5e-4,
    iterations=2_000,
    n_manifold=0,
    n_offsurface=16_384,
    local_sigma_neighbours=50,
    sal_global_sigma=1.0,
    sal_pool_size=250_000,
)
"""SAL's recon.conf: 8 x 512 ReLU with weight norm, its geometric init, | |u| - h | on 128^2
samples per iteration from its two Gaussian pools, Adam 5e-4 (its lr schedule is switched off
there: adjust_lr = False), 2,000 one-batch epochs."""
_FOURIER: dict[str, Any] = dict(fourier_features=256, fourier_scale=2.0)
"""Fourier features of IGR+FF and PHASE+FF (our choice; docs/methods.md says why)."""
_PHASE: dict[str, Any] = dict(
    _IGR,
    **_FOURIER,
    loss="phase",
    output_map="phase_log",
    phase_epsilon=0.01,
    phase_ball_radius=0.0,
    phase_ball_samples=1,
    w_sdf=1.0,
    w_eikonal=0.0,
    n_offsurface=16_384,
    offsurface_extent=1.1,
)
"""PHASE+FF: IGR's network and schedule with Fourier features, PHASE's energy with eps = 0.01
and reconstruction weight lambda = w_sdf (our choices: no official code is known)."""
_DIGS_SCENE: dict[str, Any] = dict(
    w_sdf=3e3, lr=1e-6, iterations=300_000, layers=9, hidden=512, init="siren"
)
"""DiGS's own scene script (run_scene_recon_exp.sh): 8 hidden layers after the first (9 x 512),
siren init, weights (3e3, 1e2, 1e2, 5e1, 1e1), lr 1e-6, 300,000 iterations."""


def _method_fields(name: str, experiment: str) -> dict[str, Any]:
    """Fields of method `name` in `experiment` before user overrides."""
    if name == "igr_wo_n":
        return dict(_IGR)
    if name == "sal":
        return dict(_SAL)
    if name == "igr_ff":
        return dict(_IGR, **_FOURIER)
    if name == "phase_ff":
        return dict(_PHASE)
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
        if experiment == "scene":
            fields.update(_DIGS_SCENE)
    elif name == "siren_wo_n":
        fields.update(linear, div="none", init="siren", schedule="none", schedule_knots=(0.0, 0.0))
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


def merged_overrides(
    entries: list[Mapping[str, Any]],
    dataset: str,
    method: str,
    experiment: str,
    iterations_scale: float = 1.0,
) -> dict[str, Any]:
    """The method-field overrides a workflow config (`train.overrides`) gives (dataset, method).

    Each entry applies when its optional `datasets`, `methods` and `neurons` lists admit the run;
    later entries win. The iteration count is then scaled by `iterations_scale`, so a quick look
    at a config keeps its schedules' proportions.
    """
    base = preset(method, experiment)
    merged: dict[str, Any] = {}
    for entry in entries:
        if (
            dataset in entry.get("datasets", [dataset])
            and method in entry.get("methods", [method])
            and base.neuron in entry.get("neurons", [base.neuron])
        ):
            merged.update(entry["set"])
    if iterations_scale != 1.0:
        iterations = merged.get("iterations", base.iterations)
        if isinstance(iterations, int) and not isinstance(iterations, bool):
            merged["iterations"] = max(1, round(iterations * iterations_scale))
    return merged


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
        return tuple(_typed_number(key, v) for v in value)
    if key == "skip_in":
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
            raise wrong("a list of layer indices")
        if not all(math.isfinite(v) and float(v).is_integer() for v in value):
            raise wrong("a list of layer indices")
        return tuple(int(v) for v in value)
    if not all(isinstance(v, str) for v in value):
        raise wrong("a list of strings")
    return tuple(value)


def _integral(text: str) -> int:
    """An integer from text that may be written as a float with an integral value (`4.0`)."""
    number = float(text)
    if not number.is_integer():
        raise ValueError(text)
    return int(number)


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
        "step": STEPS,
    }
    for name, valid in choices.items():
        if getattr(config, name) not in valid:
            raise SteikError(
                f"{name} = {getattr(config, name)!r} is not valid; choose one of {', '.join(valid)}"
            )
    for name in _AT_LEAST_ONE:
        if name == "n_manifold" and config.loss == "sal":
            continue  # SAL's loss reads its sample pools only
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
    _validate_baseline_fields(config)


def _validate_baseline_fields(config: MethodConfig) -> None:
    """Ranges of the SPEC 11 fields, and their consistency with the rest of the method."""
    choices = (("loss", LOSSES), ("output_map", OUTPUT_MAPS))
    for name, valid in choices:
        if getattr(config, name) not in valid:
            raise SteikError(
                f"{name} = {getattr(config, name)!r} is not valid; choose one of {', '.join(valid)}"
            )
    if config.weight_norm and config.neuron != "linear":
        raise SteikError("weight_norm needs neuron = linear (SAL's layers); unset one of them")
    if any(not 1 <= i <= config.layers for i in config.skip_in):
        raise SteikError(
            f"skip_in must list layer indices 1..{config.layers}, got {list(config.skip_in)}"
        )
    if config.skip_in and config.hidden <= 3:
        raise SteikError(
            f"skip_in needs hidden > 3 (the input is concatenated), got {config.hidden}"
        )
    ranges = {
        "fourier_features": (0, math.inf, False), "fourier_scale": (0.0, math.inf, True),
        "phase_epsilon": (0.0, 1.0, True), "phase_ball_radius": (0.0, math.inf, False),
        "phase_ball_samples": (1, math.inf, False), "local_sigma_neighbours": (1, math.inf, False),
        "sal_global_sigma": (0.0, math.inf, True), "sal_pool_size": (1, math.inf, False),
        "lr_decay_every": (0, math.inf, False), "lr_decay_factor": (0.0, 1.0, True),
        "lr_min": (0.0, math.inf, False), "phase_mu": (0.0, math.inf, False),
    }  # fmt: skip
    for name, (low, high, open_low) in ranges.items():
        value = getattr(config, name)
        if value < low or (open_low and value == low) or value > high:
            bound = f"{'above' if open_low else 'at least'} {low}"
            bound += f" and at most {high}" if high < math.inf else ""
            raise SteikError(f"{name} must be {bound}, got {value}")
    if config.phase_epsilon == 1.0:
        raise SteikError("phase_epsilon must be below 1, got 1.0")
    if config.lr_min > config.lr:
        raise SteikError(f"lr_min ({config.lr_min}) must not exceed lr ({config.lr})")
    if config.loss != "digs" and config.div != "none":
        raise SteikError(
            f"div = {config.div!r} belongs to the digs objective; loss = {config.loss!r} needs "
            "div = none"
        )
    if config.output_map == "phase_log" and config.loss != "phase":
        raise SteikError("output_map = phase_log is PHASE's transform; it needs loss = phase")
    if config.phase_mu > 0 and config.loss != "phase":
        raise SteikError(f"phase_mu weights a PHASE term; loss = {config.loss!r} has none, set 0")
    if not config.fourier_keep_input and config.fourier_features == 0:
        raise SteikError("fourier_keep_input = false needs Fourier features (fourier_features > 0)")


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
            parse = {"schedule_knots": float, "skip_in": _integral}.get(key, str)
            value = tuple(parse(v) for v in items)
    except ValueError:
        raise SteikError(f"--set {key}: cannot read {raw!r} as {kind}") from None
    return key, check_overrides({key: value})[key]
