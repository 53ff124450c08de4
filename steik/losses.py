"""SPEC 3's loss: its terms, and their one assembly from a network's derivatives.

Every term reduces over points only and returns one value per shape (`[K]`), so K shapes trained
together never mix. The terms need the network's value u, its input gradient g and, on the
off-surface points, one second-order quantity; whichever path of `steik.derivatives` computed
those (autograd, explicit, compiled), it hands them over as one `Derivatives`, and `digs_terms`
turns that into the five terms. The zero and NaN conventions, the directional divergence's
normalisation and the full divergence's clamp are therefore written here once. The
divergence-weight schedules are in `steik.schedule`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from steik.methods import MethodConfig

DIRECTIONAL_EPS = 1e-5
"""StEik's directional divergence divides g^T H g by |g|^2 + DIRECTIONAL_EPS."""
FULL_DIV_CLAMP = (0.1, 50.0)
"""DiGS's full divergence is clamped to this range after its norm."""
NORMAL_COS_EPS = 1e-8
"""The normal term's cosine similarity guards its norms with this epsilon."""


class Derivatives(NamedTuple):
    """u and its input derivatives on one iteration's points: the first `n_manifold` of the N
    points are scan points, the others off-surface points."""

    u: Tensor
    """`[K, N]` values."""
    grad: Tensor
    """`[K, N, d]` input gradients g."""
    second: Tensor | None
    """`[K, N - n_manifold]` on the off-surface points: g^T H g (directional divergence) or the
    Laplacian tr H (full divergence), H the Hessian of u in x; None without a divergence."""
    n_manifold: int
    """How many of the N points are scan points."""


@dataclass(frozen=True)
class TermSpec:
    """What one evaluation of the terms depends on besides the numbers (hashable: the compiled
    step keeps one compiled function per spec)."""

    div: str
    """`none` (also while the divergence's weight is zero), `full` or `directional`."""
    div_norm: str
    """`l1` or `l2` of the per-point divergence."""
    inter: bool
    """Whether the inter term is evaluated (else reported as 0)."""
    normals: bool
    """Whether the normal term is evaluated (else reported as 0)."""

    @classmethod
    def of(cls, config: MethodConfig, with_div: bool, has_normals: bool) -> TermSpec:
        """The spec of a method's step: the divergence only when `with_div` (its weight is not
        zero), the normal term only when the method uses normals and the batch has them."""
        return cls(
            div=config.div if with_div else "none",
            div_norm=config.div_norm,
            inter=bool(config.w_inter),
            normals=bool(config.use_normals and has_normals),
        )


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
    cos = torch.nn.functional.cosine_similarity(grads, normals, dim=-1, eps=NORMAL_COS_EPS)
    return (1.0 - cos.abs()).mean(dim=-1)


def normalised_directional(second: Tensor, grads: Tensor) -> Tensor:
    """StEik's L_L.n. integrand `g^T H g / (|g|^2 + 1e-5)` from `second = g^T H g [K, N]` and
    `grads = g [K, N, d]`: the second derivative of u along the normal direction only, so level
    sets keep their curvature: `[K, N]`."""
    return second / ((grads * grads).sum(dim=-1) + DIRECTIONAL_EPS)


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


def digs_terms(found: Derivatives, normals: Tensor | None, spec: TermSpec) -> dict[str, Tensor]:
    """Every term of SPEC 3, one value per shape (`[K]` each): sdf and normal on the scan
    points (`normals [K, n_manifold, d]`, or None), inter and the divergence on the off-surface
    points, eikonal on all. A term the spec leaves out is 0, the divergence NaN."""
    n = found.n_manifold
    u_m, u_o, g_m = found.u[:, :n], found.u[:, n:], found.grad[:, :n]
    zero = torch.zeros(found.u.shape[0], dtype=found.u.dtype, device=found.u.device)
    terms = {
        "sdf": sdf_term(u_m),
        "inter": inter_term(u_o) if spec.inter else zero,
        "eikonal": eikonal_term(found.grad),
        "normal": normal_term(g_m, normals) if spec.normals and normals is not None else zero,
        "div": torch.full_like(zero, math.nan),
    }
    if found.second is not None:
        values = found.second
        if spec.div == "directional":
            values = normalised_directional(values, found.grad[:, n:])
        terms["div"] = divergence_term(values, spec.div, spec.div_norm)
    return terms
