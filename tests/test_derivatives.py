"""The explicit-derivative training step against the autograd reference and explicit Hessians."""

from __future__ import annotations

import copy
import logging
import math

import pytest
import torch

from steik import derivatives
from steik.derivatives import covers, explicit_loss_terms, network_derivatives
from steik.losses import directional_divergence, full_divergence
from steik.methods import preset
from steik.model import build_network
from steik.nn import LinearLayer, SDFNetwork
from steik.objectives import DigsObjective, loss_terms, training_terms
from steik.train import Trainer

TERMS = DigsObjective.terms

WEIGHTS = {"sdf": 2e3, "inter": 1e2, "normal": 1e2, "eikonal": 5e1, "div": 1e2}
# Geometric ReLU init belongs to the softplus network, the other inits to the sine one (SPEC 2).
INIT_ACTIVATION = [
    ("siren", "sine"),
    ("geometric_sine", "sine"),
    ("mfgi", "sine"),
    ("geometric_relu", "softplus"),
]
DIVERGENCES = [
    ("none", "l1"),
    ("full", "l1"),
    ("full", "l2"),
    ("directional", "l1"),
    ("directional", "l2"),
]


@pytest.fixture(autouse=True)
def _eager_explicit(monkeypatch):
    """Explicit path, never compiled, unless a test asks otherwise."""
    monkeypatch.setenv(derivatives.STEP_ENV, "explicit")


def _setup(
    neuron, init, activation, div, norm, sphere, k, dtype, d=3, normals=True, seed=0, size=(12, 3)
):
    config = preset(
        "steik",
        "srb",
        neuron=neuron,
        init=init,
        activation=activation,
        div=div,
        div_norm=norm,
        use_normals=normals,
        hidden=size[0],
        layers=size[1],
    )
    net = SDFNetwork(
        d, *size, neuron, activation, init, sphere, n_shapes=k, seeds=list(range(seed, seed + k))
    ).to(dtype)
    gen = torch.Generator().manual_seed(seed + 100)
    x_m = (torch.rand(k, 30, d, generator=gen, dtype=torch.float64) * 1.8 - 0.9).to(dtype)
    x_o = (torch.rand(k, 20, d, generator=gen, dtype=torch.float64) * 2.2 - 1.1).to(dtype)
    nrm = torch.nn.functional.normalize(
        torch.randn(k, 30, d, generator=gen, dtype=torch.float64), dim=-1
    ).to(dtype)
    return config, net, x_m, x_o, nrm


def _loss_and_grads(terms_fn, net, x_m, x_o, normals, config, with_div=True):
    """Terms, the weighted loss `[K]` and the gradient of a K-weighted sum of it (shapes weighted
    differently, so that a mixed-up shape shows)."""
    net.zero_grad()
    terms = terms_fn(net, x_m.clone(), x_o.clone(), normals, config, with_div)
    use_div = with_div and config.div != "none"
    loss = sum(WEIGHTS[n] * terms[n] for n in TERMS if n != "div" or use_div)
    shape_weights = torch.arange(1, loss.shape[0] + 1, dtype=loss.dtype)
    (loss * shape_weights).sum().backward()
    grads = {name: p.grad.detach().clone() for name, p in net.named_parameters()}
    return {n: t.detach() for n, t in terms.items()}, loss.detach(), grads


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest difference relative to the reference's largest magnitude."""
    scale = b.abs().max().item()
    return (a - b).abs().max().item() / scale if scale > 0 else (a - b).abs().max().item()


def _norm_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """|a - b| / |b| in the Frobenius norm, computed in float64."""
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item() if b.norm() > 0 else (a - b).norm().item()


def _assert_same(explicit, reference, tol, exact=None):
    """Terms and loss per shape to `tol` relative; every gradient per shape to `tol` relative to
    its largest entry. With `exact` (the float64 gradients of a float32 comparison), a gradient
    may differ from the float32 reference by more (Frobenius norm) only where that reference is
    itself further from the exact one than the explicit path is."""
    terms_e, loss_e, grads_e = explicit
    terms_r, loss_r, grads_r = reference
    for name in TERMS:
        if torch.isnan(terms_r[name]).all():
            assert torch.isnan(terms_e[name]).all(), name
            continue
        # per shape, relative to that shape's value
        err = ((terms_e[name] - terms_r[name]).abs() / terms_r[name].abs().clamp_min(1e-30)).max()
        assert err.item() < tol, (name, err.item())
    assert ((loss_e - loss_r).abs() / loss_r.abs()).max().item() < tol
    for name, grad in grads_r.items():
        for k in range(grad.shape[0]):  # per shape: a small shape's gradient must match as well
            if exact is None:
                err = _rel(grads_e[name][k], grad[k])
                assert err < tol, (name, k, err)
                continue
            err = _norm_rel(grads_e[name][k], grad[k])
            truth = exact[name][k]
            assert err < tol or _norm_rel(grads_e[name][k], truth) <= _norm_rel(grad[k], truth), (
                name,
                k,
                err,
            )


