"""Loss terms, divergences and divergence-weight schedules (SPEC 3).

Every term reduces over points only and returns one value per shape (`[K]`), so K shapes trained
together never mix. Divergences take `points [K, N, d]` (requiring grad) and `grads = du/dpoints`
taken with `create_graph=True`, and return the per-point value `[K, N]` before any norm or clamp.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

ScheduleKind = Literal["linear", "quintic", "step", "none"]
SCHEDULES = ("linear", "quintic", "step", "none")
DIRECTIONAL_EPS = 1e-5
FULL_DIV_CLAMP = (0.1, 50.0)


def sdf_term(u_manifold: Tensor) -> Tensor:
    """Mean |u| on the scan points: `[K, N] -> [K]`."""
    return u_manifold.abs().mean(dim=-1)


def inter_term(u_offsurface: Tensor) -> Tensor:
    """Mean exp(-100 |u|) off the surface, discouraging spurious zero crossings: `[K, N] -> [K]`."""
    return torch.exp(-100.0 * u_offsurface.abs()).mean(dim=-1)


def eikonal_term(grads: Tensor) -> Tensor:
    """Mean | ||grad u|| - 1 | over all given points: `[K, N, d] -> [K]`."""
    return (grads.norm(dim=-1) - 1.0).abs().mean(dim=-1)


def normal_term(grads: Tensor, normals: Tensor) -> Tensor:
    """Mean 1 - |cos(grad u, n)| on the scan points (orientation-free): `[K, N, d] -> [K]`."""
    cos = torch.nn.functional.cosine_similarity(grads, normals, dim=-1, eps=1e-8)
    return (1.0 - cos.abs()).mean(dim=-1)


def full_divergence(points: Tensor, grads: Tensor) -> Tensor:
    """Laplacian (trace of the Hessian) of u, DiGS's L_div integrand: `[K, N]`.

    Needs one backward pass per dimension.
    """
    lap = torch.zeros(grads.shape[:-1], dtype=grads.dtype, device=grads.device)
    for i in range(points.shape[-1]):
        (row,) = torch.autograd.grad(grads[..., i].sum(), points, create_graph=True)
        lap = lap + row[..., i]
    return lap


def directional_divergence(points: Tensor, grads: Tensor) -> Tensor:
    """StEik's L_L.n. integrand `g^T H g / (|g|^2 + 1e-5)`: the second derivative of u along the
    normal direction only, so level sets keep their curvature: `[K, N]`.

    One extra backward pass: H g = grad(0.5 |g|^2) because the Hessian is symmetric.
    """
    sq = (grads * grads).sum(dim=-1)
    (hg,) = torch.autograd.grad(0.5 * sq.sum(), points, create_graph=True)
    return (hg * grads).sum(dim=-1) / (sq + DIRECTIONAL_EPS)


def divergence_term(values: Tensor, kind: str, norm: str) -> Tensor:
    """Reduce per-point divergences `[K, N]` to `[K]` as SPEC 3 prescribes.

    Full divergence is clamped to [0.1, 50] after the norm (non-finite values count as 0);
    the directional divergence is not clamped.
    """
    v = values.abs() if norm == "l1" else values.square()
    if kind == "full":
        v = v.clamp(*FULL_DIV_CLAMP)
        v = torch.where(torch.isfinite(v), v, torch.zeros_like(v))
    return v.mean(dim=-1)


@dataclass(frozen=True)
class WeightSchedule:
    """A piecewise weight over the training fraction t in [0, 1].

    Built from the reference code's flat knot list `(w0, f1, w1, ..., fn, wn, w_end)`: weight w0
    at t = 0, wi at fi, w_end at t = 1. Between knots `linear` interpolates, `quintic` eases with
    w_a + (w_b - w_a)(1 - (1 - s)^5), `step` holds the left value, `none` keeps w0 throughout.
    """

    kind: ScheduleKind
    fractions: tuple[float, ...]
    weights: tuple[float, ...]

    @classmethod
    def from_knots(cls, kind: str, knots: Sequence[float]) -> WeightSchedule:
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; valid: {', '.join(SCHEDULES)}")
        knots = [float(v) for v in knots]
        if len(knots) < 2 or len(knots) % 2 != 0:
            raise ValueError(
                f"schedule knots must be (w0, f1, w1, ..., w_end), an even count >= 2; got {knots}"
            )
        inner = knots[1:-1]
        fractions = (0.0, *inner[0::2], 1.0)
        weights = (knots[0], *inner[1::2], knots[-1])
        if any(b < a for a, b in itertools.pairwise(fractions)) or not all(
            0.0 <= f <= 1.0 for f in fractions
        ):
            raise ValueError(f"schedule fractions must rise within [0, 1]; got {fractions}")
        return cls(kind, fractions, weights)

    def __call__(self, t: float) -> float:
        """The weight at training fraction t (clipped to [0, 1])."""
        t = min(max(t, 0.0), 1.0)
        if self.kind == "none":
            return self.weights[0]
        i = max(bisect.bisect_right(self.fractions, t) - 1, 0)
        if i >= len(self.fractions) - 1:
            return self.weights[-1]
        f_a, f_b = self.fractions[i], self.fractions[i + 1]
        w_a, w_b = self.weights[i], self.weights[i + 1]
        if self.kind == "step" or f_b == f_a:
            return w_a
        s = (t - f_a) / (f_b - f_a)
        if self.kind == "linear":
            return w_a + (w_b - w_a) * s
        return w_a + (w_b - w_a) * (1.0 - (1.0 - s) ** 5)
