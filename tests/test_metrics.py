"""Metrics on hand-computable cases and against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from steik import metrics
from steik.grid import evaluate_points


def sphere_points(n: int, radius: float, seed: int, center=(0.0, 0.0, 0.0)) -> np.ndarray:
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return radius * p / np.linalg.norm(p, axis=1, keepdims=True) + np.asarray(center)


def sphere_mesh(radius: float, center=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    s = trimesh.creation.icosphere(5, radius=radius).apply_translation(center)
    return np.asarray(s.vertices), np.asarray(s.faces)


def test_concentric_spheres_give_the_radius_difference():
    r1, r2 = 1.0, 1.25
    recon, normals = metrics.sample_mesh(*sphere_mesh(r1), 30_000, seed=0)
    gt = sphere_points(30_000, r2, 1)
    out = metrics.compare_surfaces(recon, gt, normals, gt / r2, tau=0.01)
    assert out["chamfer"] == pytest.approx(r2 - r1, abs=2e-3)
    assert out["hausdorff"] == pytest.approx(r2 - r1, abs=1e-2)
    assert out["chamfer_sq"] == pytest.approx(2 * (r2 - r1) ** 2, rel=2e-2)
    assert out["chamfer_l1"] == pytest.approx((r2 - r1) / (2 * r2), rel=1e-2)
    assert out["fscore"] == 0.0  # every point is 0.25 away, far beyond tau
    assert out["normal_consistency"] > 0.99  # radial normals agree along radial neighbours


def test_scan_metrics_are_one_sided():
    vertices, faces = sphere_mesh(1.0)
    recon, _ = metrics.sample_mesh(vertices, faces, 50_000, seed=3)
    scan = sphere_points(5_000, 1.0, 4)
    mean, worst = metrics.one_sided(scan, recon)
    assert mean < 0.01 and worst < 0.03
    # an outlier cluster in the scan, 2 units outside the sphere, moves hausdorff_scan to ~2
    cluster = sphere_points(50, 0.01, 5, center=(3.0, 0.0, 0.0))
    _, worst_outlier = metrics.one_sided(np.concatenate([scan, cluster]), recon)
    assert worst_outlier == pytest.approx(2.0, abs=0.02)
    # a spurious component in the reconstruction leaves both scan metrics unchanged
    extra, _ = metrics.sample_mesh(*sphere_mesh(0.2, (5.0, 0.0, 0.0)), 5_000, seed=6)
    assert metrics.one_sided(scan, np.concatenate([recon, extra])) == (mean, worst)
    # ...while the two-way Hausdorff does see it
    two_way = metrics.compare_surfaces(np.concatenate([recon, extra]), scan)
    assert two_way["hausdorff"] > 3.5


def test_squared_chamfer_chamfer_and_hausdorff_match_brute_force():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) + 0.3
    pairwise = np.linalg.norm(a[:, None] - b[None], axis=2)
    a_to_b, b_to_a = pairwise.min(axis=1), pairwise.min(axis=0)
    out = metrics.compare_surfaces(a, b)
    assert out["chamfer_sq"] == pytest.approx(np.mean(a_to_b**2) + np.mean(b_to_a**2), rel=1e-9)
    assert out["chamfer"] == pytest.approx(0.5 * (a_to_b.mean() + b_to_a.mean()), rel=1e-9)
    assert out["hausdorff"] == pytest.approx(max(a_to_b.max(), b_to_a.max()), rel=1e-9)
    longest = (b.max(axis=0) - b.min(axis=0)).max()
    assert out["chamfer_l1"] == pytest.approx(out["chamfer"] / longest, rel=1e-9)
    assert math.isnan(out["normal_consistency"]) and math.isnan(out["fscore"])
    # 2D point sets go through the same path
    out2 = metrics.compare_surfaces(a[:, :2], b[:, :2])
    flat = np.linalg.norm(a[:, None, :2] - b[None, :, :2], axis=2)
    assert out2["chamfer_sq"] == pytest.approx(
        np.mean(flat.min(axis=1) ** 2) + np.mean(flat.min(axis=0) ** 2), rel=1e-9
    )


def test_fscore_counts_points_within_tau():
    grid = np.stack(np.meshgrid(np.linspace(0, 1, 40), np.linspace(0, 1, 40)), -1).reshape(-1, 2)
    plane = np.concatenate([grid, np.zeros((len(grid), 1))], axis=1)
    shifted = plane + np.array([0.0, 0.0, 0.02])
    assert metrics.compare_surfaces(shifted, plane, tau=0.03)["fscore"] == 1.0
    assert metrics.compare_surfaces(shifted, plane, tau=0.01)["fscore"] == 0.0
    # half of R far away: precision 1/2, recall 1 -> F = 2/3
    far = plane + np.array([0.0, 0.0, 5.0])
    out = metrics.compare_surfaces(np.concatenate([plane, far]), plane, tau=0.01)
    assert out["fscore"] == pytest.approx(2 / 3)


def test_normal_consistency_is_orientation_free_and_measures_the_angle():
    points, normals = metrics.sample_mesh(*sphere_mesh(1.0), 20_000, seed=1)
    same = metrics.compare_surfaces(points, points, normals, normals)
    flipped = metrics.compare_surfaces(points, points, normals, -normals)
    assert same["normal_consistency"] == pytest.approx(1.0)
    assert flipped["normal_consistency"] == pytest.approx(1.0)
    # normals tilted by 60 degrees everywhere: |cos| = 1/2
    rng = np.random.default_rng(2)
    plane = np.concatenate([rng.uniform(-1, 1, (5000, 2)), np.zeros((5000, 1))], axis=1)
    up = np.tile([0.0, 0.0, 1.0], (5000, 1))
    tilted = np.tile([math.sin(math.pi / 3), 0.0, math.cos(math.pi / 3)], (5000, 1))
    out = metrics.compare_surfaces(plane, plane, up, tilted)
    assert out["normal_consistency"] == pytest.approx(0.5)


def test_iou_of_network_sign_against_sphere_labels_matches_lens_volume():
    r, d = 0.5, 0.4
    axis = np.linspace(-1.0, 1.5, 161, dtype=np.float32)
    occ = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    labels = np.linalg.norm(occ, axis=1) < r

    def shifted_sphere(x):
        return (x - torch.tensor([d, 0.0, 0.0])).norm(dim=-1) - r

    def same_sphere(x):
        return x.norm(dim=-1) - r

    inside_same = evaluate_points(same_sphere, occ, chunk=100_000) < 0
    assert metrics.iou(inside_same, labels) == 1.0
    inside = evaluate_points(shifted_sphere, occ, chunk=100_000) < 0
    lens = math.pi * (4 * r + d) * (2 * r - d) ** 2 / 12
    ball = 4 / 3 * math.pi * r**3
    assert metrics.iou(inside, labels) == pytest.approx(lens / (2 * ball - lens), rel=0.01)
    assert math.isnan(metrics.iou(np.zeros(5, bool), np.zeros(5, bool)))


def test_mesh_sampling_is_seeded_area_weighted_and_on_the_surface():
    vertices, faces = sphere_mesh(2.0)
    a, na = metrics.sample_mesh(vertices, faces, 10_000, seed=0)
    b, _ = metrics.sample_mesh(vertices, faces, 10_000, seed=0)
    c, _ = metrics.sample_mesh(vertices, faces, 10_000, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.abs(np.linalg.norm(a, axis=1) - 2.0).max() < 2e-3
    np.testing.assert_allclose(np.linalg.norm(na, axis=1), 1.0)
    # two triangles, areas 1 and 3: samples split 1:3
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 2, 0], [10, 0, 0], [13, 0, 0], [10, 2, 0]], float)
    f = np.array([[0, 1, 2], [3, 4, 5]])
    p, _ = metrics.sample_mesh(v, f, 40_000, seed=4)
    assert np.mean(p[:, 0] >= 10) == pytest.approx(0.75, abs=0.01)


def test_polyline_sampling_is_length_weighted():
    vertices = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 3.0]])
    edges = np.array([[0, 1], [1, 2]])
    p, n = metrics.sample_polylines(vertices, edges, 40_000, seed=0)
    on_first = p[:, 1] == 0
    assert np.mean(on_first) == pytest.approx(0.25, abs=0.01)
    np.testing.assert_allclose(np.abs(n[on_first]), [[0.0, 1.0]] * int(on_first.sum()))
    assert np.all(p[~on_first, 0] == 1.0)
