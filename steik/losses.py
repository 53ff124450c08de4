"""Loss terms and divergences (SPEC 3); the divergence-weight schedules are in `steik.schedule`.

Every term reduces over points only and returns one value per shape (`[K]`), so K shapes trained
together never mix. Divergences take `points [K, N, d]` (requiring grad) and `grads = du/dpoints`
taken with `create_graph=True`, and return the per-point value `[K, N]` before any norm or clamp.
"""

from __future__ import annotations

import torch
from torch import Tensor

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
