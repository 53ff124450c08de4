"""SDF networks: K independent MLPs held in one module, linear or quadratic neurons (SPEC 2).

Every weight carries a leading K axis so that K shapes train in one batched matrix product while
never mixing: shape k only ever touches slice k of every parameter. Initialisations draw from one
generator per shape, so a shape gets the same initial weights whether it trains alone or in a batch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from steik.methods import ACTIVATIONS, INITS, NEURONS

Neuron = Literal["linear", "quadratic"]
Activation = Literal["sine", "softplus"]
Init = Literal["siren", "geometric_sine", "mfgi", "geometric_relu"]
SINE_FREQUENCY = 30.0
SOFTPLUS_BETA = 100.0


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
    if rule == "geometric_relu":
        if last:
            set_(
                w,
                math.sqrt(math.pi) / math.sqrt(fan_in)
                + 1e-5 * torch.randn(shape_w, generator=gen, dtype=torch.float64),
            )
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


class SDFNetwork(nn.Module):
    """K independent SDF networks `u: R^d -> R` with `layers` hidden widths of size `hidden`.

    Input `x [K, N, d]`, output `u [K, N]`. `sphere = (radius, scaling)` maps the raw output y to
    `(sign(y) sqrt(|y| + 1e-8) - radius) * scaling`, which the geometric inits need so that the
    initial zero level set is a sphere; `None` leaves the output as is.
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
    ) -> None:
        super().__init__()
        if neuron not in NEURONS:
            raise ValueError(f"unknown neuron {neuron!r}; valid: {', '.join(NEURONS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        if init not in INITS:
            raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
        self.in_dim, self.hidden, self.n_layers_hidden = in_dim, hidden, layers
        self.neuron, self.activation, self.init = neuron, activation, init
        self.sphere = tuple(sphere) if sphere is not None else None
        self.n_shapes = n_shapes
        widths = [in_dim] + [hidden] * layers + [1]
        layer_type = QuadraticLayer if neuron == "quadratic" else LinearLayer
        self.layers = nn.ModuleList(
            layer_type(a, b, n_shapes) for a, b in itertools.pairwise(widths)
        )
        self.initialise(seeds if seeds is not None else [0] * n_shapes)

    @torch.no_grad()
    def initialise(self, seeds: Sequence[int]) -> None:
        """Initialise every shape k from its own generator seeded with `seeds[k]`."""
        if len(seeds) != self.n_shapes:
            raise ValueError(f"need {self.n_shapes} seeds, got {len(seeds)}")
        n = len(self.layers)
        for k, seed in enumerate(seeds):
            gen = torch.Generator().manual_seed(int(seed))
            for position, layer in enumerate(self.layers):
                w, b = layer.first_map()
                _init_layer(w[k], b[k], self.init, position, n, gen)
                if isinstance(layer, QuadraticLayer):
                    layer.neutralise_quadratic_part(gen, k)

    def forward(self, x: Tensor) -> Tensor:
        """`x [K, N, d] -> u [K, N]`."""
        h = x
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < last:
                h = (
                    torch.sin(SINE_FREQUENCY * h)
                    if self.activation == "sine"
                    else nn.functional.softplus(h, beta=SOFTPLUS_BETA)
                )
        y = h.squeeze(-1)
        if self.sphere is None:
            return y
        radius, scaling = self.sphere
        return (torch.sign(y) * torch.sqrt(y.abs() + 1e-8) - radius) * scaling

    def n_params_per_shape(self) -> int:
        """Number of parameters of one of the K networks (SPEC 2's counts for K = 1)."""
        return sum(p.numel() for p in self.parameters()) // self.n_shapes

    @torch.no_grad()
    def shape_state(self, k: int) -> dict[str, Tensor]:
        """Parameters of shape k alone, as the state dict of a K = 1 network."""
        return {name: p[k : k + 1].detach().clone() for name, p in self.named_parameters()}

    @torch.no_grad()
    def load_shape_state(self, k: int, state: dict[str, Tensor]) -> None:
        """Set shape k's parameters from a K = 1 state dict."""
        for name, p in self.named_parameters():
            p[k : k + 1].copy_(state[name])
