"""Method presets as data: the rows of the paper's tables (SPEC 3-4, 9) and the SPEC 11 baselines.

Each method is a list of layers; a layer maps an experiment to the fields it sets, and later
layers win over earlier ones and over `MethodConfig`'s defaults. `preset(name, experiment,
**overrides)` is the only way the rest of the package gets a configuration; an unknown method,
experiment or field fails with the list of valid ones. `merged_overrides` picks the workflow
config's `train.overrides` entries that apply to a run.

Besides the SPEC 3 family (`loss = "digs"`: siren_wo_n, digs, lin_lln, qua_ldiv, steik), the
presets hold the SPEC 11 baselines with their own objectives (`steik.baselines`): `igr_wo_n`
(IGR's recipe), `sal`, `igr_ff` and `phase_ff`. docs/methods.md gives the source of every value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from steik.errors import SteikError
from steik.methods.config import MethodConfig, validate
from steik.methods.overrides import check_overrides
from steik.methods.vocabulary import EXPERIMENTS, METHODS

Fields = dict[str, Any]
Layer = Mapping[str, Fields]
"""Experiment -> the fields a preset layer sets there (an experiment it lacks: none)."""


def _every(fields: Fields) -> Layer:
    """A layer that sets the same fields in every experiment."""
    return {experiment: fields for experiment in EXPERIMENTS}


SCENE_SCHEDULE = (1e1, 0.1, 1e1, 0.3, 0.0, 0.0)

# Per experiment: base settings of StEik and of DiGS (SPEC 3-4). Baselines without a divergence
# take DiGS's settings with the terms they do not use set to zero.
_STEIK_BASE: Layer = {
    "srb": dict(w_sdf=2e3, lr=1e-4),
    "shapenet": dict(w_sdf=5e3, lr=5e-5),
    "scene": dict(
        w_sdf=5e3, lr=8e-6, iterations=100_000, schedule_knots=SCENE_SCHEDULE, layers=8,
        hidden=256, init="siren",
    ),
    "2d": dict(
        w_sdf=3e3, lr=5e-5, layers=4, hidden=128, grad_clip=0.0, sphere_scaling=1.0,
        offsurface_extent=1.2,
    ),
}  # fmt: skip
_DIGS_BASE: Layer = {
    "srb": dict(w_sdf=3e3, lr=5e-5),
    "shapenet": dict(w_sdf=3e3, lr=5e-5),
    "scene": dict(
        w_sdf=5e3, lr=8e-6, iterations=100_000, schedule_knots=SCENE_SCHEDULE, layers=8,
        hidden=512,
    ),
    "2d": dict(
        w_sdf=3e3, lr=5e-5, layers=4, hidden=256, grad_clip=0.0, sphere_scaling=1.0,
        offsurface_extent=1.2,
    ),
}  # fmt: skip
# The two neurons' networks. The reference 2D scripts pass "4 hidden layers" to both networks,
# which the linear network counts after its first layer (5 hidden widths) and the quadratic one
# in total (4): DiGS's sanity check is a linear 5 x 128, StEik's a quadratic 4 x 128.
_LINEAR: Layer = {
    "srb": dict(neuron="linear", hidden=256),
    "shapenet": dict(neuron="linear", hidden=256),
    "scene": dict(neuron="linear", hidden=512),
    "2d": dict(neuron="linear", hidden=128, layers=5),
}
_QUADRATIC: Layer = {
    "srb": dict(neuron="quadratic", hidden=128),
    "shapenet": dict(neuron="quadratic", hidden=128),
    "scene": dict(neuron="quadratic", hidden=256),
    "2d": dict(neuron="quadratic", hidden=128),
}
_NO_SCHEDULE: Fields = dict(schedule="none", schedule_knots=(0.0, 0.0))
_DIGS_SCENE: Fields = dict(
    w_sdf=3e3, lr=1e-6, iterations=300_000, layers=9, hidden=512, init="siren"
)
"""DiGS's own scene script (run_scene_recon_exp.sh): 8 hidden layers after the first (9 x 512),
siren init, weights (3e3, 1e2, 1e2, 5e1, 1e1), lr 1e-6, 300,000 iterations."""

# SPEC 11 baselines: each public code base publishes one reconstruction recipe, used here for
# every experiment (docs/methods.md gives file and line of every value). None has SPEC 3's
# divergence, inter term or gradient clipping.
_NO_DIVERGENCE: Fields = dict(div="none", **_NO_SCHEDULE, w_inter=0.0, grad_clip=0.0)
_IGR: Fields = dict(
    loss="igr", neuron="linear", activation="softplus", init="geometric_relu", hidden=512,
    layers=8, skip_in=(4,), **_NO_DIVERGENCE, w_sdf=1.0, w_normal=1.0, w_eikonal=0.1, lr=5e-3,
    lr_decay_every=2_000, lr_decay_factor=0.5, lr_min=5e-6, iterations=100_000,
    n_manifold=16_384, n_offsurface=2_048, offsurface_extent=1.8, local_sigma_neighbours=50,
)  # fmt: skip
"""IGR's reconstruction: 8 x 512 softplus, skip into layer 4, geometric init, squared eikonal
(0.1) on local + global samples, 16,384 scan points, lr 0.005 halved every 2,000 iterations."""
_SAL: Fields = dict(
    loss="sal", neuron="linear", activation="relu", init="geometric_sal", hidden=512, layers=8,
    weight_norm=True, **_NO_DIVERGENCE, w_sdf=1.0, w_normal=0.0, w_eikonal=0.0, lr=5e-4,
    iterations=2_000, n_manifold=0, n_offsurface=16_384, local_sigma_neighbours=50,
    sal_global_sigma=1.0, sal_pool_size=250_000,
)  # fmt: skip
"""SAL's recon.conf: 8 x 512 ReLU with weight norm, its geometric init, | |u| - h | on 128^2
samples per iteration from its two Gaussian pools, Adam 5e-4 (its lr schedule is switched off
there: adjust_lr = False), 2,000 one-batch epochs."""
_FOURIER: Fields = dict(fourier_features=256, fourier_scale=2.0)
"""Fourier features of IGR+FF and PHASE+FF (our choice; docs/methods.md says why)."""
_PHASE: Fields = dict(
    loss="phase", output_map="phase_log", phase_epsilon=0.01, phase_ball_radius=0.0,
    phase_ball_samples=1, w_sdf=1.0, w_eikonal=0.0, n_offsurface=16_384, offsurface_extent=1.1,
)  # fmt: skip
"""PHASE+FF over IGR+FF: IGR's network and schedule with Fourier features, PHASE's energy with
eps = 0.01 and reconstruction weight lambda = w_sdf (our choices: no official code is known)."""

_PRESETS: dict[str, tuple[Layer, ...]] = {
    "igr_wo_n": (_every(_IGR),),
    "siren_wo_n": (_DIGS_BASE, _LINEAR, _every(dict(div="none", init="siren", **_NO_SCHEDULE))),
    "digs": (_DIGS_BASE, _LINEAR, _every(dict(div="full", init="mfgi")), {"scene": _DIGS_SCENE}),
    "lin_lln": (_STEIK_BASE, _LINEAR, _every(dict(div="directional", init="mfgi"))),
    "qua_ldiv": (_STEIK_BASE, _QUADRATIC, _every(dict(div="full"))),
    "steik": (_STEIK_BASE, _QUADRATIC, _every(dict(div="directional"))),
    "sal": (_every(_SAL),),
    "igr_ff": (_every(_IGR), _every(_FOURIER)),
    "phase_ff": (_every(_IGR), _every(_FOURIER), _every(_PHASE)),
}
"""Method -> its layers, applied in order (every method of `METHODS`, in its order)."""


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
    fields: Fields = {}
    for layer in _PRESETS[name]:
        fields.update(layer.get(experiment, {}))
    fields.update(check_overrides(overrides))
    config = MethodConfig(name=name, experiment=experiment, **fields)
    validate(config)
    return config


def merged_overrides(
    entries: list[Mapping[str, Any]], dataset: str, method: str, experiment: str
) -> dict[str, Any]:
    """The method-field overrides a workflow config (`train.overrides`) gives (dataset, method),
    as written there (`preset` checks them).

    Each entry applies when its optional `datasets`, `methods` and `neurons` lists admit the run
    (`neurons`: the preset's neuron); later entries win.
    """
    neuron = preset(method, experiment).neuron
    merged: dict[str, Any] = {}
    for entry in entries:
        if (
            dataset in entry.get("datasets", [dataset])
            and method in entry.get("methods", [method])
            and neuron in entry.get("neurons", [neuron])
        ):
            merged.update(entry["set"])
    return merged
