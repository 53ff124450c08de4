"""Objectives of IGR, SAL and PHASE on hand-computable cases, their samplers, a short training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from steik.baselines import (
    IGRObjective,
    PhaseObjective,
    SALObjective,
    ball_average_term,
    double_well,
    kth_neighbour_distance,
    sal_sample_pool,
    unsigned_distance_term,
)
from steik.errors import SteikError
from steik.methods import learning_rate, network_kwargs, preset
from steik.nn import SDFNetwork
from steik.objectives import Objective, objective_for


class SphereField(torch.nn.Module):
    """K analytic functions of |x|, `[K, n, d] -> [K, n]`: scale * (|x| - radius_k) + shift, or
    PHASE's profile of |x| - radius_k; for the profile `forward` returns 100 times `implicit`
    (to tell which one a loss reads)."""

    def __init__(self, radii, scale=1.0, shift=0.0, profile_eps=None):
        super().__init__()
        self.radii = torch.tensor(radii, dtype=torch.float64)
        self.scale, self.shift, self.profile_eps = scale, shift, profile_eps

    def implicit(self, x):
        d = x.norm(dim=-1) - self.radii.view(-1, 1)
        if self.profile_eps is not None:  # PHASE's 1D profile of the signed distance d
            return torch.sign(d) * (1 - torch.exp(-d.abs() / math.sqrt(self.profile_eps)))
        return self.scale * d + self.shift

    def forward(self, x):
        return self.implicit(x) if self.profile_eps is None else 100.0 * self.implicit(x)


def sphere_points(n, radius, dim=3, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, dim))
    return (radius * p / np.linalg.norm(p, axis=1, keepdims=True)).astype(np.float32)


def to_data(objective, points, normals=None, seed=0):
    arrays = objective.prepare(points, normals, seed=seed)
    data = {"points": torch.from_numpy(points).double()}
    if normals is not None:
        data["normals"] = torch.from_numpy(normals).double()
    data.update({k: torch.from_numpy(v).double() for k, v in arrays.items()})
    return data


def stack(batches):
    return {key: torch.stack([b[key] for b in batches]) for key in batches[0]}


def small(name, **overrides):
    return preset(name, "srb", n_manifold=512, n_offsurface=256, **overrides)


# -- shared pieces -------------------------------------------------------------------------------


def test_kth_neighbour_distance_on_a_line():
    """Points at x = 0, 1, ..., 100: the 50th nearest other point of x = 0 is at 50; x = 50 has
    neighbours at 1, 1, 2, 2, ..., so its 50th is at 25; x = 10 has 20 within 10, then only the
    right side: its 50th is at 10 + 30 = 40."""
    points = np.stack([np.arange(101.0), np.zeros(101)], axis=1)
    sigma = kth_neighbour_distance(points, 50)
    assert (sigma[0], sigma[50], sigma[10], sigma[100]) == (50.0, 25.0, 40.0, 50.0)
    assert kth_neighbour_distance(points[:3], 50).tolist() == [2.0, 1.0, 2.0]  # farthest other
    assert kth_neighbour_distance(points[:1], 50).tolist() == [0.0]


def test_each_method_gets_its_objective():
    kinds = {"igr_wo_n": IGRObjective, "igr_ff": IGRObjective, "sal": SALObjective,
             "phase_ff": PhaseObjective}  # fmt: skip
    for name, kind in kinds.items():
        objective = objective_for(preset(name, "srb"))
        assert isinstance(objective, kind) and isinstance(objective, Objective)


# -- IGR -----------------------------------------------------------------------------------------


def test_igr_terms_on_exact_sphere_distances():
    """u = |x| - r: sdf 0 on the scan, eikonal 0; u + 0.1: sdf exactly 0.1; 2(|x| - r): eikonal
    (2 - 1)^2 = 1. With normals n = x/|x|, grad u = n: normal term 0; for 2(|x| - r) it is 1."""
    objective = IGRObjective(small("igr_wo_n", use_normals=True))
    batches = []
    for k, radius in enumerate((0.5, 0.8)):
        points = sphere_points(2000, radius, seed=k)
        normals = points / radius
        data = to_data(objective, points, normals)
        batches.append(objective.sample(data, torch.Generator().manual_seed(k)))
    batch = stack(batches)
    exact = objective.loss_terms(SphereField([0.5, 0.8]), batch, with_div=False)
    assert set(exact) == {"sdf", "eikonal", "normal"}
    for term in exact.values():
        assert term.shape == (2,) and float(term.detach().abs().max()) < 1e-6
    shifted = objective.loss_terms(SphereField([0.5, 0.8], shift=0.1), batch, with_div=False)
    assert torch.allclose(shifted["sdf"], torch.full((2,), 0.1).double(), atol=1e-6)
    steep = objective.loss_terms(SphereField([0.5, 0.8], scale=2.0), batch, with_div=False)
    assert torch.allclose(steep["eikonal"], torch.ones(2).double(), atol=1e-9)
    assert torch.allclose(steep["normal"], torch.ones(2).double(), atol=1e-6)
    assert objective.weights(0.3) == {"sdf": 1.0, "eikonal": 0.1, "normal": 1.0}


def test_igr_sampler_statistics_and_reproducibility():
    config = preset("igr_wo_n", "srb", n_manifold=20_000, n_offsurface=2_500)
    objective = IGRObjective(config)
    points = np.stack([np.linspace(-1, 1, 30_000), np.zeros(30_000), np.zeros(30_000)], 1)
    data = to_data(objective, points.astype(np.float32))
    # on a line of 30,000 points spaced 2/29,999, the 50th neighbour is 25 spacings away inside
    spacing = 2 / 29_999
    assert data["sigma"][15_000].item() == pytest.approx(25 * spacing, rel=1e-4)
    batch = objective.sample(data, torch.Generator().manual_seed(0))
    manifold, nonmanifold = batch["manifold"], batch["nonmanifold"]
    assert manifold.shape == (20_000, 3) and nonmanifold.shape == (22_500, 3)
    assert len(set(manifold[:, 0].tolist())) == 20_000  # without replacement
    local = nonmanifold[:20_000] - manifold
    z = local / (25 * spacing)  # sigma is 25 spacings away from the ends
    inner = manifold[:, 0].abs() < 0.9
    assert float(z[inner].mean()) == pytest.approx(0.0, abs=0.02)
    assert float(z[inner].std()) == pytest.approx(1.0, abs=0.02)
    far = nonmanifold[20_000:]
    assert float(far.abs().max()) <= 1.8 and float(far.abs().max()) > 1.7
    assert float(far.std()) == pytest.approx(1.8 / math.sqrt(3), rel=0.05)  # uniform
    # reproducible from the generator alone, whatever torch's global state does
    torch.manual_seed(123)
    again = objective.sample(data, torch.Generator().manual_seed(0))
    torch.manual_seed(999)
    assert all(torch.equal(batch[k], again[k]) for k in batch)


def test_k_shapes_in_a_batch_sample_what_they_would_alone():
    pairs = ((IGRObjective, "igr_wo_n"), (SALObjective, "sal"), (PhaseObjective, "phase_ff"))
    for objective, name in pairs:
        obj = objective(
            small(name, sal_pool_size=2000, phase_ball_radius=0.1, phase_ball_samples=4)
        )
        datas = [
            to_data(obj, sphere_points(300, r, seed=i), seed=i) for i, r in enumerate((0.4, 0.7))
        ]
        gens = [torch.Generator().manual_seed(10 + i) for i in range(2)]
        together = [[obj.sample(d, g) for d, g in zip(datas, gens, strict=True)] for _ in range(2)]
        alone = obj.sample(datas[1], torch.Generator().manual_seed(11))
        alone2 = obj.sample(datas[1], torch.Generator().manual_seed(11))
        assert all(torch.equal(together[0][1][k], alone[k]) for k in alone)
        assert all(torch.equal(alone[k], alone2[k]) for k in alone)
        assert not torch.equal(together[0][1][next(iter(alone))], together[1][1][next(iter(alone))])


# -- SAL -----------------------------------------------------------------------------------------


def test_sal_term_on_hand_values():
    u = torch.tensor([[0.5, -0.5, 0.0, -0.2]])
    h = torch.tensor([[0.5, 0.5, 0.1, 0.0]])
    assert torch.allclose(unsigned_distance_term(u, h), torch.tensor([(0 + 0 + 0.1 + 0.2) / 4]))


def test_sal_pool_distances_are_nearest_scan_points():
    points = sphere_points(200, 0.6, seed=3).astype(np.float64)
    sigma = kth_neighbour_distance(points, 50)
    pool, h = sal_sample_pool(points, sigma, 1.0, 1000, np.random.default_rng(0))
    tiles = 1000 // 200
    assert pool.shape == (2 * tiles * 200, 3) and h.shape == (2 * tiles * 200,)
    brute = torch.cdist(torch.from_numpy(pool).double(), torch.from_numpy(points)).min(dim=1)[0]
    assert np.allclose(h, brute.numpy(), atol=1e-6)
    local, coarse = pool[: tiles * 200], pool[tiles * 200 :]
    tiled = np.tile(points, (tiles, 1))
    z = (local - tiled) / np.tile(sigma, tiles)[:, None]
    assert z.std() == pytest.approx(1.0, abs=0.05)
    assert (coarse - tiled).std() == pytest.approx(1.0, abs=0.05)
    # SAL tiles 250000 // N times; a scan larger than the pool keeps one copy
    one, _ = sal_sample_pool(points, sigma, 1.0, 50, np.random.default_rng(0))
    assert one.shape == (400, 3)


def test_sal_loss_vanishes_for_the_unsigned_distance_and_measures_a_shift():
    """Against a dense circle of radius 0.5, u = |x| - 0.5 has |u| = distance to the circle,
    which the nearest scan point matches to within half the spacing (8e-5). Against a scan of one
    point at the origin, h = |x| exactly, so u = |x| gives 0 and u = |x| + 0.25 gives 0.25."""
    objective = SALObjective(preset("sal", "2d", n_offsurface=4000, sal_pool_size=40_000))
    circle = sphere_points(20_000, 0.5, dim=2)
    batch = stack([objective.sample(to_data(objective, circle), torch.Generator().manual_seed(0))])
    assert float(objective.loss_terms(SphereField([0.5]), batch, False)["unsigned"]) < 1e-4
    origin = np.zeros((1, 2), dtype=np.float32)
    batch = stack([objective.sample(to_data(objective, origin), torch.Generator().manual_seed(0))])
    assert float(objective.loss_terms(SphereField([0.0]), batch, False)["unsigned"]) < 1e-6
    shifted = objective.loss_terms(SphereField([0.0], shift=0.25), batch, False)["unsigned"]
    assert float(shifted) == pytest.approx(0.25, abs=1e-6)
    assert objective.weights(0.9) == {"unsigned": 1.0}


# -- PHASE ---------------------------------------------------------------------------------------


def test_double_well_values():
    u = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0])
    assert double_well(u).tolist() == [1.0, 0.0, 0.25, 1.0, 0.25, 0.0, 1.0]


def test_ball_average_of_a_linear_function_is_its_centre_value():
    config = small("phase_ff", phase_ball_radius=0.2, phase_ball_samples=6)
    objective = PhaseObjective(config)
    data = to_data(objective, sphere_points(500, 0.5))
    batch = stack([objective.sample(data, torch.Generator().manual_seed(0))])
    ball = batch["ball"]
    assert ball.shape == (1, 512, 6, 3)
    offsets = ball - ball.mean(dim=2, keepdim=True)
    assert float(offsets.norm(dim=-1).max()) <= 0.2 + 1e-9  # inside the ball, mirrored pairs
    a, b = torch.tensor([0.3, -1.2, 0.7], dtype=torch.float64), 0.05
    u_ball = ball @ a + b
    centres = ball.mean(dim=2)
    assert torch.allclose(ball_average_term(u_ball), (centres @ a + b).abs().mean(dim=-1))


def test_phase_terms_on_the_sphere_profile():
    """u = sign(d)(1 - exp(-|d| / sqrt(eps))) with d = |x| - r (the 1D minimiser): recon 0 on the
    scan, and W(u) = eps |grad u|^2 = exp(-2|d| / sqrt(eps)) at every point (equipartition)."""
    eps = 0.01
    config = small("phase_ff", phase_epsilon=eps, use_normals=True, w_normal=0.5)
    objective = PhaseObjective(config)
    points = sphere_points(1000, 0.5)
    data = to_data(objective, points, points / 0.5)
    batch = stack([objective.sample(data, torch.Generator().manual_seed(0))])
    field = SphereField([0.5], profile_eps=eps)
    terms = objective.loss_terms(field, batch, with_div=False)
    assert float(terms["recon"]) < 1e-6
    d = batch["domain"].norm(dim=-1) - 0.5
    expected = torch.exp(-2 * d.abs() / math.sqrt(eps)).mean(dim=-1)
    assert torch.allclose(terms["potential"], expected, rtol=1e-9)
    assert torch.allclose(terms["gradient"], expected, rtol=1e-6)
    # on the scan grad w = sqrt(eps) grad u / (1 - |u|) = x / |x| = n: normal term 0
    assert float(terms["normal"].detach()) < 1e-6
    assert objective.weights(0.5) == {
        "recon": 1.0,
        "potential": 1.0,
        "gradient": 1.0,
        "normal": 0.5,
    }
    # the loss reads the phase field (implicit), never the network's mapped output
    shifted = SphereField([0.45], profile_eps=eps)
    recon = objective.loss_terms(shifted, batch, with_div=False)["recon"]
    assert float(recon) == pytest.approx(1 - math.exp(-0.05 / 0.1), rel=1e-4)


def test_phase_unit_gradient_term_on_scan_points():
    """phase_mu > 0 adds mean (|grad w| - 1)^2 on the scan points: 0 for the exact profile (w is
    the signed distance), (2 - 1)^2 = 1 when w grows twice as fast; off at the preset's 0."""
    eps = 0.01
    assert "unit_gradient" not in PhaseObjective(small("phase_ff")).terms
    objective = PhaseObjective(small("phase_ff", phase_epsilon=eps, phase_mu=0.1))
    assert objective.terms == ("recon", "potential", "gradient", "unit_gradient")
    assert objective.weights(0.0)["unit_gradient"] == 0.1
    points = sphere_points(1000, 0.5)
    batch = stack([objective.sample(to_data(objective, points), torch.Generator().manual_seed(0))])
    assert "normals" not in batch
    exact = objective.loss_terms(SphereField([0.5], profile_eps=eps), batch, with_div=False)
    assert float(exact["unit_gradient"].detach()) < 1e-6
    # the profile of 2 d: w = 2 d, |grad w| = 2
    scaled = objective.loss_terms(_Scaled(eps), batch, with_div=False)
    assert float(scaled["unit_gradient"].detach()) == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(SteikError, match="phase_mu weights a PHASE term"):
        preset("igr_ff", "srb", phase_mu=0.1)


