"""Explicit input derivatives of the SDF networks: SPEC 3's loss without a double backward.

Besides u(x), the loss needs the input gradient g = grad u (eikonal and normal terms) and, on the
off-surface points, one second-order quantity: StEik's directional divergence
g^T H g / (|g|^2 + 1e-5) or DiGS's Laplacian tr H (H the Hessian of u in x). The autograd
path, `steik.objectives.loss_terms`, differentiates backward graphs (`create_graph=True`) that
the parameter update then differentiates once more. Here the same numbers come from propagating
derivatives through the layers by hand, so the parameter gradient is one ordinary first-order
backward of a graph of matrix products and elementwise operations, which `torch.compile` can
fuse.

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

`explicit_loss_terms` has the contract of `steik.objectives.loss_terms` for the networks `covers`
accepts. The environment variable STEIK_STEP chooses the path: `auto` (default: explicit for
covered networks, compiled when the run is long enough to repay compiling), `explicit` (never
compile), `compiled` (always compile), `autograd` (the reference path everywhere).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from steik.losses import (
    DIRECTIONAL_EPS,
    divergence_term,
    eikonal_term,
    inter_term,
    normal_term,
    sdf_term,
)
from steik.methods import MethodConfig
from steik.nn import SINE_FREQUENCY, SOFTPLUS_BETA, LinearLayer, QuadraticLayer, SDFNetwork

log = logging.getLogger(__name__)

STEP_ENV = "STEIK_STEP"
STEP_MODES = ("auto", "explicit", "compiled", "autograd")
COMPILE_MIN_WORK = 5e7
"""`auto` compiles when iterations x points per iteration reaches this (e.g. 2,000 iterations of
15,000 + 15,000 points): compiling takes 10-30 s on a CPU, which such a run repays."""
SOFTPLUS_THRESHOLD = 20.0
"""PyTorch's softplus is linear above beta z = 20; its derivatives switch there too."""
SPHERE_EPS = 1e-8
"""The sphere mapping's sqrt(|y| + 1e-8) (steik.nn.SDFNetwork.forward)."""


class Derivatives(NamedTuple):
    """The network's value and input derivatives at `x [K, N, d]`."""

    u: Tensor
    """`[K, N]` values."""
    grad: Tensor
    """`[K, N, d]` input gradients g."""
    second: Tensor | None
    """`[K, n_second]` at the last n_second points: g^T H g (`directions="gradient"`), the
    Laplacian (`"axes"`), or None (`"none"`)."""


@dataclass(frozen=True)
class _Architecture:
    """What the derivative passes need to know about a network besides its weights."""

    quadratic: bool
    sine: bool
    sphere: tuple[float, float] | None


@dataclass(frozen=True)
class _LossSpec:
    """The static part of one loss evaluation (a compiled step specialises on it)."""

    architecture: _Architecture
    div: str
    """`none` (also when the divergence is skipped this step), `full` or `directional`."""
    div_norm: str
    inter: bool
    normals: bool


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


def step_mode() -> str:
    """The STEIK_STEP setting (default `auto`); an unknown value is an error, not a silent
    fallback."""
    mode = os.environ.get(STEP_ENV, "auto").strip().lower() or "auto"
    if mode not in STEP_MODES:
        raise ValueError(f"{STEP_ENV}={mode!r}; valid: {', '.join(STEP_MODES)}")
    return mode


def uses_explicit(net: object) -> bool:
    """Whether a training step on `net` takes the explicit path (covered and not switched off)."""
    return covers(net) and step_mode() != "autograd"


def _architecture(net: SDFNetwork) -> _Architecture:
    return _Architecture(
        quadratic=isinstance(net.layers[0], QuadraticLayer),
        sine=net.activation == "sine",
        sphere=None if net.sphere is None else (float(net.sphere[0]), float(net.sphere[1])),
    )


