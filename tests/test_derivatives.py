"""The explicit-derivative training step against the autograd reference and explicit Hessians."""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import math

import pytest
import torch

from steik import derivatives
from steik.derivatives import autograd_derivatives, resolve_step
from steik.errors import SteikError
from steik.explicit import covers, explicit_derivatives
from steik.losses import normalised_directional
from steik.methods import preset
from steik.model import build_network
from steik.nn import LinearLayer, SDFNetwork
from steik.objectives import DigsObjective, loss_terms
from steik.trainer import Trainer

TERMS = DigsObjective.terms
autograd_terms = functools.partial(loss_terms, step="autograd")
explicit_terms = functools.partial(loss_terms, step="explicit")
compiled_terms = functools.partial(loss_terms, step="compiled")

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
        reference = _loss_and_grads(autograd_terms, net, x_m, x_o, nrm, config)
        explicit = _loss_and_grads(explicit_terms, net, x_m, x_o, nrm, config)
        _assert_same(explicit, reference, 1e-10)


@pytest.mark.parametrize("neuron", ["linear", "quadratic"])
@pytest.mark.parametrize("div", ["full", "directional"])
def test_matches_autograd_in_2d_and_without_divergence_this_step(neuron, div):
    config, net, x_m, x_o, nrm = _setup(
        neuron, "mfgi", "sine", div, "l1", (1.6, 1.0), 2, torch.float64, d=2
    )
    for with_div in (True, False):
        reference = _loss_and_grads(autograd_terms, net, x_m, x_o, nrm, config, with_div)
        explicit = _loss_and_grads(explicit_terms, net, x_m, x_o, nrm, config, with_div)
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
    reference = _loss_and_grads(autograd_terms, net, x_m, x_o, nrm, config)
    explicit = _loss_and_grads(explicit_terms, net, x_m, x_o, nrm, config)
    exact = _loss_and_grads(
        autograd_terms,
        copy.deepcopy(net).double(),
        x_m.double(),
        x_o.double(),
        nrm.double(),
        config,
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
    x_m, x_o = x[:, :3], x[:, 3:]  # second derivatives at the last 4 points only
    along_g = explicit_derivatives(net, x_m, x_o, "directional")
    laplacian = explicit_derivatives(net, x_m, x_o, "full").second
    assert explicit_derivatives(net, x_m, x_o, "none").second is None
    assert along_g.n_manifold == 3 and along_g.second.shape == (2, 4)
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
                continue
            hess = torch.autograd.functional.hessian(u_single, x[k, i])
            j = i - 3
            assert math.isclose(along_g.second[k, j].item(), grad @ hess @ grad, rel_tol=1e-9)
            assert math.isclose(
                laplacian[k, j].item(), torch.trace(hess), rel_tol=1e-9, abs_tol=1e-12
            )


def test_both_paths_give_the_same_derivatives():
    """The one interface: explicit and autograd `Derivatives` agree value for value, and the
    directional divergence normalised once (steik.losses) from either."""
    net = SDFNetwork(3, 16, 3, "quadratic", "sine", "mfgi", (1.6, 0.1), n_shapes=1).double()
    x_m = torch.rand(1, 25, 3, dtype=torch.float64) * 1.8 - 0.9
    x_o = torch.rand(1, 40, 3, dtype=torch.float64) * 2.2 - 1.1
    for div in ("none", "directional", "full"):
        ours = explicit_derivatives(net, x_m, x_o, div)
        reference = autograd_derivatives(net, x_m.clone(), x_o.clone(), div)
        assert ours.n_manifold == reference.n_manifold == 25
        assert torch.allclose(ours.u, reference.u.detach(), rtol=1e-12, atol=1e-14)
        assert torch.allclose(ours.grad, reference.grad.detach(), rtol=1e-10, atol=1e-12)
        if div == "none":
            assert ours.second is None and reference.second is None
            continue
        assert torch.allclose(ours.second, reference.second.detach(), rtol=1e-10, atol=1e-12)
    ours = explicit_derivatives(net, x_m, x_o, "directional")
    per_point = normalised_directional(ours.second, ours.grad[:, 25:])
    expected = ours.second / ((ours.grad[:, 25:] ** 2).sum(-1) + 1e-5)
    assert torch.allclose(per_point, expected, rtol=1e-14)


class SkipNetwork(SDFNetwork):
    """A network kind the explicit step does not know: its forward adds a skip connection."""

    def forward(self, x):
        return super().forward(x) + 0.1 * x.norm(dim=-1)


def _spy_paths(monkeypatch) -> list[str]:
    """Record which derivative function each step calls ("explicit" or "autograd")."""
    calls: list[str] = []
    for name, fn in (("explicit", derivatives.explicit_derivatives),
                     ("autograd", derivatives.autograd_derivatives)):  # fmt: skip

        def spy(*args, name=name, fn=fn, **kwargs):
            calls.append(name)
            return fn(*args, **kwargs)

        monkeypatch.setattr(derivatives, f"{name}_derivatives", spy)
    return calls


def test_the_objective_takes_the_path_of_the_step_field(monkeypatch):
    """`auto` takes the explicit path for covered networks and autograd for any other; the
    field's other values force a path, and one a network cannot take is a clear error."""
    calls = _spy_paths(monkeypatch)
    x_m, x_o = torch.rand(1, 20, 3) - 0.5, torch.rand(1, 10, 3) - 0.5
    batch = {"manifold": x_m, "offsurface": x_o}
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
        assert resolve_step(c, build_network(c, 3)) == "autograd", name
    assert covers(build_network(preset("igr_wo_n", "srb", hidden=8, layers=4, skip_in=()), 3))
    config = preset("steik", "srb", hidden=8, layers=2, iterations=3)
    objective = DigsObjective(config)
    for net, expected in ((covered, "explicit"), (skip, "autograd"), (sphere, "autograd")):
        calls.clear()
        terms = objective.loss_terms(net, batch, with_div=True)
        assert calls == [expected] and set(terms) == set(TERMS)
        assert all(torch.isfinite(terms[n]).all() for n in TERMS)
    # The skip network's terms are its own, not those of the plain network it extends.
    plain = objective.loss_terms(covered, batch, with_div=True)
    skip.load_state_dict(covered.state_dict())
    assert not torch.allclose(objective.loss_terms(skip, batch, True)["sdf"], plain["sdf"])
    # step = autograd switches the explicit path off, with no environment variable.
    calls.clear()
    DigsObjective(preset("steik", "srb", hidden=8, layers=2, step="autograd")).loss_terms(
        covered, batch, with_div=True
    )
    assert calls == ["autograd"]
    forced = preset("steik", "srb", hidden=8, layers=2, step="explicit")
    with pytest.raises(SteikError, match="step = 'explicit' needs"):
        DigsObjective(forced).loss_terms(skip, batch, with_div=True)
    with pytest.raises(TypeError):
        explicit_terms(skip, x_m, x_o, None, config)


def test_trainer_steps_match_the_autograd_path(tmp_path, monkeypatch):
    """Ten optimisation steps of a K = 2 batch (divergence on, then off) through Trainer.step:
    same weights either way, and the step took the path of the `step` field."""
    from conftest import write_sphere_sample

    from steik.trainer import read_shape

    shapes = [read_shape(write_sphere_sample(tmp_path / f"s{i}.npz", n=300, radius=0.5 + 0.1 * i,
                                             seed=i)) for i in range(2)]  # fmt: skip
    weights = {}
    calls = _spy_paths(monkeypatch)
    for mode in ("explicit", "autograd"):
        config = preset("steik", "srb", iterations=10, hidden=16, layers=2, n_manifold=100,
                        n_offsurface=100, lr=1e-3, step=mode)  # fmt: skip
        calls.clear()
        trainer = Trainer(shapes, config, tmp_path / mode, seed=3, dtype=torch.float64)
        assert trainer.step_path == mode
        for _ in range(config.iterations):
            trainer.step()
            trainer.iteration += 1
        assert calls == [mode] * config.iterations
        weights[mode] = {n: p.detach().clone() for n, p in trainer.net.named_parameters()}
    for name, value in weights["autograd"].items():
        assert _rel(weights["explicit"][name], value) < 1e-9, name


def test_compiled_step_matches_autograd_float32(monkeypatch):
    """The torch.compile'd step (a small network, so that compiling stays short)."""
    steps = derivatives._CompiledSteps()
    monkeypatch.setattr(derivatives, "_COMPILED", steps)
    config, net, x_m, x_o, nrm = _setup(
        "quadratic", "mfgi", "sine", "directional", "l1", (1.6, 0.1), 2, torch.float32, size=(8, 2)
    )
    reference = _loss_and_grads(autograd_terms, net, x_m, x_o, nrm, config)
    compiled = _loss_and_grads(compiled_terms, net, x_m, x_o, nrm, config)
    assert not steps.failed and len(steps.functions) == 1
    exact = _loss_and_grads(
        autograd_terms, copy.deepcopy(net).double(), x_m.double(), x_o.double(), nrm.double(),
        config,
    )[2]  # fmt: skip
    _assert_same(compiled, reference, 1e-4, exact)


def test_compile_failure_falls_back_to_eager_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setattr(derivatives, "_COMPILED", derivatives._CompiledSteps())

    def no_compiler(fn, **kwargs):
        def fail(*args):
            raise RuntimeError("no C++ compiler found\nsecond line")

        return fail

    monkeypatch.setattr(torch, "compile", no_compiler)
    config, net, x_m, x_o, nrm = _setup(
        "linear", "mfgi", "sine", "full", "l1", (1.6, 0.1), 1, torch.float64
    )
    forced = preset("steik", "srb", hidden=12, layers=3, step="compiled")
    assert resolve_step(forced, net) == "compiled"
    reference = _loss_and_grads(autograd_terms, net, x_m, x_o, nrm, config)
    with caplog.at_level(logging.WARNING, logger="steik.derivatives"):
        for _ in range(3):
            fallback = _loss_and_grads(compiled_terms, net, x_m, x_o, nrm, config)
    _assert_same(fallback, reference, 1e-10)
    lines = [r.getMessage() for r in caplog.records if r.name == "steik.derivatives"]
    assert len(lines) == 1 and "no C++ compiler found" in lines[0] and "\n" not in lines[0]
    # What then runs, and what a model file records, is the explicit path.
    assert resolve_step(forced, net) == "explicit"


def test_auto_compiles_only_long_runs():
    net = build_network(preset("steik", "srb", hidden=8, layers=2), 3)
    assert resolve_step(preset("steik", "srb"), net) == "compiled"  # 10,000 x 30,000 points
    short = preset("steik", "srb", iterations=300, n_manifold=2000, n_offsurface=2000)
    assert resolve_step(short, net) == "explicit"
    assert resolve_step(preset("steik", "srb", step="explicit"), net) == "explicit"
    assert resolve_step(dataclasses.replace(short, step="compiled"), net) == "compiled"
