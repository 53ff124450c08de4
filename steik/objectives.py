"""What one training iteration optimises: the points it draws and the loss terms on them.

An objective is a method's loss family. It draws each shape's points for an iteration from that
shape's own generator (so K shapes trained together draw exactly what they would draw alone),
weights its terms by the training fraction, and returns every term per shape (`[K]`). The
trainer knows nothing else about losses; `objective_for(config)` picks the family.

`DigsObjective` is SPEC 3's loss, shared by SIREN (without normals), DiGS, StEik and the two
ablations: sdf, inter, normal, eikonal and divergence terms on scan points plus uniform
off-surface points. The SPEC 11 baselines' objectives (IGR, SAL, PHASE) are in
`steik.baselines`.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from steik import derivatives
from steik.baselines import OBJECTIVES
from steik.losses import (
    directional_divergence,
    divergence_term,
    eikonal_term,
    full_divergence,
    inter_term,
    normal_term,
    sdf_term,
)
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


def training_terms(
    net: Network,
    x_manifold: Tensor,
    x_off: Tensor,
    normals: Tensor | None,
    config: MethodConfig,
    with_div: bool = True,
) -> dict[str, Tensor]:
    """`loss_terms` as a training step computes them: by explicit derivatives
    (`steik.derivatives`, no double backward) for the networks that module covers, by autograd
    for any other network. Both give the same numbers."""
    if derivatives.uses_explicit(net):
        return derivatives.explicit_loss_terms(net, x_manifold, x_off, normals, config, with_div)
    return loss_terms(net, x_manifold, x_off, normals, config, with_div)


def loss_terms(
    net: Network,
    x_manifold: Tensor,
    x_off: Tensor,
    normals: Tensor | None,
    config: MethodConfig,
    with_div: bool = True,
) -> dict[str, Tensor]:
    """Every loss term of SPEC 3, one value per shape (`[K]` each).

    `x_manifold [K, Nm, d]` and `x_off [K, No, d]` are separate leaves so that the divergence's
    extra backward pass runs through the off-surface forward only. With `with_div` false (its
    weight has decayed to zero) the divergence is not evaluated and reported as NaN.
    """
    x_m = x_manifold.requires_grad_(True)
    x_o = x_off.requires_grad_(True)
    u_m, u_o = net(x_m), net(x_o)
    g_m, g_o = torch.autograd.grad((u_m.sum(), u_o.sum()), (x_m, x_o), create_graph=True)
    zero = torch.zeros(u_m.shape[0], dtype=u_m.dtype, device=u_m.device)
    terms = {
        "sdf": sdf_term(u_m),
        "inter": inter_term(u_o) if config.w_inter else zero,
        "eikonal": eikonal_term(torch.cat([g_m, g_o], dim=1)),
        "normal": normal_term(g_m, normals) if config.use_normals and normals is not None else zero,
        "div": torch.full_like(zero, math.nan),
    }
    if config.div != "none" and with_div:
        divergence = directional_divergence if config.div == "directional" else full_divergence
        terms["div"] = divergence_term(divergence(x_o, g_o), config.div, config.div_norm)
    return terms


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
        return training_terms(
            net, batch["manifold"], batch["offsurface"], batch.get("normals"), self.config, with_div
        )


def objective_for(config: MethodConfig) -> Objective:
    """The loss family of a method configuration (`config.loss`)."""
    if config.loss == "digs":
        return DigsObjective(config)
    return OBJECTIVES[config.loss](config)