def _weights(net: SDFNetwork) -> list[Tensor]:
    """The parameters in layer order, (W, b) or (W12, b12, W3, b3) per layer."""
    if isinstance(net.layers[0], QuadraticLayer):
        return [
            t
            for layer in net.layers
            for t in (layer.weight12, layer.bias12, layer.weight3, layer.bias3)
        ]
    return [t for layer in net.layers for t in (layer.weight, layer.bias)]


def _layers(weights: Sequence[Tensor], quadratic: bool) -> list[_Layer]:
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
    """s(z), s'(z), s''(z), each `[K, N, n]`, as autograd differentiates `steik.nn`'s activations
    (including softplus's switch to the identity above beta z = 20)."""
    if sine:
        value = torch.sin(SINE_FREQUENCY * z)
        slope = SINE_FREQUENCY * torch.cos(SINE_FREQUENCY * z)
        return value, slope, (-SINE_FREQUENCY * SINE_FREQUENCY) * value
    value = torch.nn.functional.softplus(z, beta=SOFTPLUS_BETA, threshold=SOFTPLUS_THRESHOLD)
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
    sign = torch.sign(y)
    root = torch.sqrt(y.abs() + SPHERE_EPS)
    u = (sign * root - radius) * scaling
    slope = (0.5 * scaling) * sign * sign / root
    curve = (-0.25 * scaling) * sign / (root * root * root)
    return u, slope, curve


