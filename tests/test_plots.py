"""Figures: the depth-buffer renderer against analytic silhouettes, loss-curve aggregation
against numpy, and each figure written as a non-blank PNG."""

from __future__ import annotations

import math

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import trimesh

from steik.data.sample import Sample, write_sample
from steik.methods import run_label
from steik.plots import (
    estimated_normals,
    loss_curves,
    loss_figure,
    reference_cloud,
    render_figure,
    render_points,
    view_rotation,
)


def sphere_samples(count: int, radius: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    normals = rng.normal(size=(count, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return radius * normals, normals


def test_sphere_silhouette_matches_disc_area():
    points, normals = sphere_samples(200_000, radius=0.5)
    size, half_width = 200, 1.0
    image = render_points(points, normals, np.zeros(3), half_width, size)
    covered = int((image < 1.0).sum())
    disc = math.pi * (0.5 / half_width * size / 2) ** 2
    assert abs(covered - disc) / disc < 0.06
    # The silhouette is centred: its centroid lies within a pixel or two of the image centre.
    ys, xs = np.nonzero(image < 1.0)
    assert abs(xs.mean() - size / 2) < 2.5 and abs(ys.mean() - size / 2) < 2.5


def test_nearest_surface_wins():
    """Two parallel squares facing the camera: every pixel shows the nearer one's shade."""
    rotation = np.eye(3)  # camera axes = world axes, viewer on +z
    grid = np.stack(np.meshgrid(np.linspace(-0.5, 0.5, 300), np.linspace(-0.5, 0.5, 300)), -1)
    flat = grid.reshape(-1, 2)
    near = np.column_stack([flat, np.full(len(flat), 0.2)])
    far = np.column_stack([flat, np.full(len(flat), -0.2)])
    facing = np.tile([0.0, 0.0, 1.0], (len(flat), 1))
    tilted = np.tile([1.0, 0.0, 0.0], (len(flat), 1))  # perpendicular to z: a different shade
    for first, second in ((near, far), (far, near)):
        normals = [facing, tilted] if first is near else [tilted, facing]
        image = render_points(np.vstack([first, second]), np.vstack(normals), np.zeros(3), 1.0,
                              100, rotation=rotation, splat=2)
        centre = image[40:60, 40:60]
        expected = render_points(near, facing, np.zeros(3), 1.0, 100, rotation=rotation,
                                 splat=2)[40:60, 40:60]
        np.testing.assert_allclose(centre, expected)


def test_view_rotation_is_orthonormal_and_z_up():
    rotation = view_rotation(0.0, 0.0)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(rotation @ [0, 0, 1], [0, 1, 0], atol=1e-12)  # world up = image up


def write_log(path, iterations, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"iteration": iterations})
    for term in ("loss", "sdf", "inter", "normal", "eikonal", "div", "w_sdf", "w_inter",
                 "w_normal", "w_eikonal", "w_div", "lr", "seconds"):
        frame[term] = values
    frame.to_parquet(path, index=False)


def test_loss_curves_median_over_shapes(tmp_path):
    rng = np.random.default_rng(1)
    logs, per_shape = [], {}
    for shape in ("a", "b", "c"):
        values = rng.uniform(0.1, 2.0, 11)
        path = tmp_path / "steik" / shape / "train_log.parquet"
        write_log(path, np.arange(0, 110, 10), values)
        logs.append(path)
        per_shape[shape] = values
    # A fourth shape logged every 20 iterations: curves align on the shared iterations.
    extra = tmp_path / "steik" / "d" / "train_log.parquet"
    write_log(extra, np.arange(0, 110, 20), np.full(6, 5.0))
    curves = loss_curves([*logs, extra], "eikonal")
    curve = curves["steik"]
    assert list(curve["iteration"]) == list(range(0, 110, 20))
    stacked = np.stack([per_shape[s][::2] for s in "abc"] + [np.full(6, 5.0)])
    np.testing.assert_allclose(curve["median"], np.median(stacked, axis=0))
    np.testing.assert_allclose(curve["max"], stacked.max(axis=0))
    out = loss_figure([*logs, extra], tmp_path / "losses.png")
    image = mpimg.imread(out)
    assert image.shape[1] > 600 and image[..., :3].std() > 0.02


def test_render_figure_with_empty_reconstruction(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=0.5)
    gt, gt_normals = sphere_samples(20_000, 0.5)
    sample = Sample(
        points=(gt[:2000] / 0.5).astype(np.float32), center=np.zeros(3), scale=0.5,
        dataset="demo3d", shape="ball", ground_truth="mesh", source="generated:ball",
        source_sha256="0" * 64, gt_points=gt.astype(np.float32),
        gt_normals=gt_normals.astype(np.float32),
    )
    sample_path = write_sample(tmp_path / "samples" / "ball.npz", sample)
    good = tmp_path / "steik" / "ball" / "mesh.ply"
    good.parent.mkdir(parents=True)
    mesh.export(good)
    empty = tmp_path / "digs" / "ball" / "mesh.ply"
    empty.parent.mkdir(parents=True)
    trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=int)).export(empty)
    out = render_figure([good, empty], [sample_path], tmp_path / "renders.png", size=80,
                        n_points=20_000)
    image = mpimg.imread(out)
    assert image.shape[0] > 100 and image[..., :3].std() > 0.02
    assert run_label("digs-seed2") == "DiGS (seed 2)" and run_label("steik") == "StEik"


