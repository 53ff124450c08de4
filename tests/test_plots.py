"""Figures: the depth-buffer renderer against analytic silhouettes, the render figure's columns
against the analytic projections of known meshes, loss curves and their figure against numpy.
(The 2D level-set figures: test_plots_levelsets.py.)"""

from __future__ import annotations

import math

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import trimesh
from scipy import ndimage

from steik.data.sample import Sample, load_sample, write_sample
from steik.methods import run_label
from steik.plots.losses import build_loss_figure, loss_curves, loss_figure
from steik.plots.renders import (
    build_render_figure,
    estimated_normals,
    reference_cloud,
    render_figure,
    render_frame,
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


def test_loss_figure_draws_each_terms_curves(tmp_path):
    """One panel per term that is ever positive (the divergence weight last, linear), one line
    per run in the logs' order at the median over its shapes, a band from their minimum to
    their maximum; the command saves that figure."""
    iterations = np.arange(0, 50, 10)
    rng = np.random.default_rng(2)
    logs, values = [], {}
    for run in ("steik", "digs-seed1"):
        for shape in ("a", "b", "c"):
            frame = pd.DataFrame({"iteration": iterations})
            for term in ("loss", "eikonal", "normal", "w_eikonal", "w_div", "lr"):
                frame[term] = rng.uniform(0.1, 2.0, len(iterations))
            frame["normal"] = 0.0  # unused: no panel
            values[run, shape] = frame
            path = tmp_path / run / shape / "train_log.parquet"
            path.parent.mkdir(parents=True)
            frame.to_parquet(path, index=False)
            logs.append(path)
    fig = build_loss_figure(logs)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "eikonal", "divergence weight"]
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log", "linear"]
    for ax, term in zip(fig.axes, ("loss", "eikonal", "w_div"), strict=True):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["StEik", "DiGS (seed 1)"]
        for line, band, run in zip(lines, ax.collections, ("steik", "digs-seed1"), strict=True):
            stacked = np.stack([values[run, s][term].to_numpy() for s in "abc"])
            np.testing.assert_array_equal(line.get_xdata(), iterations)
            np.testing.assert_allclose(line.get_ydata(), np.median(stacked, axis=0))
            # The band's outline runs along the minimum and the maximum at every iteration.
            outline = band.get_paths()[0].vertices
            for x, lo, hi in zip(iterations, stacked.min(0), stacked.max(0), strict=True):
                at = outline[np.isclose(outline[:, 0], x), 1]
                assert at.min() == pytest.approx(lo) and at.max() == pytest.approx(hi)
    image = mpimg.imread(loss_figure(logs, tmp_path / "losses.png"))
    assert image.shape[:2] == tuple(np.round(fig.get_size_inches()[::-1] * 100).astype(int))


def ball_sample(folder, name: str, center, radius: float):
    """A 3D sample of a sphere (ground truth: dense samples with normals) in original units."""
    gt, gt_normals = sphere_samples(20_000, radius)
    gt = gt + center
    sample = Sample(
        points=((gt[:2000] - center) / radius).astype(np.float32), center=np.asarray(center),
        scale=radius, dataset="demo3d", shape=name, ground_truth="mesh",
        source=f"generated:{name}", source_sha256="0" * 64, gt_points=gt.astype(np.float32),
        gt_normals=gt_normals.astype(np.float32),
    )  # fmt: skip
    return write_sample(folder / f"{name}.npz", sample)


def projected_mask(mesh: trimesh.Trimesh, center, half_width: float, size: int) -> np.ndarray:
    """Pixels `[size, size]` whose centres fall inside the orthographic projection of a convex
    `mesh` under `view_rotation()`: the convex hull of its projected vertices (image rows run
    downwards)."""
    from matplotlib.path import Path as Outline
    from scipy.spatial import ConvexHull

    projected = ((mesh.vertices - center) @ view_rotation().T)[:, :2]
    hull = projected[ConvexHull(projected).vertices]
    centres = (np.arange(size) + 0.5) / size * 2 - 1  # pixel centres in [-1, 1]
    x, y = np.meshgrid(centres * half_width, -centres * half_width)
    inside = Outline(hull).contains_points(np.stack([x.ravel(), y.ravel()], axis=1))
    return inside.reshape(size, size)


