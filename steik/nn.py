"""SDF networks: K independent MLPs held in one module, linear or quadratic neurons (SPEC 2).

Every weight carries a leading K axis so that K shapes train in one batched matrix product while
never mixing: shape k only ever touches slice k of every parameter. Initialisations draw from one
generator per shape, so a shape gets the same initial weights whether it trains alone or in a batch.

The SPEC 11 baselines add, all optional and off by default: a skip connection that concatenates
the input coordinates into a given layer (IGR), weight normalisation of the hidden layers (SAL),
Fourier-feature input encoding (IGR+FF, PHASE+FF), ReLU activations and SAL's geometric init, and
PHASE's log transform as an output mapping (see `SDFNetwork`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from steik.methods import ACTIVATIONS, INITS, NEURONS, OUTPUT_MAPS

Neuron = Literal["linear", "quadratic"]
Activation = Literal["sine", "softplus", "relu"]
Init = Literal["siren", "geometric_sine", "mfgi", "geometric_relu", "geometric_sal"]
OutputMap = Literal["none", "phase_log"]
SINE_FREQUENCY = 30.0
SOFTPLUS_BETA = 100.0
SOFTPLUS_THRESHOLD = 20.0
"""Softplus is the identity above beta z = 20 (PyTorch's default, stated here because the
explicit derivatives of `steik.explicit` switch there too)."""
SPHERE_EPS = 1e-8
"""The sphere output mapping reads sqrt(|y| + SPHERE_EPS), finite in slope at y = 0."""
SKIP_SCALE = 1.0 / math.sqrt(2.0)
"""IGR's skip connection divides the concatenation [h, x] by sqrt(2) (network.py, forward)."""
PHASE_CLAMP = 1e-6
"""The log transform clamps |u| to 1 - PHASE_CLAMP so that w stays finite where |u| >= 1."""


class LinearLayer(nn.Module):
    """K independent affine maps `z = W x + b`: `[K, N, in] -> [K, N, out]`."""

    def __init__(self, in_features: int, out_features: int, n_shapes: int = 1) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(n_shapes, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(n_shapes, out_features))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))

    def first_map(self) -> tuple[Tensor, Tensor]:
        """The (W, b) pair the initialisation rules apply to: `[K, out, in]`, `[K, out]`."""
        return self.weight, self.bias


class QuadraticLayer(nn.Module):
    """K independent quadratic neurons `z = (W1 x + b1) * (W2 x + b2) + W3 (x * x) + b3`.

    W1 and W2 are stored stacked (`weight12 [K, 2 out, in]`) so that both products come out of a
    single batched matrix product; W3 acts on the squared input.
    """

    def __init__(self, in_features: int, out_features: int, n_shapes: int = 1) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight12 = nn.Parameter(torch.empty(n_shapes, 2 * out_features, in_features))
        self.bias12 = nn.Parameter(torch.empty(n_shapes, 2 * out_features))
        self.weight3 = nn.Parameter(torch.empty(n_shapes, out_features, in_features))
        self.bias3 = nn.Parameter(torch.empty(n_shapes, out_features))

    def forward(self, x: Tensor) -> Tensor:
        ab = torch.baddbmm(self.bias12.unsqueeze(1), x, self.weight12.transpose(1, 2))
        a, b = ab.split(self.out_features, dim=-1)
        return torch.baddbmm(
            torch.addcmul(self.bias3.unsqueeze(1), a, b), x * x, self.weight3.transpose(1, 2)
        )

    def first_map(self) -> tuple[Tensor, Tensor]:
        """Views of (W1, b1), the pair the initialisation rules apply to."""
        return self.weight12[:, : self.out_features], self.bias12[:, : self.out_features]

    def neutralise_quadratic_part(self, generator: torch.Generator, k: int) -> None:
        """W2 ~ N(0, 1e-5^2), b2 = 1, W3 ~ N(0, 1e-5^2), b3 = 0 for shape k: a fresh quadratic
        layer then computes (up to 1e-5) the same function as the linear layer (W1, b1)."""
        out = self.out_features
        w2 = self.weight12[k, out:]
        w2.copy_(torch.randn(w2.shape, generator=generator, dtype=w2.dtype) * 1e-5)
        self.bias12[k, out:].fill_(1.0)
        w3 = self.weight3[k]
        w3.copy_(torch.randn(w3.shape, generator=generator, dtype=w3.dtype) * 1e-5)
        self.bias3[k].zero_()


