"""The project's shared vocabulary: method and experiment names, the names each method field
chooses from (neurons, activations, initialisations, divergences, objectives), the method labels
the paper's tables print, and the run folder names of (method, seed).

Imports nothing of the package: the workflow, the tables and the network code read it alike.
"""

from __future__ import annotations

METHODS = (
    "igr_wo_n", "siren_wo_n", "digs", "lin_lln", "qua_ldiv", "steik", "sal", "igr_ff", "phase_ff",
)  # fmt: skip
EXPERIMENTS = ("srb", "shapenet", "scene", "2d")
POISSON = "poisson"
"""Screened Poisson reconstruction (`steik.poisson`): a method of the workflow and the tables
without a network, hence without a MethodConfig."""
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
