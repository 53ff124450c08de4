"""`MethodConfig`: every field of one training run, with its type, default, accepted values and
meaning, and the views the rest of the package reads from it (network options, learning rate,
digest).

Each field declares the values it accepts beside its type and default (`spec`: `choices`, or the
range of a number); `steik.typecheck.typed` reads that for an override as for a whole preset, so a
new field with a fixed set of values is one line here. `validate` adds what fields say about each
other. Imports neither torch nor numpy, so the workflow can check a configuration while it builds
its job graph.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from steik.errors import SteikError
from steik.methods.vocabulary import (
    ACTIVATIONS,
    DIVERGENCE_NORMS,
    DIVERGENCES,
    INITS,
    LOSSES,
    NEURONS,
    OUTPUT_MAPS,
    STEPS,
)
from steik.schedule import SCHEDULES, WeightSchedule
from steik.typecheck import spec, typed

SRB_SCHEDULE = (1e2, 0.2, 1e2, 0.4, 0.0, 0.0)
"""Divergence-weight knots of the SRB and ShapeNet presets (the default)."""


def _weight(default: float) -> Any:
    """A field that weights a loss term: a number, 0 or more (0: the term does not count)."""
    return spec(default, at_least=0)


@dataclass(frozen=True)
class MethodConfig:
    """Everything that defines one training run of one method on one shape.

    The field order is part of the stored format: `digest` leaves out the fields from `loss` on
    at their defaults, so new fields go at the end.
    """

    name: str
    """Method name (a row of the paper's tables)."""
    experiment: str
    """Experiment whose settings were used: srb, shapenet, scene or 2d."""
    # -- network ------------------------------------------------------------------------------
    neuron: str = spec("quadratic", choices=NEURONS)
    """`linear` (z = W x + b) or `quadratic` (StEik's neuron)."""
    activation: str = spec("sine", choices=ACTIVATIONS)
    """`sine` (sin 30 z), `softplus` (beta 100) or `relu`."""
    init: str = spec("mfgi", choices=INITS)
    """siren, geometric_sine, mfgi or geometric_relu (SPEC 2), geometric_sal (SAL)."""
    hidden: int = spec(128, at_least=1)
    """Width of each hidden layer."""
    layers: int = spec(5, at_least=1)
    """Number of hidden widths (`layers x hidden`)."""
    sphere_radius: float = spec(1.6, above=0)
    """Radius of the initial zero level set for the geometric inits."""
    sphere_scaling: float = spec(0.1, above=0)
    """Output scaling of the sphere mapping."""
    # -- SPEC 3's objective: divergence, weights of its terms, divergence schedule -------------
    div: str = spec("directional", choices=DIVERGENCES)
    """Divergence term: `none`, `full` (DiGS L_div) or `directional` (StEik L_L.n.)."""
    div_norm: str = spec("l1", choices=DIVERGENCE_NORMS)
    """`l1` or `l2` applied to the per-point divergence."""
    # weights of SPEC 3's terms (the baselines read w_sdf, w_normal, w_eikonal for their own)
    w_sdf: float = _weight(2e3)
    w_inter: float = _weight(1e2)
    w_normal: float = _weight(1e2)
    w_eikonal: float = _weight(5e1)
    schedule: str = spec("linear", choices=SCHEDULES)
    """Divergence-weight schedule between knots: linear, quintic, step or none."""
    schedule_knots: tuple[float, ...] = SRB_SCHEDULE
    """Flat knot list (w0, f1, w1, ..., w_end); w0 is the divergence weight at the start."""
    use_normals: bool = False
    """Whether the normal term is used (the headline methods use points only)."""
    # -- optimisation and sampling ------------------------------------------------------------
    lr: float = spec(1e-4, above=0)
    """Adam learning rate (constant unless `lr_decay_every` is set)."""
    iterations: int = spec(10_000, at_least=1)
    n_manifold: int = spec(15_000, at_least=0)
    """Scan points per iteration (at least 1 but for SAL, whose loss reads its pools only)."""
    n_offsurface: int = spec(15_000, at_least=1)
    """Uniform off-surface points per iteration."""
    offsurface_extent: float = spec(1.1, above=0)
    """Off-surface points are uniform in [-extent, extent]^d (normalised frame)."""
    grad_clip: float = spec(10.0, at_least=0)
    """Per-shape gradient-norm clip; 0 disables clipping."""
    # -- logging ------------------------------------------------------------------------------
    log_every: int = spec(100, at_least=1)
    """Iterations between two rows of the training log."""
    checkpoint_every: int = spec(1000, at_least=0)
    """Iterations between two checkpoints (0: only at the end)."""
    notes: tuple[str, ...] = ()
    """Free-form provenance notes (e.g. what was scaled down)."""
    # -- SPEC 11 baselines (defaults: the SPEC 3 family, unchanged) ---------------------------
    loss: str = spec("digs", choices=LOSSES)
    """Objective: `digs` (SPEC 3's terms, the trainer's own), `igr`, `sal` or `phase`
    (`steik.baselines`)."""
    skip_in: tuple[int, ...] = ()
    """Weight layers (0 = first) whose input is [h, x] / sqrt(2) (IGR: (4,))."""
    weight_norm: bool = False
    """Weight normalisation of every layer but the last (SAL)."""
    fourier_features: int = spec(0, at_least=0)
    """Number m of Gaussian Fourier features in front of the first layer (0: none)."""
    fourier_scale: float = spec(1.0, above=0)
    """Standard deviation of the Fourier frequencies, cycles per unit of the normalised frame."""
    output_map: str = spec("none", choices=OUTPUT_MAPS)
    """`none`, or `phase_log`: the network's output for extraction/metrics is PHASE's distance
    -sqrt(eps) log(1 - |u|) sign(u) of its phase field u."""
    phase_epsilon: float = spec(0.01, above=0, below=1)
    """PHASE's epsilon: weight of |grad u|^2 in the energy and scale of the log transform."""
    phase_ball_radius: float = spec(0.0, at_least=0)
    """PHASE reconstruction: radius of the ball around each scan point over which u is averaged
    (0: u at the point itself)."""
    phase_ball_samples: int = spec(1, at_least=1)
    """PHASE reconstruction: samples per ball (drawn in mirrored pairs: a linear u averages to
    its value at the centre)."""
    local_sigma_neighbours: int = spec(50, at_least=1)
    """IGR and SAL: sigma_i of scan point i = distance to its k-th nearest other scan point."""
    sal_global_sigma: float = spec(1.0, above=0)
    """SAL: standard deviation of its second (coarse) Gaussian around the scan points."""
    sal_pool_size: int = spec(250_000, at_least=1)
    """SAL: the scan is tiled max(1, pool // N) times for each of its two Gaussian pools."""
    lr_decay_every: int = spec(0, at_least=0)
    """Iterations between two learning-rate decays (0: constant learning rate)."""
    lr_decay_factor: float = spec(0.5, above=0, at_most=1)
    """Factor applied to the learning rate at each decay."""
    lr_min: float = spec(0.0, at_least=0)
    """Floor of the decayed learning rate (IGR: 5e-6)."""
    fourier_keep_input: bool = True
    """With Fourier features: whether x itself stays in the first layer's input, `[x, sin, cos]`
    (True), or the input is `[sin, cos]` alone (False; skip connections still carry x)."""
    phase_mu: float = _weight(0.0)
    """PHASE: weight mu of mean (|grad w(x_i)| - 1)^2 over the scan points, the unit-gradient
    term public re-implementations add when they have no normals (0: off, the paper's
    points-only loss as we read it). The normals term, with normals, is weighted by
    `w_normal`."""
    step: str = spec("auto", choices=STEPS)
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
        return cls(**{k: v for k, v in values.items() if k in FIELDS})

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


_NETWORK_FIELDS = (
    "hidden", "layers", "neuron", "activation", "init", "skip_in", "weight_norm",
    "fourier_features", "fourier_scale", "fourier_keep_input", "output_map", "phase_epsilon",
)  # fmt: skip
"""The fields `steik.nn.SDFNetwork` takes under their own names."""


def network_kwargs(config: MethodConfig) -> dict[str, Any]:
    """Keyword arguments of `steik.nn.SDFNetwork` (besides in_dim, n_shapes, seeds) for a
    configuration: the one mapping from method fields to network options."""
    return {name: getattr(config, name) for name in _NETWORK_FIELDS} | {"sphere": config.sphere}


def validate(config: MethodConfig) -> None:
    """Reject a configuration no run could use: each field against its type and spec, then what
    fields say about each other. The message names the field and what it accepts."""
    for name in FIELDS:
        typed(MethodConfig, name, getattr(config, name), f"method field {name}")
    if config.n_manifold < 1 and config.loss != "sal":
        raise SteikError(f"n_manifold must be at least 1, got {config.n_manifold}")
    try:
        WeightSchedule.from_knots(config.schedule, config.schedule_knots)
    except ValueError as error:
        raise SteikError(f"schedule_knots: {error}") from None
    if any(w < 0 for w in config.schedule_knots[0::2]):
        raise SteikError(f"schedule_knots: weights must be 0 or more, got {config.schedule_knots}")
    _validate_baseline_fields(config)


def _validate_baseline_fields(config: MethodConfig) -> None:
    """The SPEC 11 fields' consistency with the rest of the method."""
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
