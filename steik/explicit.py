"""Explicit input derivatives of the SDF networks: SPEC 3's loss without a double backward.

Besides u(x), the loss needs the input gradient g = grad u (eikonal and normal terms) and, on the
off-surface points, one second-order quantity: g^T H g for StEik's directional divergence or
DiGS's Laplacian tr H (H the Hessian of u in x). The autograd path of `steik.derivatives`
differentiates backward graphs (`create_graph=True`) that the parameter update then
differentiates once more. Here the same numbers come from propagating derivatives through the
layers by hand, so the parameter gradient is one ordinary first-order backward of a graph of
matrix products and elementwise operations, which `torch.compile` can fuse.

Notation for one shape and one point: layer l maps h_l to z_l, h_{l+1} = s(z_l) with the
activation s (sin 30z, or softplus with beta 100) after every layer but the last, y = z_{L-1}, and
u = m(y) with the sphere output mapping m (or the identity). A linear layer is z = W h + b; a
quadratic one is z = a * b + W3 (h * h) + b3 with a = W1 h + b1, b = W2 h + b2.

1. Value pass (first to last layer): h_l, z_l, a_l, b_l, and s'(z_l), s''(z_l); for the sine
   s'' = -900 h_{l+1}, so only the cosine is new.
2. Adjoint pass (last to first): zeta_l = du/dz_l and eta_l = du/dh_l from zeta_{L-1} = m'(y).
   A linear layer gives eta_l = W^T zeta_l, a quadratic one
   eta_l = W1^T (zeta_l * b_l) + W2^T (zeta_l * a_l) + 2 h_l * (W3^T zeta_l); then
   zeta_{l-1} = s'(z_{l-1}) * eta_l, and g = eta_0. This is the backward pass autograd would run
   for g, written out so that its intermediates are ordinary tensors of the graph.
3. Tangent pass along a direction v (first to last): the derivatives of every intermediate along
   the line x + t v: h'_0 = v, z'_l = W h'_l (linear) or
   z'_l = a'_l * b_l + a_l * b'_l + 2 W3 (h_l * h'_l) (quadratic), h'_{l+1} = s'(z_l) * z'_l.

The second derivative along v, v^T H v = d^2/dt^2 u(x + t v), then needs no second-order pass.
The second-order Taylor coefficients follow the tangents' linear recursion plus a source wherever a
nonlinearity meets a tangent (s''(z) z'^2 after an activation, 2 a' b' and 2 W3 h'^2 inside a
quadratic layer, m''(y) y'^2 at the output), and the response of u to a unit change of any
intermediate is its adjoint from pass 2. Summing sources times adjoints:

    v^T H v = sum_l <eta_{l+1}, s''(z_l) z'_l^2> + sum_l <zeta_l, 2 a'_l b'_l>
              + sum_l <W3_l^T zeta_l, 2 h'_l^2> + m''(y) y'^2

(<.,.> sums over a layer's units; the middle sums only for quadratic layers). The directional
divergence takes v = g; the Laplacian sums over the d coordinate axes.

Matrix products per hidden layer and point, counting the parameter backward (two per product):
9 for the directional divergence where the double backward needs 12, 15 for the Laplacian in 3D
where it needs 24, and 6 on points without a divergence, as autograd. The rest is elementwise,
which the compiled step fuses into a few passes over memory.

`explicit_derivatives` returns the `steik.losses.Derivatives` the autograd path returns, for the
networks `covers` accepts; `derivatives_from_weights` is the same on raw weights, the part the
compiled step traces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from steik.losses import Derivatives
from steik.nn import (
    SINE_FREQUENCY,
    SOFTPLUS_BETA,
    SOFTPLUS_THRESHOLD,
    LinearLayer,
    QuadraticLayer,
    SDFNetwork,
    activate,
    sphere_output,
)


@dataclass(frozen=True)
class Architecture:
    """What the derivative passes need to know about a network besides its weights (hashable:
    a compiled step specialises on it)."""

    quadratic: bool
    sine: bool
    sphere: tuple[float, float] | None


class _Layer(NamedTuple):
    """One layer's weights: `w [K, out, in]`, `b [K, out]` of the linear map (W1 and W2 stacked
    for a quadratic layer), and a quadratic layer's `w3 [K, out, in]`, `b3 [K, out]`."""

    w: Tensor
    b: Tensor
    w3: Tensor | None
    b3: Tensor | None


