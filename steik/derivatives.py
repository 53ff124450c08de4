"""The derivatives of SPEC 3's training step, by one of three paths behind one interface.

A step of the `digs` objective needs u, the input gradient g and, on the off-surface points,
g^T H g or the Laplacian (`steik.losses.Derivatives`); `steik.losses.digs_terms` makes the loss
terms from them. Three paths compute the same numbers:

- `autograd`: torch.autograd with `create_graph=True` (the reference; any network);
- `explicit`: the hand-written value, adjoint and tangent passes of `steik.explicit`, whose
  parameter gradient is one first-order backward (the networks `steik.explicit.covers`);
- `compiled`: the explicit passes and the terms under `torch.compile` (same networks). Where
  compiling fails (no compiler, unsupported device) one warning is logged, and the steps of
  the process run `explicit` from then on.

A method's field `step` chooses: `auto` (the default) takes `explicit` for the networks it
covers, `compiled` once a run is long enough to repay compiling (`COMPILE_MIN_WORK`), and
`autograd` for every other network and for the SPEC 11 objectives (which differentiate their
own terms); `explicit`, `compiled` and `autograd` take that path, and a path the network or the
objective cannot take is an error. `resolve_step` decides once from the configuration and the
network; the trainer records its answer in every model file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import Tensor

from steik import explicit
from steik.errors import SteikError
from steik.explicit import explicit_derivatives
from steik.losses import Derivatives, TermSpec, digs_terms
from steik.methods import MethodConfig

log = logging.getLogger(__name__)

COMPILE_MIN_WORK = 5e7
"""`auto` compiles when iterations x points per iteration reaches this (e.g. 2,000 iterations of
15,000 + 15,000 points): compiling takes 10-30 s on a CPU, which such a run repays."""

Network = Callable[[Tensor], Tensor]
"""Maps points `[K, N, d]` to values `[K, N]`."""


def along_gradient(points: Tensor, grads: Tensor) -> Tensor:
    """g^T H g `[K, N]` by autograd, for `grads = du/dpoints [K, N, d]` taken with
    `create_graph=True`: one extra backward pass, since H g = grad(0.5 |g|^2) (H is symmetric)."""
    sq = (grads * grads).sum(dim=-1)
    (hg,) = torch.autograd.grad(0.5 * sq.sum(), points, create_graph=True)
    return (hg * grads).sum(dim=-1)


def laplacian(points: Tensor, grads: Tensor) -> Tensor:
    """tr H `[K, N]` by autograd (DiGS's L_div integrand), one backward pass per dimension."""
    lap = torch.zeros(grads.shape[:-1], dtype=grads.dtype, device=grads.device)
    for i in range(points.shape[-1]):
        (row,) = torch.autograd.grad(grads[..., i].sum(), points, create_graph=True)
        lap = lap + row[..., i]
    return lap


def autograd_derivatives(net: Network, x_manifold: Tensor, x_off: Tensor, div: str) -> Derivatives:
    """`steik.explicit.explicit_derivatives` by torch.autograd, for any network.

    `x_manifold [K, Nm, d]` and `x_off [K, No, d]` become separate leaves (requiring grad), so
    that the divergence's extra backward passes run through the off-surface forward only.
    """
    x_m = x_manifold.requires_grad_(True)
    x_o = x_off.requires_grad_(True)
    u_m, u_o = net(x_m), net(x_o)
    g_m, g_o = torch.autograd.grad((u_m.sum(), u_o.sum()), (x_m, x_o), create_graph=True)
    second = None
    if div == "directional":
        second = along_gradient(x_o, g_o)
    elif div == "full":
        second = laplacian(x_o, g_o)
    elif div != "none":
        raise ValueError(f"unknown divergence {div!r}; valid: none, full, directional")
    u, grad = torch.cat([u_m, u_o], dim=1), torch.cat([g_m, g_o], dim=1)
    return Derivatives(u, grad, second, x_m.shape[1])


class _CompiledSteps:
    """One `torch.compile`d explicit step (derivatives and terms) per network architecture and
    term spec, and the switch back to eager when compiling is impossible here: one log line,
    then `explicit` for good."""

    def __init__(self) -> None:
        self.functions: dict[tuple[explicit.Architecture, TermSpec], Callable[..., dict]] = {}
        self.failed = False

    def __call__(
        self,
        net: Network,
        x_manifold: Tensor,
        x_off: Tensor,
        normals: Tensor | None,
        spec: TermSpec,
    ) -> dict[str, Tensor] | None:
        """The compiled terms, or None where compiling failed (the caller runs eagerly)."""
        if self.failed:
            return None
        arch = explicit.architecture(net)
        try:
            fn = self.functions.get((arch, spec))
            if fn is None:

                def traced(
                    weights: list[Tensor], x_m: Tensor, x_o: Tensor, normals: Tensor | None
                ) -> dict[str, Tensor]:
                    found = explicit.derivatives_from_weights(weights, arch, x_m, x_o, spec.div)
                    return digs_terms(found, normals, spec)

                fn = torch.compile(traced, dynamic=False, fullgraph=True)
                self.functions[(arch, spec)] = fn
            weights = explicit.layer_weights(net)
            return fn(weights, x_manifold.detach(), x_off.detach(), normals)
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


def resolve_step(config: MethodConfig, net: object) -> str:
    """The path (`explicit`, `compiled` or `autograd`) a training step of `config` on `net`
    takes: `config.step`, with `auto` decided as the module docstring says, and `compiled`
    turned into `explicit` once compiling has failed in this process. A SteikError when
    `config.step` asks for a path the network or the objective cannot take."""
    coverable = config.loss == "digs" and explicit.covers(net)
    if config.step == "autograd" or (config.step == "auto" and not coverable):
        return "autograd"
    if not coverable:
        raise SteikError(
            f"step = {config.step!r} needs SPEC 3's loss (loss = digs) on a network of linear or "
            "quadratic layers with sine or softplus activations and no skip connections, Fourier "
            f"features, weight norm or output map, which method {config.name} (loss = "
            f"{config.loss}) does not train; set step to auto or autograd"
        )
    work = config.iterations * (config.n_manifold + config.n_offsurface)
    compiled = config.step == "compiled" or (config.step == "auto" and work >= COMPILE_MIN_WORK)
    return "compiled" if compiled and not _COMPILED.failed else "explicit"


def step_terms(
    step: str,
    net: Network,
    x_manifold: Tensor,
    x_off: Tensor,
    normals: Tensor | None,
    spec: TermSpec,
) -> dict[str, Tensor]:
    """SPEC 3's terms `[K]` each (`steik.losses.digs_terms`) from the derivatives of path `step`
    (a resolved one: `explicit`, `compiled` or `autograd`) at the scan points `x_manifold
    [K, Nm, d]` (with `normals [K, Nm, d]` or None) and the off-surface points `x_off [K, No, d]`.
    Differentiable with respect to the network's parameters."""
    if step == "compiled":
        terms = _COMPILED(net, x_manifold, x_off, normals, spec)
        if terms is not None:
            return terms
    if step in ("explicit", "compiled"):
        found = explicit_derivatives(net, x_manifold, x_off, spec.div)
    elif step == "autograd":
        found = autograd_derivatives(net, x_manifold, x_off, spec.div)
    else:
        raise ValueError(f"unknown step path {step!r}; valid: explicit, compiled, autograd")
    return digs_terms(found, normals, spec)
