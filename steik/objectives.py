"""What one training iteration optimises: the points it draws and the loss terms on them.

An objective is a method's loss family. It draws each shape's points for an iteration from that
shape's own generator (so K shapes trained together draw exactly what they would draw alone),
weights its terms by the training fraction, and returns every term per shape (`[K]`). The
trainer knows nothing else about losses; `objective_for(config)` picks the family.

`DigsObjective` is SPEC 3's loss, shared by SIREN (without normals), DiGS, StEik and the two
ablations: sdf, inter, normal, eikonal and divergence terms on scan points plus uniform
off-surface points (`loss_terms`: the derivatives by the path of the method's `step` field,
`steik.derivatives`, the terms from them by `steik.losses.digs_terms`). The SPEC 11 baselines'
objectives (IGR, SAL, PHASE) are in `steik.baselines`.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from steik import derivatives
from steik.baselines import OBJECTIVES
from steik.losses import TermSpec
from steik.methods import MethodConfig
from steik.schedule import WeightSchedule

log = logging.getLogger(__name__)

Network = torch.nn.Module
"""Maps points `[K, N, d]` to values `[K, N]`."""


@runtime_checkable
class Objective(Protocol):
    """A loss family: per-shape sampling, term weights and terms."""

    terms: tuple[str, ...]
    """Names of the terms it reports (also the training log's columns)."""

    def prepare(
        self, points: np.ndarray, normals: np.ndarray | None, *, seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Per-shape arrays computed once before training from the normalised scan `points
        [N, d]` (random ones from `seed` only); the trainer moves them to the device."""
        ...

    def sample(self, data: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        """One shape's points for one iteration (`[n, ...]` each), all randomness from
        `generator`; `data` holds `points [N, d]`, optional `normals [N, d]` and what `prepare`
        returned, on the device."""
        ...

    def weights(self, fraction: float) -> dict[str, float]:
        """The weight of every term at training fraction t in [0, 1]."""
        ...

    def loss_terms(
        self, net: Network, batch: dict[str, Tensor], with_div: bool
    ) -> dict[str, Tensor]:
        """Every term, one value per shape (`[K]`), on the stacked batch (`[K, n, ...]`)."""
        ...


def loss_terms(
    net: Network,
    x_manifold: Tensor,
    x_off: Tensor,
    normals: Tensor | None,
    config: MethodConfig,
    with_div: bool = True,
    *,
    step: str,
) -> dict[str, Tensor]:
    """Every loss term of SPEC 3, one value per shape (`[K]` each), by derivative path `step`
    (`explicit`, `compiled` or `autograd`; `steik.derivatives.resolve_step` picks a run's).

    `x_manifold [K, Nm, d]` with `normals [K, Nm, d]` (or None) and `x_off [K, No, d]`. With
    `with_div` false (its weight has decayed to zero) the divergence is not evaluated and
    reported as NaN.
    """
    spec = TermSpec.of(config, with_div, normals is not None)
    normals = normals if spec.normals else None
    return derivatives.step_terms(step, net, x_manifold, x_off, normals, spec)


class DigsObjective:
    """SPEC 3: scan points without replacement (with replacement and one warning for clouds
    smaller than a batch) and uniform off-surface points in [-extent, extent]^d."""

    terms = ("sdf", "inter", "normal", "eikonal", "div")

    def __init__(self, config: MethodConfig) -> None:
        self.config = config
        self.schedule = WeightSchedule.from_knots(config.schedule, config.schedule_knots)
        self._warned_small = False

    def prepare(
        self, points: np.ndarray, normals: np.ndarray | None, *, seed: int = 0
    ) -> dict[str, np.ndarray]:
        return {}

    def sample(self, data: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        c = self.config
        points = data["points"]
        n, dim = points.shape
        if n >= c.n_manifold:
            index = torch.randperm(n, generator=generator)[: c.n_manifold]
        else:
            if not self._warned_small:
                log.warning(
                    "a scan has %d points, fewer than the %d drawn per iteration: sampling with "
                    "replacement",
                    n,
                    c.n_manifold,
                )
                self._warned_small = True
            index = torch.randint(n, (c.n_manifold,), generator=generator)
        off = torch.rand(c.n_offsurface, dim, generator=generator, dtype=torch.float64) * 2 - 1
        index = index.to(points.device)
        out = {
            "manifold": points[index],
            "offsurface": (off * c.offsurface_extent).to(points.device, points.dtype),
        }
        if "normals" in data:
            out["normals"] = data["normals"][index]
        return out

    def weights(self, fraction: float) -> dict[str, float]:
        c = self.config
        return {
            "sdf": c.w_sdf,
            "inter": c.w_inter,
            "normal": c.w_normal,
            "eikonal": c.w_eikonal,
            "div": self.schedule(fraction) if c.div != "none" else 0.0,
        }

    def loss_terms(
        self, net: Network, batch: dict[str, Tensor], with_div: bool
    ) -> dict[str, Tensor]:
        """The terms on the derivative path of the method's `step` field for this network."""
        step = derivatives.resolve_step(self.config, net)
        return loss_terms(
            net,
            batch["manifold"],
            batch["offsurface"],
            batch.get("normals"),
            self.config,
            with_div,
            step=step,
        )


def objective_for(config: MethodConfig) -> Objective:
    """The loss family of a method configuration (`config.loss`)."""
    if config.loss == "digs":
        return DigsObjective(config)
    return OBJECTIVES[config.loss](config)