def _value_pass(
    layers: Sequence[_Layer], arch: _Architecture, x: Tensor
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
    layers: Sequence[_Layer], arch: _Architecture, saved: Sequence[_Saved], out_slope: Tensor
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
    arch: _Architecture,
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


def _derivatives(
    layers: Sequence[_Layer], arch: _Architecture, x: Tensor, n_second: int, directions: str
) -> Derivatives:
    """`network_derivatives` on raw weights (the part a compiled step traces)."""
    saved, y = _value_pass(layers, arch, x)
    u, out_slope, out_curve = _output(y, arch.sphere)
    adjoint = _adjoint_pass(layers, arch, saved, out_slope)
    grad = adjoint[1][0]
    if directions == "none" or n_second == 0:
        return Derivatives(u, grad, None)
    k, n, d = x.shape
    first = n - n_second
    if directions == "gradient":
        v = grad[:, first:].unsqueeze(2)
    elif directions == "axes":
        v = torch.eye(d, dtype=x.dtype, device=x.device).expand(k, n_second, d, d)
    else:
        raise ValueError(f"unknown directions {directions!r}; valid: none, gradient, axes")
    second = _second_derivative(layers, arch, saved, adjoint, out_curve, v, first)
    return Derivatives(u, grad, second)


def network_derivatives(
    net: SDFNetwork, x: Tensor, n_second: int = 0, directions: str = "none"
) -> Derivatives:
    """u and g at every point of `x [K, N, d]`, and the summed second derivatives along
    `directions` at the last `n_second` points: `"gradient"` gives g^T H g (the directional
    divergence times |g|^2 + 1e-5), `"axes"` the Laplacian tr H, `"none"` nothing.

    Differentiable with respect to the parameters by a first-order backward.
    """
    if not covers(net):
        raise TypeError(f"explicit derivatives do not cover {type(net).__name__}")
    arch = _architecture(net)
    layers = _layers(_weights(net), arch.quadratic)
    return _derivatives(layers, arch, x, n_second, directions)


def _terms(
    weights: Sequence[Tensor],
    spec: _LossSpec,
    x_manifold: Tensor,
    x_off: Tensor,
    normals: Tensor | None,
) -> dict[str, Tensor]:
    """SPEC 3's terms `[K]` from the explicit derivatives (what a compiled step traces).

    Manifold and off-surface points go through the value and adjoint passes together; only the
    off-surface ones carry tangents.
    """
    arch = spec.architecture
    layers = _layers(weights, arch.quadratic)
    n_m, n_o = x_manifold.shape[1], x_off.shape[1]
    x = torch.cat([x_manifold, x_off], dim=1)
    directions = {"none": "none", "directional": "gradient", "full": "axes"}[spec.div]
    u, grad, second = _derivatives(layers, arch, x, n_o if spec.div != "none" else 0, directions)
    u_m, u_o, g_m = u[:, :n_m], u[:, n_m:], grad[:, :n_m]
    zero = torch.zeros(u.shape[0], dtype=u.dtype, device=u.device)
    terms = {
        "sdf": sdf_term(u_m),
        "inter": inter_term(u_o) if spec.inter else zero,
        "eikonal": eikonal_term(grad),
        "normal": normal_term(g_m, normals) if spec.normals else zero,
        "div": torch.full_like(zero, math.nan),
    }
    if second is not None:
        if spec.div == "directional":
            g_o = grad[:, n_m:]
            second = second / ((g_o * g_o).sum(dim=-1) + DIRECTIONAL_EPS)
        terms["div"] = divergence_term(second, spec.div, spec.div_norm)
    return terms


class _CompiledSteps:
    """One `torch.compile`d `_terms` per loss spec, and the switch back to eager when compiling
    is impossible here (no compiler, unsupported device): one log line, then eager for good."""

    def __init__(self) -> None:
        self.functions: dict[_LossSpec, Callable[..., dict[str, Tensor]]] = {}
        self.failed = False

    def __call__(
        self,
        spec: _LossSpec,
        weights: list[Tensor],
        x_m: Tensor,
        x_o: Tensor,
        normals: Tensor | None,
    ) -> dict[str, Tensor] | None:
        """The compiled terms, or None where compiling failed (the caller runs eagerly)."""
        if self.failed:
            return None
        try:
            fn = self.functions.get(spec)
            if fn is None:

                def traced(
                    weights: list[Tensor], x_m: Tensor, x_o: Tensor, normals: Tensor | None
                ) -> dict[str, Tensor]:
                    return _terms(weights, spec, x_m, x_o, normals)

                fn = torch.compile(traced, dynamic=False, fullgraph=True)
                self.functions[spec] = fn
            return fn(weights, x_m, x_o, normals)
        except Exception as error:  # compiler or backend missing, unsupported op or device
            self.failed = True
            reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
            log.warning(
                "torch.compile is not usable here (%s: %s); the explicit training step runs "
                "eagerly",
                type(error).__name__,
                reason[:200],
            )
            return None


_COMPILED = _CompiledSteps()


def wants_compile(config: MethodConfig) -> bool:
    """Whether the step is compiled: STEIK_STEP=compiled, or `auto` for runs long enough."""
    mode = step_mode()
    if mode == "compiled":
        return True
    work = config.iterations * (config.n_manifold + config.n_offsurface)
    return mode == "auto" and work >= COMPILE_MIN_WORK


def explicit_loss_terms(
    net: SDFNetwork,
    x_manifold: Tensor,
    x_off: Tensor,
    normals: Tensor | None,
    config: MethodConfig,
    with_div: bool = True,
) -> dict[str, Tensor]:
    """Every loss term of SPEC 3, one value per shape (`[K]` each), from explicit derivatives.

    The contract of `steik.objectives.loss_terms`: `x_manifold [K, Nm, d]`, `x_off [K, No, d]`,
    `normals [K, Nm, d]` or None; the divergence (off-surface points only) is reported as NaN
    when `with_div` is false or the method has none. The terms are differentiable with respect to
    the network's parameters.
    """
    if not covers(net):
        raise TypeError(f"explicit derivatives do not cover {type(net).__name__}")
    spec = _LossSpec(
        architecture=_architecture(net),
        div=config.div if with_div else "none",
        div_norm=config.div_norm,
        inter=bool(config.w_inter),
        normals=bool(config.use_normals and normals is not None),
    )
    weights = _weights(net)
    x_m, x_o = x_manifold.detach(), x_off.detach()
    nrm = normals if spec.normals else None
    if wants_compile(config):
        terms = _COMPILED(spec, weights, x_m, x_o, nrm)
        if terms is not None:
            return terms
    return _terms(weights, spec, x_m, x_o, nrm)