@pytest.mark.parametrize(("div", "norm"), DIVERGENCES)
@pytest.mark.parametrize(("init", "activation"), INIT_ACTIVATION)
@pytest.mark.parametrize("neuron", ["linear", "quadratic"])
@pytest.mark.parametrize("sphere", [(1.6, 0.1), None], ids=["sphere", "raw"])
def test_matches_autograd_float64(neuron, init, activation, div, norm, sphere):
    for k, normals in ((1, True), (3, False)):
        config, net, x_m, x_o, nrm = _setup(
            neuron, init, activation, div, norm, sphere, k, torch.float64, normals=normals
        )
        reference = _loss_and_grads(loss_terms, net, x_m, x_o, nrm, config)
        explicit = _loss_and_grads(explicit_loss_terms, net, x_m, x_o, nrm, config)
        _assert_same(explicit, reference, 1e-10)


@pytest.mark.parametrize("neuron", ["linear", "quadratic"])
@pytest.mark.parametrize("div", ["full", "directional"])
def test_matches_autograd_in_2d_and_without_divergence_this_step(neuron, div):
    config, net, x_m, x_o, nrm = _setup(
        neuron, "mfgi", "sine", div, "l1", (1.6, 1.0), 2, torch.float64, d=2
    )
    for with_div in (True, False):
        reference = _loss_and_grads(loss_terms, net, x_m, x_o, nrm, config, with_div)
        explicit = _loss_and_grads(explicit_loss_terms, net, x_m, x_o, nrm, config, with_div)
        _assert_same(explicit, reference, 1e-10)
        assert math.isnan(explicit[0]["div"][0]) != with_div


@pytest.mark.parametrize(("div", "norm"), [("none", "l1"), ("full", "l1"), ("directional", "l1")])
@pytest.mark.parametrize(("init", "activation"), [("mfgi", "sine"), ("geometric_relu", "softplus")])
@pytest.mark.parametrize("neuron", ["linear", "quadratic"])
@pytest.mark.parametrize("k", [1, 3])
def test_matches_autograd_float32(neuron, init, activation, div, norm, k):
    sphere = (1.6, 0.1) if init == "mfgi" else None
    config, net, x_m, x_o, nrm = _setup(
        neuron, init, activation, div, norm, sphere, k, torch.float32
    )
    reference = _loss_and_grads(loss_terms, net, x_m, x_o, nrm, config)
    explicit = _loss_and_grads(explicit_loss_terms, net, x_m, x_o, nrm, config)
    exact = _loss_and_grads(
        loss_terms, copy.deepcopy(net).double(), x_m.double(), x_o.double(), nrm.double(), config
    )[2]
    _assert_same(explicit, reference, 1e-4, exact)


@pytest.mark.parametrize("neuron", ["linear", "quadratic"])
@pytest.mark.parametrize("d", [2, 3])
def test_second_derivatives_match_explicit_hessian(neuron, d):
    """g, g^T H g and tr H against torch.autograd.functional on single points, both shapes of a
    K = 2 batch."""
    net = SDFNetwork(d, 10, 2, neuron, "sine", "mfgi", (1.6, 0.1), n_shapes=2, seeds=[5, 6])
    net = net.double()
    x = torch.rand(2, 7, d, dtype=torch.float64) * 1.6 - 0.8
    along_g = network_derivatives(net, x, n_second=4, directions="gradient")
    laplacian = network_derivatives(net, x, n_second=4, directions="axes").second
    assert network_derivatives(net, x).second is None
    for k in range(2):
        for i in range(7):

            def u_single(p, k=k):
                batch = torch.zeros(2, 1, d, dtype=torch.float64)
                batch = batch.index_put((torch.tensor([k]), torch.tensor([0])), p.unsqueeze(0))
                return net(batch)[k, 0]

            grad = torch.autograd.functional.jacobian(u_single, x[k, i])
            assert torch.allclose(along_g.u[k, i], u_single(x[k, i]), rtol=1e-12, atol=1e-14)
            assert torch.allclose(along_g.grad[k, i], grad, rtol=1e-10, atol=1e-12)
            if i < 3:
                continue  # second derivatives at the last 4 points only
            hess = torch.autograd.functional.hessian(u_single, x[k, i])
            j = i - 3
            assert math.isclose(along_g.second[k, j].item(), grad @ hess @ grad, rel_tol=1e-9)
            assert math.isclose(
                laplacian[k, j].item(), torch.trace(hess), rel_tol=1e-9, abs_tol=1e-12
            )