class _Saved(NamedTuple):
    """Value-pass quantities of one layer, `[K, N, .]` each."""

    h: Tensor
    """Layer input."""
    a: Tensor | None
    """W1 h + b1 (quadratic layers)."""
    b: Tensor | None
    """W2 h + b2 (quadratic layers)."""
    d1: Tensor | None
    """s'(z), the activation's slope (None after the last layer)."""
    d2: Tensor | None
    """s''(z)."""


def covers(net: object) -> bool:
    """Whether the explicit step computes `net`'s loss: an `SDFNetwork` itself (not a subclass,
    which may change the forward pass) built from one of its layer types and activations, without
    the options of the SPEC 11 baselines (skip connections, Fourier features, weight norm, an
    output transform), which take the autograd path."""
    if type(net) is not SDFNetwork:
        return False
    kinds = {type(layer) for layer in net.layers}
    return (
        len(kinds) == 1
        and kinds <= {LinearLayer, QuadraticLayer}
        and net.activation in ("sine", "softplus")
        and not net.skip_in
        and not net.fourier_features
        and net.output_map == "none"
    )


def architecture(net: SDFNetwork) -> Architecture:
    """The static description of a covered network."""
    return Architecture(
        quadratic=isinstance(net.layers[0], QuadraticLayer),
        sine=net.activation == "sine",
        sphere=None if net.sphere is None else (float(net.sphere[0]), float(net.sphere[1])),
    )


def layer_weights(net: SDFNetwork) -> list[Tensor]:
    """The parameters in layer order, (W, b) or (W12, b12, W3, b3) per layer."""
    if isinstance(net.layers[0], QuadraticLayer):
        return [
            t
            for layer in net.layers
            for t in (layer.weight12, layer.bias12, layer.weight3, layer.bias3)
        ]
    return [t for layer in net.layers for t in (layer.weight, layer.bias)]


def _layers(weights: Sequence[Tensor], quadratic: bool) -> list[_Layer]:
    """`layer_weights`' flat list grouped by layer."""
    if quadratic:
        return [_Layer(*weights[i : i + 4]) for i in range(0, len(weights), 4)]
    return [_Layer(weights[i], weights[i + 1], None, None) for i in range(0, len(weights), 2)]


def _map(h: Tensor, w: Tensor) -> Tensor:
    """K batched linear maps without bias: `h [K, M, in]`, `w [K, out, in]` -> `[K, M, out]`.

    One batched product for every K: for K = 1 it measured as fast as a plain `mm` in the whole
    step, and the skinny first and last layers are faster as products than as fused sums."""
    return torch.bmm(h, w.transpose(1, 2))


def _map_t(z: Tensor, w: Tensor) -> Tensor:
    """The transposed maps: `z [K, M, out]`, `w [K, out, in]` -> `[K, M, in]`."""
    return torch.bmm(z, w)


def _activation(z: Tensor, sine: bool) -> tuple[Tensor, Tensor, Tensor]:
    """s(z), s'(z), s''(z), each `[K, N, n]`: the value is `steik.nn.activate`'s, the slope and
    curvature are what autograd gives for it (including softplus's switch to the identity above
    beta z = 20)."""
    if sine:
        value = activate(z, "sine")
        slope = SINE_FREQUENCY * torch.cos(SINE_FREQUENCY * z)
        return value, slope, (-SINE_FREQUENCY * SINE_FREQUENCY) * value
    value = activate(z, "softplus")
    bz = SOFTPLUS_BETA * z
    sig = torch.sigmoid(bz)
    slope = torch.where(bz > SOFTPLUS_THRESHOLD, torch.ones_like(sig), sig)
    curve = torch.where(
        bz < SOFTPLUS_THRESHOLD, (SOFTPLUS_BETA * sig) * (1.0 - sig), torch.zeros_like(sig)
    )
    return value, slope, curve