class WeightNormLinearLayer(nn.Module):
    """K independent affine maps with weight normalisation (SAL's hidden layers):
    `z = (g / |v|) * (v x) + b` row by row, `[K, N, in] -> [K, N, out]`.

    `weight_v [K, out, in]` is the direction, `weight_g [K, out]` the length of each output row
    (the norm runs over the input axis only, per row and per shape, as `torch.nn.utils.weight_norm`
    with dim 0 does for one network). The init rules write v; `match_gain` then sets g = |v| so
    that a fresh layer computes exactly the map the init rule describes.
    """

    def __init__(self, in_features: int, out_features: int, n_shapes: int = 1) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight_v = nn.Parameter(torch.empty(n_shapes, out_features, in_features))
        self.weight_g = nn.Parameter(torch.empty(n_shapes, out_features))
        self.bias = nn.Parameter(torch.empty(n_shapes, out_features))

    def weight(self) -> Tensor:
        """The effective weight `g v / |v|`: `[K, out, in]`."""
        norm = self.weight_v.norm(dim=-1, keepdim=True)
        return self.weight_g.unsqueeze(-1) * self.weight_v / norm

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight().transpose(1, 2))

    def first_map(self) -> tuple[Tensor, Tensor]:
        """The (v, b) pair the initialisation rules write: `[K, out, in]`, `[K, out]`."""
        return self.weight_v, self.bias

    def match_gain(self, k: int) -> None:
        """g = |v| row by row for shape k, so the effective weight equals v."""
        self.weight_g[k].copy_(self.weight_v[k].norm(dim=-1))


def _uniform(
    shape: torch.Size, bound_low: float, bound_high: float, gen: torch.Generator
) -> Tensor:
    return (
        torch.rand(shape, generator=gen, dtype=torch.float64) * (bound_high - bound_low) + bound_low
    )


def _init_layer(
    w: Tensor, b: Tensor, rule: str, position: int, n_layers: int, gen: torch.Generator
) -> None:
    """Fill one shape's (W [out, in], b [out]) per SPEC 2's rule for the layer at `position`."""
    fan_out, fan_in = w.shape
    last, second_last = position == n_layers - 1, position == n_layers - 2
    shape_w, shape_b = w.shape, b.shape

    def set_(t: Tensor, values: Tensor) -> None:
        t.copy_(values.to(t.dtype))

    if rule == "siren":
        c = 1.0 / fan_in if position == 0 else math.sqrt(6.0 / fan_in) / SINE_FREQUENCY
        set_(w, _uniform(shape_w, -c, c, gen))
        d = 1.0 / math.sqrt(fan_in)  # PyTorch's default bias initialisation
        set_(b, _uniform(shape_b, -d, d, gen))
        return
    if rule in ("geometric_relu", "geometric_sal"):
        if last:
            # IGR (network.py): mean sqrt(pi)/sqrt(fan_in), std 1e-5, bias -radius (1): u ~ |x| - 1.
            # SAL (network.py, Decoder): twice that mean, std 1e-6, bias -1: u ~ 2|x| - 1.
            sal = rule == "geometric_sal"
            mean = (2.0 if sal else 1.0) * math.sqrt(math.pi) / math.sqrt(fan_in)
            std = 1e-6 if sal else 1e-5
            set_(w, mean + std * torch.randn(shape_w, generator=gen, dtype=torch.float64))
            b.fill_(-1.0)
        else:
            set_(
                w,
                torch.randn(shape_w, generator=gen, dtype=torch.float64) * math.sqrt(2.0 / fan_out),
            )
            b.zero_()
        return
    # geometric_sine and mfgi share the base rule and the last two layers
    if last:
        set_(w, -1.0 + 1e-5 * torch.randn(shape_w, generator=gen, dtype=torch.float64))
        b.fill_(float(fan_in))
        return
    if second_last:
        eye = torch.eye(fan_out, fan_in, dtype=torch.float64)
        noise_w = torch.randn(shape_w, generator=gen, dtype=torch.float64)
        noise_b = torch.randn(shape_b, generator=gen, dtype=torch.float64)
        set_(w, (0.5 * math.pi * eye + 1e-3 * noise_w) / SINE_FREQUENCY)
        set_(b, (0.5 * math.pi + 1e-3 * noise_b) / SINE_FREQUENCY)
        return
    a = math.sqrt(3.0 / fan_out)
    set_(w, _uniform(shape_w, -a, a, gen) / SINE_FREQUENCY)
    c = 1.0 / (1000.0 * fan_out)
    set_(b, _uniform(shape_b, -c, c, gen) / SINE_FREQUENCY)
    if rule != "mfgi" or position > 1:
        return
    root = math.sqrt(3.0 / fan_in)
    if position == 0:
        k = int(0.25 * fan_out)
        set_(w[:k], _uniform(w[:k].shape, -root / SINE_FREQUENCY, root / SINE_FREQUENCY, gen))
        set_(w[k:], _uniform(w[k:].shape, -root, root, gen))
    else:
        # The reference code's bounds are asymmetric here; SPEC 2 keeps them.
        set_(w, 5e-4 * _uniform(shape_w, -root, root / SINE_FREQUENCY, gen))
        k = int(0.25 * fan_out)
        block = _uniform(torch.Size((k, k)), -root / SINE_FREQUENCY, root / SINE_FREQUENCY, gen)
        set_(w[:k, :k], block)