class _Scaled(torch.nn.Module):
    """PHASE's profile of 2 (|x| - 0.5): its log transform w = 2 d has |grad w| = 2."""

    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    def implicit(self, x):
        d = 2 * (x.norm(dim=-1) - 0.5)
        return torch.sign(d) * (1 - torch.exp(-d.abs() / math.sqrt(self.eps)))


# -- a short training through the protocol ------------------------------------------------------


@pytest.mark.parametrize("name", ["igr_wo_n", "sal", "igr_ff", "phase_ff"])
def test_a_few_adam_steps_lower_the_loss_of_two_shapes(name):
    c = preset(
        name, "srb", hidden=32, layers=3, iterations=60, n_manifold=256, n_offsurface=256,
        skip_in=(2,) if name != "sal" else (), fourier_features=8 if name.endswith("ff") else 0,
        sal_pool_size=4000,
    )  # fmt: skip
    objective = objective_for(c)
    net = SDFNetwork(3, n_shapes=2, seeds=[0, 1], **network_kwargs(c))
    datas = [
        {k: v.float() for k, v in to_data(objective, sphere_points(600, r, seed=i)).items()}
        for i, r in enumerate((0.35, 0.6))
    ]
    gens = [torch.Generator().manual_seed(5 + i) for i in range(2)]
    optimizer = torch.optim.Adam(net.parameters(), lr=learning_rate(c, 0))
    losses = []
    for i in range(c.iterations):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(c, i)
        batch = stack([objective.sample(d, g) for d, g in zip(datas, gens, strict=True)])
        terms = objective.loss_terms(net, batch, with_div=False)
        weights = objective.weights(i / c.iterations)
        loss = sum(weights[t] * terms[t] for t in objective.terms)
        assert loss.shape == (2,) and torch.isfinite(loss).all()
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        losses.append(loss.detach())
    first, last = torch.stack(losses[:5]).mean(0), torch.stack(losses[-5:]).mean(0)
    assert (last < 0.7 * first).all(), (first, last)
