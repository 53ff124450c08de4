"""Objectives of the SPEC 11 baselines: IGR, SAL and PHASE, each as sampling + loss terms + weights.

Each follows `steik.objectives.Objective`: what is computed once per shape (`prepare`), which
points one iteration draws (`sample`), the loss terms on them (`loss_terms`, one value per shape)
and their weights (`weights`); `steik.objectives.objective_for` picks the family from
`config.loss`. The trainer drives every objective the same way, K shapes at once:

    objective = objective_for(config)
    for each shape k (once, before training; also on resume):
        arrays = objective.prepare(points_k, normals_k, seed=seed)        # numpy, CPU
        data_k = {"points": points_k, "normals": normals_k (if any), **arrays} as device tensors
    for each iteration i:
        batch_k = objective.sample(data_k, generator_k)     # shape k's own CPU generator
        batch = {key: torch.stack([batch_0[key], ..., batch_K-1[key]])}   # [K, n, ...]
        terms = objective.loss_terms(net, batch, with_div=False)          # {name: [K]}
        weights = objective.weights(i / config.iterations)
        loss = sum(weights[name] * terms[name] for name in objective.terms)   # [K]
        Adam's lr for this step: steik.methods.learning_rate(config, i)

Every random draw of `sample` comes from the generator it is given (never torch's global state),
so a shape draws the same points whether it trains alone or in a batch, and a resumed run goes on
where the checkpointed generator stopped. `prepare` draws only from `seed` (SAL's sample pools).

Sources (docs/methods.md gives files and lines): IGR = amosgropp/IGR `code/reconstruction/run.py`
and `code/model/sample.py`; SAL = matanatz/SAL `code/model/loss.py` and
`code/datasets/recon_dataset.py`; PHASE = Lipman, "Phase Transitions, Distance Functions, and
Implicit Neural Representations", ICML 2021 (no official code is known).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy.spatial import cKDTree
from torch import Tensor

from steik.methods import MethodConfig
from steik.nn import PHASE_CLAMP

Network = Callable[[Tensor], Tensor]
"""`x [K, n, d] -> u [K, n]`; for PHASE a module whose `implicit` gives the phase field."""


# -- pure terms (reduce over points only: [K, n] -> [K]) -----------------------------------------


def squared_eikonal_term(grads: Tensor) -> Tensor:
    """IGR's eikonal term, mean (|grad u| - 1)^2: `[K, n, d] -> [K]`."""
    return (grads.norm(dim=-1) - 1.0).square().mean(dim=-1)


def normal_difference_term(grads: Tensor, normals: Tensor) -> Tensor:
    """IGR's normals term, mean |grad u - n| (oriented normals): `[K, n, d] -> [K]`."""
    return (grads - normals).norm(dim=-1).mean(dim=-1)


def unsigned_distance_term(u: Tensor, distance: Tensor) -> Tensor:
    """SAL's sign-agnostic regression, mean | |u| - h |: `[K, n]`, `[K, n] -> [K]`."""
    return (u.abs() - distance).abs().mean(dim=-1)


def double_well(u: Tensor) -> Tensor:
    """PHASE's double-well potential W(u) = u^2 - 2|u| + 1 = (1 - |u|)^2, minima at u = -1, +1."""
    return u.square() - 2.0 * u.abs() + 1.0


def phase_potential_term(u: Tensor) -> Tensor:
    """Mean W(u) over the domain samples: `[K, n] -> [K]`."""
    return double_well(u).mean(dim=-1)


def phase_gradient_term(grads: Tensor, epsilon: float) -> Tensor:
    """Mean eps |grad u|^2 over the domain samples: `[K, n, d] -> [K]`."""
    return epsilon * grads.square().sum(dim=-1).mean(dim=-1)


def ball_average_term(u_ball: Tensor) -> Tensor:
    """PHASE's reconstruction term, mean over scan points of |average of u over its ball|:
    `[K, n, s] -> [K]` (s samples per ball)."""
    return u_ball.mean(dim=-1).abs().mean(dim=-1)


# -- sampling helpers ----------------------------------------------------------------------------


def kth_neighbour_distance(points: np.ndarray, k: int) -> np.ndarray:
    """float32 `[N]`: distance from each point of `points [N, d]` to its k-th nearest other point.

    As IGR and SAL compute it (a KD-tree query of k + 1 neighbours, the point itself first, then
    the last column). With fewer than k + 1 points the farthest other point is used; one point
    alone gets 0.
    """
    points = np.asarray(points, dtype=np.float64)
    count = min(k + 1, len(points))
    if count < 2:
        return np.zeros(len(points), dtype=np.float32)
    distances, _ = cKDTree(points).query(points, k=count)
    return distances[:, -1].astype(np.float32)