def assert_silhouette(image: np.ndarray, want: np.ndarray, what: str) -> None:
    """The foreground of a render (`image < 1`) is the analytic silhouette `want` up to a
    sample's footprint: nothing farther than two pixels outside it (a sample covers its pixel
    and, splatted, the next one right and down), nothing missing more than a pixel inside it,
    and an IoU over 0.75 (the footprint's rim, about a pixel wide, weighs on a small shape)."""
    foreground = image < 1.0
    near = ndimage.binary_dilation(want, np.ones((3, 3)), iterations=2)
    assert not (foreground & ~near).any(), what
    assert not (ndimage.binary_erosion(want) & ~foreground).any(), what
    assert iou(foreground, want) > 0.75, what


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks."""
    return float((a & b).sum() / (a | b).sum())


def test_render_columns_show_each_runs_mesh_where_it_projects(tmp_path):
    """Two shapes (rows) and two runs (columns after the ground truth) with visibly different
    meshes: a ball, an off-centre box, a small off-centre ball. Each panel's foreground is the
    analytic projection of what that panel must show, in that shape's frame, and background
    elsewhere."""
    size = 96
    centers = {"ball": np.array([0.3, -0.2, 0.1]), "pebble": np.array([-1.0, 0.5, 2.0])}
    samples = [ball_sample(tmp_path / "samples", name, c, 0.5) for name, c in centers.items()]
    box = trimesh.creation.box(extents=(0.8, 0.25, 0.5)).apply_translation([-0.2, 0.1, -0.2])
    small = trimesh.creation.icosphere(subdivisions=3, radius=0.25)
    shown = {  # (run, shape) -> mesh in original units
        ("steik", "ball"): trimesh.creation.icosphere(subdivisions=4, radius=0.5),
        ("digs-seed1", "ball"): box,
        ("steik", "pebble"): small.copy().apply_translation([0.2, 0.0, 0.15]),
        ("digs-seed1", "pebble"): box,
    }
    meshes = []
    for (run, shape), mesh in shown.items():
        path = tmp_path / run / shape / "mesh.ply"
        path.parent.mkdir(parents=True)
        mesh.copy().apply_translation(centers[shape]).export(path)
        meshes.append(path)
    fig = build_render_figure(meshes, samples, size=size, n_points=60_000)
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["ground truth", "StEik", "DiGS (seed 1)"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["ball", "pebble"]
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    for i, (shape, center) in enumerate(centers.items()):
        frame_center, half_width = render_frame(load_sample(samples[i]).gt_points)
        offset = center - frame_center
        expected = [sphere] + [shown[run, shape] for run in ("steik", "digs-seed1")]
        wants = [projected_mask(m.copy().apply_translation(offset), 0.0, half_width, size)
                 for m in expected]  # fmt: skip
        assert max(iou(wants[0], wants[2]), iou(wants[1], wants[2])) < 0.8  # distinguishable
        for j, (ax, want) in enumerate(zip(axes[i], wants, strict=True)):
            image = ax.get_images()[0].get_array()
            assert image.shape == (size, size)
            assert_silhouette(image, want, f"{shape}, column {j}")


def test_render_figure_with_empty_reconstruction(tmp_path):
    sample_path = ball_sample(tmp_path / "samples", "ball", np.zeros(3), 0.5)
    good = tmp_path / "steik" / "ball" / "mesh.ply"
    good.parent.mkdir(parents=True)
    trimesh.creation.icosphere(subdivisions=3, radius=0.5).export(good)
    empty = tmp_path / "digs" / "ball" / "mesh.ply"
    empty.parent.mkdir(parents=True)
    trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=int)).export(empty)
    fig = build_render_figure([good, empty], [sample_path], size=80, n_points=20_000)
    blank = fig.axes[2]
    assert (blank.get_images()[0].get_array() == 1.0).all()
    assert [t.get_text() for t in blank.texts] == ["no surface"]
    out = render_figure([good, empty], [sample_path], tmp_path / "renders.png", size=80,
                        n_points=20_000)  # fmt: skip
    # a panel per shape and column at its own size (80 px) plus 35 px for titles and labels
    assert mpimg.imread(out).shape[:2] == (80 + 35, 3 * (80 + 35))
    assert run_label("digs-seed2") == "DiGS (seed 2)" and run_label("steik") == "StEik"


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