@pytest.mark.slow
def test_levelset_figure_from_trained_models(tmp_path):
    from steik.data.sample import SampleConfig, sample_curve
    from steik.methods import preset
    from steik.plots import levelset_figure
    from steik.train import train

    arrays = sample_curve("circle", SampleConfig(n_points=300, n_gt=500, n_occ=0))
    sample = Sample(dataset="demo2d", shape="circle", ground_truth="mesh",
                    source="generated:circle", source_sha256="0" * 64, **arrays)
    sample_path = write_sample(tmp_path / "samples" / "circle.npz", sample)
    models = []
    for method in ("siren_wo_n", "steik"):
        config = preset(method, "2d", hidden=16, layers=2, iterations=3, n_manifold=100,
                        n_offsurface=100, checkpoint_every=0)
        train([sample_path], config, tmp_path / method, quiet=True)
        models.append(tmp_path / method / "circle" / "model.pt")
    out = levelset_figure(models, [sample_path], tmp_path / "levelsets.png", resolution=60)
    image = mpimg.imread(out)
    assert image.shape[0] > 300 and image.shape[1] > 150  # 2 rows x 1 column of 2.4" panels
    assert image[..., :3].std() > 0.02


def test_first_render_column_shows_the_scan_shaded_where_there_is_no_ground_truth_mesh():
    """A scan-only sample (SRB from its scans, a point-cloud folder): the first column is the
    scan in original units, shaded by its normals (or estimated ones), not a flat silhouette."""
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(4000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    estimated = estimated_normals(directions * 0.5)
    assert np.abs(np.sum(estimated * directions, axis=1)).min() > 0.98  # up to orientation

    scan = dict(points=directions.astype(np.float32), center=np.array([1.0, 2.0, 3.0]),
                scale=0.5, dataset="srb", shape="ball", ground_truth="none",
                source="scans/ball.ply", source_sha256="0" * 64)  # fmt: skip
    with_normals = Sample(**scan, normals=directions.astype(np.float32))
    points, normals, title = reference_cloud(with_normals)
    assert title == "scan" and np.allclose(points, directions * 0.5 + [1.0, 2.0, 3.0], atol=1e-6)
    assert normals is with_normals.normals
    points, normals, title = reference_cloud(Sample(**scan))
    assert title == "scan" and np.abs(np.sum(normals * directions, axis=1)).min() > 0.98
    image = render_points(points, normals, np.array([1.0, 2.0, 3.0]), 0.7, 80)
    flat = render_points(points, None, np.array([1.0, 2.0, 3.0]), 0.7, 80)
    assert np.unique(flat[flat < 1]).size == 1 and image[image < 1].std() > 0.05
    mesh_sample = Sample(**{**scan, "ground_truth": "mesh"}, gt_points=directions,
                         gt_normals=directions)  # fmt: skip
    assert reference_cloud(mesh_sample)[2] == "ground truth"