def test_per_point_divergences_equal_the_autograd_ones():
    """The per-point values before any norm, against steik.losses' divergences."""
    net = SDFNetwork(3, 16, 3, "quadratic", "sine", "mfgi", (1.6, 0.1), n_shapes=1).double()
    x = (torch.rand(1, 40, 3, dtype=torch.float64) * 2.2 - 1.1).requires_grad_(True)
    (g,) = torch.autograd.grad(net(x).sum(), x, create_graph=True)
    out = network_derivatives(net, x.detach(), n_second=40, directions="gradient")
    expected = directional_divergence(x, g).detach()
    ours = out.second / ((out.grad * out.grad).sum(-1) + 1e-5)
    assert torch.allclose(ours, expected, rtol=1e-10, atol=1e-12)
    lap = network_derivatives(net, x.detach(), n_second=40, directions="axes").second
    assert torch.allclose(lap, full_divergence(x, g).detach(), rtol=1e-10, atol=1e-12)


class SkipNetwork(SDFNetwork):
    """A network kind the explicit step does not know: its forward adds a skip connection."""

    def forward(self, x):
        return super().forward(x) + 0.1 * x.norm(dim=-1)


def test_dispatch_takes_the_explicit_path_only_for_covered_networks(monkeypatch):
    config = preset("steik", "srb", hidden=8, layers=2, iterations=3)
    calls: list[str] = []
    explicit, autograd = derivatives.explicit_loss_terms, loss_terms

    def spy_explicit(*args, **kwargs):
        calls.append("explicit")
        return explicit(*args, **kwargs)

    def spy_autograd(*args, **kwargs):
        calls.append("autograd")
        return autograd(*args, **kwargs)

    monkeypatch.setattr(derivatives, "explicit_loss_terms", spy_explicit)
    monkeypatch.setattr("steik.objectives.loss_terms", spy_autograd)
    x_m, x_o = torch.rand(1, 20, 3) - 0.5, torch.rand(1, 10, 3) - 0.5
    covered = SDFNetwork(3, 8, 2, "quadratic", "sine", "mfgi")
    skip = SkipNetwork(3, 8, 2, "quadratic", "sine", "mfgi")

    def sphere(x):
        return x.norm(dim=-1) - 0.5

    mixed = SDFNetwork(3, 8, 2, "quadratic", "sine", "mfgi")
    mixed.layers[-1] = LinearLayer(8, 1)
    assert covers(covered) and not covers(skip) and not covers(sphere) and not covers(mixed)
    # The networks of the SPEC 11 baselines take the autograd path.
    for name, extra in (("igr_wo_n", {}), ("sal", {}), ("igr_ff", {}), ("phase_ff", {})):
        c = preset(name, "srb", hidden=8, layers=4, skip_in=(2,) if name != "sal" else (),
                   fourier_features=4 if name.endswith("ff") else 0, **extra)  # fmt: skip
        assert not covers(build_network(c, 3)), name
    assert covers(build_network(preset("igr_wo_n", "srb", hidden=8, layers=4, skip_in=()), 3))
    for net, expected in ((covered, "explicit"), (skip, "autograd"), (sphere, "autograd")):
        calls.clear()
        terms = training_terms(net, x_m, x_o, None, config)
        assert calls == [expected] and set(terms) == set(TERMS)
        assert all(torch.isfinite(terms[n]).all() for n in TERMS)
    # The skip network's terms are its own, not those of the plain network it extends.
    plain = training_terms(covered, x_m, x_o, None, config)
    skip.load_state_dict(covered.state_dict())
    assert not torch.allclose(training_terms(skip, x_m, x_o, None, config)["sdf"], plain["sdf"])
    # STEIK_STEP=autograd switches the explicit path off; an unknown value is an error.
    monkeypatch.setenv(derivatives.STEP_ENV, "autograd")
    calls.clear()
    training_terms(covered, x_m, x_o, None, config)
    assert calls == ["autograd"]
    monkeypatch.setenv(derivatives.STEP_ENV, "fast")
    with pytest.raises(ValueError, match="STEIK_STEP"):
        training_terms(covered, x_m, x_o, None, config)
    with pytest.raises(TypeError):
        explicit(skip, x_m, x_o, None, config)