def sal_sample_pool(
    points: np.ndarray,
    sigma: np.ndarray,
    global_sigma: float,
    pool_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """SAL's fixed training samples and their unsigned distances to the scan.

    The scan `points [N, d]` is tiled T = max(1, pool_size // N) times; one copy of the tiling is
    moved by N(0, sigma_i^2) (sigma_i: `sigma [N]`), another by N(0, global_sigma^2). Returns the
    samples `[2 T N, d]` and h `[2 T N]`, the Euclidean distance from each to its nearest scan
    point (a KD-tree query; SAL's recon_dataset.py computes the same distances point by point).
    SAL tiles `250000 // N` times, which is 0 for larger scans; we keep at least one copy.
    """
    points = np.asarray(points, dtype=np.float64)
    tiles = max(1, pool_size // len(points))
    tiled = np.tile(points, (tiles, 1))
    local = tiled + np.tile(sigma.astype(np.float64), tiles)[:, None] * rng.standard_normal(
        tiled.shape
    )
    coarse = tiled + global_sigma * rng.standard_normal(tiled.shape)
    samples = np.concatenate([local, coarse])
    distance, _ = cKDTree(points).query(samples, k=1)
    return samples.astype(np.float32), distance.astype(np.float32)


def scan_indices(n_points: int, count: int, generator: torch.Generator) -> Tensor:
    """`count` indices into a scan of `n_points`: without replacement (IGR's np.random.choice
    with replace=False) when the scan is large enough, with replacement otherwise."""
    if n_points >= count:
        return torch.randperm(n_points, generator=generator)[:count]
    return torch.randint(n_points, (count,), generator=generator)


def _draw_scan(
    data: dict[str, Tensor], count: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """The scan `[N, d]` and `count` indices into it on its device (`scan_indices`)."""
    points = data["points"]
    return points, scan_indices(points.shape[0], count, generator).to(points.device)


def ball_offsets(
    count: int, samples: int, dim: int, radius: float, generator: torch.Generator
) -> Tensor:
    """float64 `[count, samples, dim]` offsets uniform in the ball of `radius`, drawn in mirrored
    pairs (+o, -o), so that the average of a linear function over a ball is its value at the
    centre; an odd `samples` keeps one unpaired offset."""
    half = (samples + 1) // 2
    direction = torch.randn(count, half, dim, generator=generator, dtype=torch.float64)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    length = radius * torch.rand(count, half, 1, generator=generator, dtype=torch.float64) ** (
        1.0 / dim
    )
    offsets = direction * length
    return torch.cat([offsets, -offsets], dim=1)[:, :samples]


def _uniform_box(count: int, dim: int, extent: float, generator: torch.Generator) -> Tensor:
    """float64 `[count, dim]` uniform in [-extent, extent]^dim."""
    return (torch.rand(count, dim, generator=generator, dtype=torch.float64) * 2.0 - 1.0) * extent


def _input_gradient(u: Tensor, x: Tensor) -> Tensor:
    (grads,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    return grads


# -- objectives ----------------------------------------------------------------------------------


class IGRObjective:
    """IGR (Gropp et al. 2020): mean |u| on the scan + lambda mean (|grad u| - 1)^2 on the
    non-manifold samples only (+ mean |grad u - n| on the scan with normals).

    Per iteration: `n_manifold` scan points (without replacement); non-manifold samples = each of
    them moved by N(0, sigma_i^2 I) (sigma_i: distance to its `local_sigma_neighbours`-th nearest
    scan point) plus `n_offsurface` uniform points in [-offsurface_extent, offsurface_extent]^d
    (IGR: batch / 8 = 2,048 in [-1.8, 1.8]^3). Weights: sdf = w_sdf (1), eikonal = w_eikonal
    (lambda = 0.1), normal = w_normal (1).
    """

    def __init__(self, config: MethodConfig) -> None:
        self.config = config
        self.terms: tuple[str, ...] = ("sdf", "eikonal") + (
            ("normal",) if config.use_normals else ()
        )

    def prepare(
        self, points: np.ndarray, normals: np.ndarray | None, *, seed: int = 0
    ) -> dict[str, np.ndarray]:
        """`sigma [N]`: each scan point's local noise scale."""
        return {"sigma": kth_neighbour_distance(points, self.config.local_sigma_neighbours)}

    def sample(self, data: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        """`manifold [n, d]`, `nonmanifold [n + n_offsurface, d]` (local, then global), and
        `normals [n, d]` when the method uses them."""
        c = self.config
        points, index = _draw_scan(data, c.n_manifold, generator)
        device, dtype, dim = points.device, points.dtype, points.shape[1]
        manifold = points[index]
        noise = torch.randn(c.n_manifold, dim, generator=generator, dtype=torch.float64)
        local = manifold + noise.to(device, dtype) * data["sigma"][index].unsqueeze(-1)
        far = _uniform_box(c.n_offsurface, dim, c.offsurface_extent, generator).to(device, dtype)
        batch = {"manifold": manifold, "nonmanifold": torch.cat([local, far])}
        if c.use_normals:
            batch["normals"] = data["normals"][index]
        return batch

    def weights(self, fraction: float) -> dict[str, float]:
        c = self.config
        every = {"sdf": c.w_sdf, "eikonal": c.w_eikonal, "normal": c.w_normal}
        return {name: every[name] for name in self.terms}

    def loss_terms(
        self, net: Network, batch: dict[str, Tensor], with_div: bool
    ) -> dict[str, Tensor]:
        """`sdf`, `eikonal` (and `normal`), `[K]` each; `with_div` is unused (no divergence)."""
        x_m = batch["manifold"].detach().requires_grad_("normal" in self.terms)
        x_n = batch["nonmanifold"].detach().requires_grad_(True)
        u_m, u_n = net(x_m), net(x_n)
        terms = {
            "sdf": u_m.abs().mean(dim=-1),
            "eikonal": squared_eikonal_term(_input_gradient(u_n, x_n)),
        }
        if "normal" in self.terms:
            terms["normal"] = normal_difference_term(_input_gradient(u_m, x_m), batch["normals"])
        return terms


class SALObjective:
    """SAL (Atzmon & Lipman 2020): mean | |u(x)| - h(x) | with h the unsigned distance from x to
    the scan, over x drawn from SAL's fixed pool of samples around the scan.

    `prepare` builds the pool once (`sal_sample_pool`: local sigma_i = distance to the
    `local_sigma_neighbours`-th neighbour, global `sal_global_sigma`), with h from a KD-tree on
    the full scan, exactly as SAL's dataset does before training; each iteration then draws
    `n_offsurface` pool entries uniformly with replacement (SAL: 128^2 = 16,384). No gradient of
    u is needed. Weight: unsigned = w_sdf (1).
    """

    terms: tuple[str, ...] = ("unsigned",)

    def __init__(self, config: MethodConfig) -> None:
        self.config = config

    def prepare(
        self, points: np.ndarray, normals: np.ndarray | None, *, seed: int = 0
    ) -> dict[str, np.ndarray]:
        """`pool [P, d]` and `pool_distance [P]` (P = 2 T N), drawn from `seed`."""
        c = self.config
        sigma = kth_neighbour_distance(points, c.local_sigma_neighbours)
        rng = np.random.default_rng(seed)
        pool, distance = sal_sample_pool(points, sigma, c.sal_global_sigma, c.sal_pool_size, rng)
        return {"pool": pool, "pool_distance": distance}

    def sample(self, data: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        """`points [n, d]` from the pool and their `distance [n]` to the scan."""
        pool = data["pool"]
        index = torch.randint(pool.shape[0], (self.config.n_offsurface,), generator=generator)
        index = index.to(pool.device)
        return {"points": pool[index], "distance": data["pool_distance"][index]}

    def weights(self, fraction: float) -> dict[str, float]:
        return {"unsigned": self.config.w_sdf}

    def loss_terms(
        self, net: Network, batch: dict[str, Tensor], with_div: bool
    ) -> dict[str, Tensor]:
        """`unsigned`, `[K]`; `with_div` is unused (no divergence)."""
        return {"unsigned": unsigned_distance_term(net(batch["points"]), batch["distance"])}


def phase_field(net: Network, x: Tensor) -> Tensor:
    """The phase field u the PHASE loss is written on: `net.implicit(x)` for an `SDFNetwork`
    (whose forward applies the log transform), the plain output for any other callable."""
    implicit = getattr(net, "implicit", None)
    return implicit(x) if callable(implicit) else net(x)


class PhaseObjective:
    """PHASE (Lipman 2021): the Modica-Mortola / van der Waals-Cahn-Hilliard energy of a phase
    field u plus a reconstruction term that puts the interface on the scan:

        L(u) = lambda mean_i |avg_{B(x_i, delta)} u|                  (recon)
             + mean_Omega W(u) + mean_Omega eps |grad u|^2          (potential, gradient)
             [+ mu mean_i |grad w(x_i) - n_i|  with normals]        (normal)
             [+ mu' mean_i (|grad w(x_i)| - 1)^2  phase_mu > 0]     (unit_gradient)

    with W(u) = u^2 - 2|u| + 1 and w = -sqrt(eps) log(1 - |u|) sign(u) the distance the network
    reports (`SDFNetwork` with output_map = phase_log). Any overall factor on the energy (such as
    the eps^(-1/2) under which it tends to the surface's perimeter) is absorbed in lambda.

    Per iteration: `n_manifold` scan points, each with `phase_ball_samples` points uniform in its
    ball of radius `phase_ball_radius` (0: the point itself), and `n_offsurface` points uniform
    in Omega = [-offsurface_extent, offsurface_extent]^d. Weights: recon = w_sdf (lambda),
    potential = gradient = 1 (the energy's own unit weights; eps sits inside the gradient term),
    normal = w_normal (mu), unit_gradient = phase_mu (the points-only term public
    re-implementations add; off in our preset, docs/methods.md).
    """

    def __init__(self, config: MethodConfig) -> None:
        self.config = config
        self.terms: tuple[str, ...] = (
            ("recon", "potential", "gradient")
            + (("normal",) if config.use_normals else ())
            + (("unit_gradient",) if config.phase_mu > 0 else ())
        )

    def prepare(
        self, points: np.ndarray, normals: np.ndarray | None, *, seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Nothing to precompute (the scan itself is all PHASE reads)."""
        return {}

    def sample(self, data: dict[str, Tensor], generator: torch.Generator) -> dict[str, Tensor]:
        """`ball [n, s, d]`, `domain [n_offsurface, d]`, and with normals `manifold [n, d]`,
        `normals [n, d]`."""
        c = self.config
        points, index = _draw_scan(data, c.n_manifold, generator)
        device, dtype, dim = points.device, points.dtype, points.shape[1]
        centres = points[index]
        if c.phase_ball_radius > 0:
            offsets = ball_offsets(
                c.n_manifold, c.phase_ball_samples, dim, c.phase_ball_radius, generator
            )
            ball = centres.unsqueeze(1) + offsets.to(device, dtype)
        else:
            ball = centres.unsqueeze(1).expand(-1, c.phase_ball_samples, -1)
        domain = _uniform_box(c.n_offsurface, dim, c.offsurface_extent, generator)
        batch = {"ball": ball, "domain": domain.to(device, dtype)}
        if c.use_normals or c.phase_mu > 0:
            batch["manifold"] = centres
        if c.use_normals:
            batch["normals"] = data["normals"][index]
        return batch

    def weights(self, fraction: float) -> dict[str, float]:
        c = self.config
        every = {"recon": c.w_sdf, "potential": 1.0, "gradient": 1.0, "normal": c.w_normal,
                 "unit_gradient": c.phase_mu}  # fmt: skip
        return {name: every[name] for name in self.terms}

    def loss_terms(
        self, net: Network, batch: dict[str, Tensor], with_div: bool
    ) -> dict[str, Tensor]:
        """`recon`, `potential`, `gradient` (and `normal`, `unit_gradient`), `[K]` each, on the
        phase field u; `with_div` is unused (no divergence)."""
        eps = self.config.phase_epsilon
        ball = batch["ball"]
        k, n, s, d = ball.shape
        u_ball = phase_field(net, ball.reshape(k, n * s, d)).reshape(k, n, s)
        x_o = batch["domain"].detach().requires_grad_(True)
        u_o = phase_field(net, x_o)
        terms = {
            "recon": ball_average_term(u_ball),
            "potential": phase_potential_term(u_o),
            "gradient": phase_gradient_term(_input_gradient(u_o, x_o), eps),
        }
        if "manifold" in batch:
            x_m = batch["manifold"].detach().requires_grad_(True)
            u_m = phase_field(net, x_m)
            # grad w = sqrt(eps) grad u / (1 - |u|) for either sign of u
            scale = math.sqrt(eps) / (1.0 - u_m.abs()).clamp_min(PHASE_CLAMP)
            grad_w = _input_gradient(u_m, x_m) * scale.unsqueeze(-1)
            if "normal" in self.terms:
                terms["normal"] = normal_difference_term(grad_w, batch["normals"])
            if "unit_gradient" in self.terms:
                terms["unit_gradient"] = squared_eikonal_term(grad_w)
        return terms


OBJECTIVES: dict[str, type] = {"igr": IGRObjective, "sal": SALObjective, "phase": PhaseObjective}
"""`MethodConfig.loss` -> objective class of the SPEC 11 baselines."""