def activate(z: Tensor, activation: str) -> Tensor:
    """A hidden layer's activation of its pre-activation `z` (any shape): sin(30 z), softplus
    with beta 100, or ReLU. The explicit derivatives (`steik.explicit`) use it for the value."""
    if activation == "sine":
        return torch.sin(SINE_FREQUENCY * z)
    if activation == "softplus":
        return nn.functional.softplus(z, beta=SOFTPLUS_BETA, threshold=SOFTPLUS_THRESHOLD)
    return torch.relu(z)


def sphere_output(y: Tensor, radius: float, scaling: float) -> tuple[Tensor, Tensor, Tensor]:
    """The sphere output mapping `u = (sign(y) sqrt(|y| + eps) - radius) * scaling` of the raw
    output `y [K, N]`, with the sign(y) and sqrt(|y| + eps) it was made of (`[K, N]` each), which
    the explicit derivatives reuse for its slope and curvature."""
    sign = torch.sign(y)
    root = torch.sqrt(y.abs() + SPHERE_EPS)
    return (sign * root - radius) * scaling, sign, root


def phase_distance(u: Tensor, epsilon: float) -> Tensor:
    """PHASE's log transform `w = -sqrt(eps) log(1 - |u|) sign(u)`: phase field -> distance.

    The 1D minimiser of eps |u'|^2 + (1 - |u|)^2 is `u = sign(d)(1 - exp(-|d| / sqrt(eps)))` at
    signed distance d from the interface, which this inverts. |u| is clamped to 1 - PHASE_CLAMP,
    so w stays finite (and keeps the sign of u) where the network overshoots the wells at +-1.
    """
    magnitude = u.abs().clamp(max=1.0 - PHASE_CLAMP)
    return -math.sqrt(epsilon) * torch.log1p(-magnitude) * torch.sign(u)