def test_trainer_steps_match_the_autograd_path(tmp_path, monkeypatch):
    """Ten optimisation steps of a K = 2 batch (divergence on, then off) through Trainer.step:
    same weights either way, and the step took the explicit path."""
    from conftest import write_sphere_sample

    from steik.train import read_shape

    shapes = [read_shape(write_sphere_sample(tmp_path / f"s{i}.npz", n=300, radius=0.5 + 0.1 * i,
                                             seed=i)) for i in range(2)]  # fmt: skip
    config = preset(
        "steik",
        "srb",
        iterations=10,
        hidden=16,
        layers=2,
        n_manifold=100,
        n_offsurface=100,
        lr=1e-3,
    )
    weights = {}
    explicit_steps = []
    explicit = derivatives.explicit_loss_terms

    def spy(*args, **kwargs):
        explicit_steps.append(1)
        return explicit(*args, **kwargs)

    monkeypatch.setattr(derivatives, "explicit_loss_terms", spy)
    for mode in ("explicit", "autograd"):
        monkeypatch.setenv(derivatives.STEP_ENV, mode)
        explicit_steps.clear()
        trainer = Trainer(shapes, config, tmp_path / mode, seed=3, dtype=torch.float64)
        for _ in range(config.iterations):
            trainer.step()
            trainer.iteration += 1
        assert len(explicit_steps) == (config.iterations if mode == "explicit" else 0), mode
        weights[mode] = {n: p.detach().clone() for n, p in trainer.net.named_parameters()}
    for name, value in weights["autograd"].items():
        assert _rel(weights["explicit"][name], value) < 1e-9, name


def test_compiled_step_matches_autograd_float32(monkeypatch):
    """The torch.compile'd step (a small network, so that compiling stays short)."""
    monkeypatch.setenv(derivatives.STEP_ENV, "compiled")
    steps = derivatives._CompiledSteps()
    monkeypatch.setattr(derivatives, "_COMPILED", steps)
    config, net, x_m, x_o, nrm = _setup(
        "quadratic", "mfgi", "sine", "directional", "l1", (1.6, 0.1), 2, torch.float32, size=(8, 2)
    )
    reference = _loss_and_grads(loss_terms, net, x_m, x_o, nrm, config)
    compiled = _loss_and_grads(explicit_loss_terms, net, x_m, x_o, nrm, config)
    assert not steps.failed and len(steps.functions) == 1
    exact = _loss_and_grads(
        loss_terms, copy.deepcopy(net).double(), x_m.double(), x_o.double(), nrm.double(), config
    )[2]
    _assert_same(compiled, reference, 1e-4, exact)


def test_compile_failure_falls_back_to_eager_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setenv(derivatives.STEP_ENV, "compiled")
    monkeypatch.setattr(derivatives, "_COMPILED", derivatives._CompiledSteps())

    def no_compiler(fn, **kwargs):
        def fail(*args):
            raise RuntimeError("no C++ compiler found\nsecond line")

        return fail

    monkeypatch.setattr(torch, "compile", no_compiler)
    config, net, x_m, x_o, nrm = _setup(
        "linear", "mfgi", "sine", "full", "l1", (1.6, 0.1), 1, torch.float64
    )
    reference = _loss_and_grads(loss_terms, net, x_m, x_o, nrm, config)
    with caplog.at_level(logging.WARNING, logger="steik.derivatives"):
        for _ in range(3):
            fallback = _loss_and_grads(explicit_loss_terms, net, x_m, x_o, nrm, config)
    _assert_same(fallback, reference, 1e-10)
    lines = [r.getMessage() for r in caplog.records if r.name == "steik.derivatives"]
    assert len(lines) == 1 and "no C++ compiler found" in lines[0] and "\n" not in lines[0]


def test_auto_mode_compiles_only_long_runs(monkeypatch):
    monkeypatch.setenv(derivatives.STEP_ENV, "auto")
    assert derivatives.wants_compile(preset("steik", "srb"))  # 10,000 x 30,000 points
    assert not derivatives.wants_compile(
        preset("steik", "srb", iterations=300, n_manifold=2000, n_offsurface=2000)
    )
    monkeypatch.setenv(derivatives.STEP_ENV, "explicit")
    assert not derivatives.wants_compile(preset("steik", "srb"))