def _output(y: Tensor, sphere: tuple[float, float] | None) -> tuple[Tensor, Tensor, Tensor]:
    """u = m(y), m'(y), m''(y) of the output mapping, `[K, N]` each. sign(y)^2 keeps autograd's
    zero slope at y = 0 (the derivative of sign is 0 there)."""
    if sphere is None:
        return y, torch.ones_like(y), torch.zeros_like(y)
    radius, scaling = sphere
    u, sign, root = sphere_output(y, radius, scaling)
    slope = (0.5 * scaling) * sign * sign / root
    curve = (-0.25 * scaling) * sign / (root * root * root)
    return u, slope, curve


def _value_pass(
    layers: Sequence[_Layer], arch: Architecture, x: Tensor
) -> tuple[list[_Saved], Tensor]:
    """Every layer's saved quantities and the raw output y `[K, N]` for `x [K, N, d]`."""
    saved = []
    h = x
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        a = b = None
        if arch.quadratic:
            # Plain products plus bias: a compiled step fuses the bias into the next elementwise
            # kernel, where baddbmm would first copy the broadcast bias into its output.
            ab = _map(h, layer.w) + layer.b.unsqueeze(1)
            a, b = ab.chunk(2, dim=-1)
            z = torch.addcmul(_map(h * h, layer.w3) + layer.b3.unsqueeze(1), a, b)
        else:
            z = _map(h, layer.w) + layer.b.unsqueeze(1)
        if i == last:
            saved.append(_Saved(h, a, b, None, None))
            return saved, z.squeeze(-1)
        value, slope, curve = _activation(z, arch.sine)
        saved.append(_Saved(h, a, b, slope, curve))
        h = value
    raise ValueError("a network needs at least one layer")


def _adjoint_pass(
    layers: Sequence[_Layer], arch: Architecture, saved: Sequence[_Saved], out_slope: Tensor
) -> tuple[list[Tensor], list[Tensor], list[Tensor | None]]:
    """zeta_l = du/dz_l `[K, N, out_l]`, eta_l = du/dh_l `[K, N, in_l]` and, for quadratic
    layers, W3^T zeta_l `[K, N, in_l]` (reused by the second derivative); eta_0 is g."""
    n = len(layers)
    zetas: list[Tensor] = [out_slope.unsqueeze(-1)] * n
    etas: list[Tensor] = [out_slope.unsqueeze(-1)] * n
    w3_zetas: list[Tensor | None] = [None] * n
    zeta = out_slope.unsqueeze(-1)
    for i in range(n - 1, -1, -1):
        layer, s = layers[i], saved[i]
        zetas[i] = zeta
        if arch.quadratic:
            w3_zeta = _map_t(zeta, layer.w3)
            w3_zetas[i] = w3_zeta
            eta = torch.addcmul(
                _map_t(torch.cat([zeta * s.b, zeta * s.a], dim=-1), layer.w),
                s.h,
                w3_zeta,
                value=2.0,
            )
        else:
            eta = _map_t(zeta, layer.w)
        etas[i] = eta
        if i > 0:
            zeta = saved[i - 1].d1 * eta
    return zetas, etas, w3_zetas