class SDFNetwork(nn.Module):
    """K independent SDF networks `u: R^d -> R` with `layers` hidden widths of size `hidden`.

    Input `x [K, N, d]`, output `u [K, N]`. `sphere = (radius, scaling)` maps the raw output y to
    `(sign(y) sqrt(|y| + 1e-8) - radius) * scaling` (`sphere_output`), which the geometric inits
    need so that the initial zero level set is a sphere; `None` leaves the output as is.

    Options of the SPEC 11 baselines (defaults leave the network above unchanged, bit for bit):

    - `skip_in`: indices of the weight layers (0 = first) whose input is `[h, x] / sqrt(2)`, the
      previous layer's output h (then `hidden - d` wide) concatenated with the input coordinates
      x, as IGR's network.py does (IGR: layer 4).
    - `weight_norm`: every layer but the last is a `WeightNormLinearLayer` (SAL).
    - `fourier_features = m > 0`: the first layer reads `[x, sin(2 pi x B^T), cos(2 pi x B^T)]`
      (width d + 2m), B `[m, d]` with entries N(0, fourier_scale^2) (Tancik et al. 2020), drawn
      per shape and stored as the buffer `fourier_matrix [K, m, d]` (not a parameter: it is not
      trained and not counted). The first layer's columns for the Fourier part start at zero, so
      a fresh network computes exactly the function of the same network without Fourier
      features (e.g. IGR's initial sphere); training then moves them. Skip connections carry x.
      `fourier_keep_input=False` drops x from that input (`[sin, cos]`, width 2m); the whole
      first layer then takes the init's rule, so the fresh network is no longer exactly the one
      without Fourier features.
    - `output_map = "phase_log"`: `forward` returns PHASE's distance `phase_distance(u, eps)`,
      while `implicit` returns the phase field u that PHASE's loss is written on.
    """

    def __init__(
        self,
        in_dim: int = 3,
        hidden: int = 256,
        layers: int = 5,
        neuron: Neuron = "linear",
        activation: Activation = "sine",
        init: Init = "mfgi",
        sphere: tuple[float, float] | None = (1.6, 0.1),
        n_shapes: int = 1,
        seeds: Sequence[int] | None = None,
        *,
        skip_in: Sequence[int] = (),
        weight_norm: bool = False,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
        fourier_keep_input: bool = True,
        output_map: OutputMap = "none",
        phase_epsilon: float = 0.01,
    ) -> None:
        super().__init__()
        if neuron not in NEURONS:
            raise ValueError(f"unknown neuron {neuron!r}; valid: {', '.join(NEURONS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
        if output_map not in OUTPUT_MAPS:
            raise ValueError(f"unknown output_map {output_map!r}; valid: {', '.join(OUTPUT_MAPS)}")
        skip_in = tuple(sorted({int(i) for i in skip_in}))
        if any(not 1 <= i <= layers for i in skip_in):
            raise ValueError(f"skip_in {skip_in} must name layers 1..{layers}")
        if skip_in and hidden <= in_dim:
            raise ValueError(f"a skip connection needs hidden > {in_dim}, got {hidden}")
        if weight_norm and neuron != "linear":
            raise ValueError("weight_norm is only defined for linear neurons")
        if fourier_features < 0 or not (fourier_scale > 0 and math.isfinite(fourier_scale)):
            raise ValueError("fourier_features must be >= 0 and fourier_scale finite and > 0")
        if not 0.0 < phase_epsilon < 1.0:
            raise ValueError(f"phase_epsilon must lie in (0, 1), got {phase_epsilon}")
        self.in_dim, self.hidden, self.n_layers_hidden = in_dim, hidden, layers
        self.neuron, self.activation, self.init = neuron, activation, init
        self.sphere = tuple(sphere) if sphere is not None else None
        self.n_shapes = n_shapes
        self.skip_in, self.weight_norm = skip_in, bool(weight_norm)
        if not fourier_keep_input and not fourier_features:
            raise ValueError("fourier_keep_input=False needs fourier_features > 0")
        self.fourier_features, self.fourier_scale = int(fourier_features), float(fourier_scale)
        self.fourier_keep_input = bool(fourier_keep_input)
        self.output_map, self.phase_epsilon = output_map, float(phase_epsilon)
        kept = in_dim if self.fourier_keep_input else 0
        widths = [kept + 2 * self.fourier_features] + [hidden] * layers + [1]
        layer_type = QuadraticLayer if neuron == "quadratic" else LinearLayer
        modules = []
        for i, (a, b) in enumerate(itertools.pairwise(widths)):
            out = b - in_dim if i + 1 in skip_in else b
            last = i == len(widths) - 2
            kind = WeightNormLinearLayer if weight_norm and not last else layer_type
            modules.append(kind(a, out, n_shapes))
        self.layers = nn.ModuleList(modules)
        if self.fourier_features:
            self.register_buffer(
                "fourier_matrix", torch.zeros(n_shapes, self.fourier_features, in_dim)
            )
        self.initialise(seeds if seeds is not None else [0] * n_shapes)

    @torch.no_grad()
    def initialise(self, seeds: Sequence[int]) -> None:
        """Initialise every shape k from its own generator seeded with `seeds[k]`.

        Per shape the generator fills the layers in order, then (with Fourier features) B, so the
        layer weights are those of the same network without Fourier features.
        """
        if len(seeds) != self.n_shapes:
            raise ValueError(f"need {self.n_shapes} seeds, got {len(seeds)}")
        n = len(self.layers)
        d = self.in_dim
        for k, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(int(seed))
            for position, layer in enumerate(self.layers):
                w, b = layer.first_map()
                if position == 0 and self.fourier_features and self.fourier_keep_input:
                    _init_layer(w[k][:, :d], b[k], self.init, position, n, gen)
                    w[k][:, d:].zero_()
                else:
                    _init_layer(w[k], b[k], self.init, position, n, gen)
                if isinstance(layer, QuadraticLayer):
                    layer.neutralise_quadratic_part(gen, k)
                if isinstance(layer, WeightNormLinearLayer):
                    layer.match_gain(k)
            if self.fourier_features:
                matrix = self.fourier_matrix[k]
                values = torch.randn(matrix.shape, generator=gen, dtype=torch.float64)
                matrix.copy_((values * self.fourier_scale).to(matrix.dtype))

    def encode(self, x: Tensor) -> Tensor:
        """The first layer's input: x itself, or `[x, sin(2 pi x B^T), cos(2 pi x B^T)]`
        (`[K, N, d] -> [K, N, d + 2m]`; without x when `fourier_keep_input` is False)."""
        if not self.fourier_features:
            return x
        phase = 2.0 * math.pi * torch.bmm(x, self.fourier_matrix.transpose(1, 2))
        kept = [x] if self.fourier_keep_input else []
        return torch.cat([*kept, torch.sin(phase), torch.cos(phase)], dim=-1)

    def implicit(self, x: Tensor) -> Tensor:
        """`x [K, N, d] -> u [K, N]` before the output mapping: the function the losses see
        (the sphere-mapped output for the SPEC 2 inits, PHASE's phase field for `phase_log`)."""
        h = self.encode(x)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i in self.skip_in:
                h = torch.cat([h, x], dim=-1) * SKIP_SCALE
            h = layer(h)
            if i < last:
                h = activate(h, self.activation)
        y = h.squeeze(-1)
        if self.sphere is None:
            return y
        return sphere_output(y, *self.sphere)[0]

    def forward(self, x: Tensor) -> Tensor:
        """`x [K, N, d] -> u [K, N]`: the signed distance estimate that extraction and
        evaluation read (`implicit` mapped by `output_map`)."""
        u = self.implicit(x)
        if self.output_map == "phase_log":
            return phase_distance(u, self.phase_epsilon)
        return u

    def n_params_per_shape(self) -> int:
        """Number of parameters of one of the K networks (SPEC 2's counts for K = 1)."""
        return sum(p.numel() for p in self.parameters()) // self.n_shapes

    def _shape_tensors(self) -> list[tuple[str, Tensor]]:
        """Parameters, then persistent buffers (the Fourier matrix): everything a shape owns."""
        buffers = [(n, b) for n, b in self.named_buffers() if n in self.state_dict()]
        return [*self.named_parameters(), *buffers]

    @torch.no_grad()
    def shape_state(self, k: int) -> dict[str, Tensor]:
        """Parameters (and buffers) of shape k alone, as the state dict of a K = 1 network."""
        return {name: p[k : k + 1].detach().clone() for name, p in self._shape_tensors()}

    @torch.no_grad()
    def load_shape_state(self, k: int, state: dict[str, Tensor]) -> None:
        """Set shape k's parameters (and buffers) from a K = 1 state dict."""
        for name, p in self._shape_tensors():
            p[k : k + 1].copy_(state[name])
