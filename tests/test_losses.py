"""Loss terms and divergences against explicit float64 Hessians and analytic SDFs."""

from __future__ import annotations

import math

import pytest
import torch

from steik.derivatives import along_gradient, laplacian
from steik.losses import (
    Derivatives,
    TermSpec,
    digs_terms,
    divergence_term,
    eikonal_term,
    inter_term,
    normal_term,
    normalised_directional,
    sdf_term,
)
from steik.nn import SDFNetwork
from steik.schedule import WeightSchedule

COMBINATIONS = [
    (neuron, init, "softplus" if init == "geometric_relu" else "sine")
    for neuron in ("linear", "quadratic")
    for init in ("siren", "geometric_sine", "mfgi", "geometric_relu")
]


def _grads(u_fn, x):
    x = x.clone().requires_grad_(True)
    u = u_fn(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    return x, g


def directional_divergence(x, g):
    """StEik's per-point directional divergence as the loss computes it from autograd's g^T H g."""
    return normalised_directional(along_gradient(x, g), g)


@pytest.mark.parametrize(("neuron", "init", "activation"), COMBINATIONS)
def test_divergences_match_explicit_hessian(neuron, init, activation):
    sphere = (1.6, 0.1) if init in ("geometric_sine", "mfgi") else None
    net = SDFNetwork(3, 12, 3, neuron, activation, init, sphere, n_shapes=2, seeds=[3, 4]).double()
    x0 = torch.rand(2, 5, 3, dtype=torch.float64) * 1.6 - 0.8
    x, g = _grads(net, x0)
    directional = directional_divergence(x, g).detach()
    full = laplacian(x, g).detach()
    for k in range(2):
        for i in range(5):
            point = x0[k, i]

            def u_single(p, k=k):
                batch = torch.zeros(2, 1, 3, dtype=torch.float64)
                batch = batch.index_put((torch.tensor([k]), torch.tensor([0])), p.unsqueeze(0))
                return net(batch)[k, 0]

            hess = torch.autograd.functional.hessian(u_single, point)
            grad = torch.autograd.functional.jacobian(u_single, point)
            expected_dir = grad @ hess @ grad / (grad @ grad + 1e-5)
            expected_full = torch.trace(hess)
            assert math.isclose(directional[k, i], expected_dir, rel_tol=1e-8, abs_tol=1e-12)
            assert math.isclose(full[k, i], expected_full, rel_tol=1e-8, abs_tol=1e-12)


def test_exact_sphere_sdf_has_zero_directional_but_nonzero_full_divergence():
    radius = 0.6

    def sphere(x):
        return x.norm(dim=-1) - radius

    for d in (2, 3):
        x0 = torch.randn(1, 400, d, dtype=torch.float64)
        x0 = (
            x0
            / x0.norm(dim=-1, keepdim=True)
            * torch.empty(1, 400, 1, dtype=torch.float64).uniform_(0.2, 1.5)
        )
        x, g = _grads(sphere, x0)
        assert eikonal_term(g).item() < 1e-12
        assert directional_divergence(x, g).abs().max().item() < 1e-12
        lap = laplacian(x, g).detach()
        assert torch.allclose(lap, (d - 1) / x0.norm(dim=-1), rtol=1e-10)


def test_terms_reduce_per_shape():
    u = torch.tensor([[0.5, -0.5, 0.0], [2.0, 0.0, 0.0]])
    assert torch.allclose(sdf_term(u), torch.tensor([1 / 3, 2 / 3]))
    assert torch.allclose(
        inter_term(u), torch.tensor([(2 * math.exp(-50) + 1) / 3, (math.exp(-200) + 2) / 3])
    )
    g = torch.tensor([[[3.0, 4.0], [0.0, 1.0]], [[0.0, 0.5], [0.0, 2.0]]])
    assert torch.allclose(eikonal_term(g), torch.tensor([2.0, 0.75]))


def test_divergence_term_clamps_full_but_not_directional():
    v = torch.tensor([[0.0, 100.0, -2.0, float("nan")]])
    assert torch.allclose(divergence_term(v, "full", "l1"), torch.tensor([(0.1 + 50 + 2 + 0) / 4]))
    assert torch.allclose(divergence_term(v[:, :3], "directional", "l1"), torch.tensor([34.0]))
    assert torch.allclose(
        divergence_term(v[:, :3], "directional", "l2"), torch.tensor([(1e4 + 4) / 3])
    )


def test_terms_are_assembled_from_derivatives():
    """The one assembly: scan and off-surface parts, 0 for a term left out, NaN for a divergence
    not evaluated, the directional divergence normalised by |g|^2 + 1e-5, the full one clamped."""
    gen = torch.Generator().manual_seed(0)
    u = torch.randn(2, 7, generator=gen, dtype=torch.float64)
    grad = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)
    second = torch.randn(2, 3, generator=gen, dtype=torch.float64)
    normals = torch.randn(2, 4, 3, generator=gen, dtype=torch.float64)
    found = Derivatives(u, grad, second, 4)
    terms = digs_terms(found, normals, TermSpec("directional", "l2", True, True))
    assert torch.equal(terms["sdf"], sdf_term(u[:, :4]))
    assert torch.equal(terms["inter"], inter_term(u[:, 4:]))
    assert torch.equal(terms["eikonal"], eikonal_term(grad))
    assert torch.equal(terms["normal"], normal_term(grad[:, :4], normals))
    g_o = grad[:, 4:]
    expected = (second / ((g_o * g_o).sum(-1) + 1e-5)).square().mean(-1)
    assert torch.allclose(terms["div"], expected, rtol=1e-14)
    full = digs_terms(found, normals, TermSpec("full", "l1", True, True))["div"]
    assert torch.equal(full, divergence_term(second, "full", "l1"))
    bare = digs_terms(found._replace(second=None), None, TermSpec("none", "l1", False, False))
    assert torch.equal(bare["inter"], torch.zeros(2, dtype=torch.float64))
    assert torch.equal(bare["normal"], torch.zeros(2, dtype=torch.float64))
    assert torch.isnan(bare["div"]).all()


def test_schedules_at_and_between_knots():
    knots = (100.0, 0.2, 100.0, 0.4, 0.0, 0.0)
    lin = WeightSchedule.from_knots("linear", knots)
    assert [lin(t) for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.7, 1.0)] == pytest.approx(
        [100, 100, 100, 50, 0, 0, 0]
    )
    quintic = WeightSchedule.from_knots("quintic", knots)
    assert quintic(0.3) == pytest.approx(100 - 100 * (1 - 0.5**5))
    assert quintic(0.4) == pytest.approx(0.0)
    step = WeightSchedule.from_knots("step", knots)
    assert step(0.39) == 100 and step(0.4) == 0
    assert WeightSchedule.from_knots("none", knots)(0.9) == 100
    with pytest.raises(ValueError, match="even count"):
        WeightSchedule.from_knots("linear", (1.0, 0.5, 2.0))
    with pytest.raises(ValueError, match="unknown schedule"):
        WeightSchedule.from_knots("cosine", knots)