def _second_derivative(
    layers: Sequence[_Layer],
    arch: Architecture,
    saved: Sequence[_Saved],
    adjoint: tuple[list[Tensor], list[Tensor], list[Tensor | None]],
    out_curve: Tensor,
    directions: Tensor,
    first: int,
) -> Tensor:
    """Sum over directions of v^T H v `[K, M]` at the points from index `first` on, by the
    tangent pass along `directions [K, M, m, d]` (m directions per point)."""
    zetas, etas, w3_zetas = adjoint
    k, m_points, m, _ = directions.shape
    last = len(layers) - 1
    tangent = directions
    second = torch.zeros(k, m_points, m, dtype=directions.dtype, device=directions.device)

    def at(t: Tensor) -> Tensor:
        """`[K, N, n]` -> `[K, M, 1, n]`: the points that carry tangents, broadcast over the m
        directions."""
        return t[:, first:].unsqueeze(2)

    for i, layer in enumerate(layers):
        s = saved[i]
        flat = tangent.reshape(k, m_points * m, tangent.shape[-1])
        if arch.quadratic:
            dab = _map(flat, layer.w).view(k, m_points, m, -1)
            da, db = dab.chunk(2, dim=-1)
            h = at(s.h)
            dz = _map((h * tangent).reshape(k, m_points * m, -1), layer.w3).view(k, m_points, m, -1)
            dz = torch.addcmul(torch.addcmul(2.0 * dz, da, at(s.b)), at(s.a), db)
            second = second + 2.0 * (at(zetas[i]) * da * db).sum(-1)
            second = second + 2.0 * (at(w3_zetas[i]) * tangent * tangent).sum(-1)
        else:
            dz = _map(flat, layer.w).view(k, m_points, m, -1)
        if i == last:
            dy = dz.squeeze(-1)
            second = second + out_curve[:, first:].unsqueeze(-1) * dy * dy
        else:
            second = second + (at(etas[i + 1] * s.d2) * dz * dz).sum(-1)
            tangent = at(s.d1) * dz
    return second.sum(-1)


def derivatives_from_weights(
    weights: Sequence[Tensor], arch: Architecture, x_manifold: Tensor, x_off: Tensor, div: str
) -> Derivatives:
    """`explicit_derivatives` on `layer_weights(net)` (the part a compiled step traces).

    Scan and off-surface points go through the value and adjoint passes together; only the
    off-surface ones carry tangents.
    """
    layers = _layers(weights, arch.quadratic)
    n_manifold, n_off = x_manifold.shape[1], x_off.shape[1]
    x = torch.cat([x_manifold, x_off], dim=1)
    saved, y = _value_pass(layers, arch, x)
    u, out_slope, out_curve = _output(y, arch.sphere)
    adjoint = _adjoint_pass(layers, arch, saved, out_slope)
    grad = adjoint[1][0]
    if div == "none":
        return Derivatives(u, grad, None, n_manifold)
    k, _, d = x.shape
    if div == "directional":
        v = grad[:, n_manifold:].unsqueeze(2)
    elif div == "full":
        v = torch.eye(d, dtype=x.dtype, device=x.device).expand(k, n_off, d, d)
    else:
        raise ValueError(f"unknown divergence {div!r}; valid: none, full, directional")
    second = _second_derivative(layers, arch, saved, adjoint, out_curve, v, n_manifold)
    return Derivatives(u, grad, second, n_manifold)


def explicit_derivatives(
    net: SDFNetwork, x_manifold: Tensor, x_off: Tensor, div: str
) -> Derivatives:
    """u and g at the scan points `x_manifold [K, Nm, d]` and the off-surface points
    `x_off [K, No, d]`, and on the latter the second-order quantity of divergence `div`: g^T H g
    (`directional`), the Laplacian (`full`) or nothing (`none`).

    Differentiable with respect to the parameters by a first-order backward; the points are
    taken as constants.
    """
    if not covers(net):
        raise TypeError(f"explicit derivatives do not cover {type(net).__name__}")
    return derivatives_from_weights(
        layer_weights(net), architecture(net), x_manifold.detach(), x_off.detach(), div
    )
