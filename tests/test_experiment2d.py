"""The 2D experiment: metrics against analytic cases, the corner and component measures on
hand-made contours, and a tiny end-to-end run (train with snapshots -> table -> figures)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from steik import experiment2d as e2d
from steik.data import shapes2d
from steik.errors import SteikError
from steik.train import load_model


def _exact_field(shape: str, config: e2d.AnalysisConfig, center, scale) -> np.ndarray:
    """The exact SDF of `shape` on the analysis grid, in the normalised frame (`[R, R]`)."""
    points = shapes2d.grid(config.resolution, config.extent) * scale + np.asarray(center)
    sdf = shapes2d.signed_distance(shape, points) / scale
    return sdf.reshape(config.resolution, config.resolution)


def _circle_polyline(radius: float, n: int = 2000, center=(0.0, 0.0)) -> np.ndarray:
    angle = np.linspace(0.0, 2 * math.pi, n + 1)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1) + np.asarray(center)


def test_exact_circle_level_set_scores_zero():
    config = e2d.AnalysisConfig(resolution=256, n_curve=4000)
    center, scale = np.array([0.0, 0.0]), 0.5
    values = _exact_field("circle", config, center, scale)
    # |grad| of the exact SDF of a circle is 1 everywhere but the centre.
    out = e2d.analyse_field(values, np.ones_like(values), "circle", center, scale, config)
    spacing = 2 * config.extent * scale / (config.resolution - 1)
    assert out["chamfer"] < 0.05 * spacing  # marching squares: linear interpolation in cells
    assert out["hausdorff"] < 0.1 * spacing
    assert out["iou"] == 1.0
    assert out["eikonal"] == 0.0
    assert (out["n_components"], out["spurious"]) == (1, 0)
    assert math.isnan(out["corner"])


def test_shifted_circle_distances_are_the_shift():
    # A circle of radius r + 0.01 about the same centre: every distance is exactly 0.01.
    config = e2d.AnalysisConfig(n_curve=4000)
    line = _circle_polyline(0.51, 20000)
    out = e2d.curve_distances([line], "circle", config.n_curve, spacing=1e-3)
    assert out["chamfer"] == pytest.approx(0.01, abs=1e-5)
    assert out["hausdorff"] == pytest.approx(0.01, abs=1e-5)


def test_iou_of_a_smaller_disc_matches_the_area_ratio():
    config = e2d.AnalysisConfig(resolution=512)
    center, scale = np.zeros(2), 0.5
    axis = e2d.grid_axis(config) * scale
    xx, yy = np.meshgrid(axis, axis)
    values = (np.hypot(xx, yy) - 0.4) / scale  # disc of radius 0.4 inside the r = 0.5 circle
    out = e2d.analyse_field(values, None, "circle", center, scale, config)
    assert out["iou"] == pytest.approx(0.4**2 / 0.5**2, rel=0.01)
    assert out["chamfer"] == pytest.approx(0.1, abs=1e-3)
    assert math.isnan(out["eikonal"])


def test_corner_error_of_a_rounded_square_follows_the_rounding_formula():
    # Square [-0.5, 0.5]^2 with corners rounded by radius rho: each corner (90 degrees) is missed
    # by rho (1 / sin(45 deg) - 1) = rho (sqrt 2 - 1).
    rho = 0.1
    vertices = np.array([(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)])
    arcs = []
    for cx, cy, start in (
        (0.4, 0.4, 0.0),
        (-0.4, 0.4, 90.0),
        (-0.4, -0.4, 180.0),
        (0.4, -0.4, 270.0),
    ):
        angle = np.radians(np.linspace(start, start + 90.0, 200))
        arcs.append(np.stack([cx + rho * np.cos(angle), cy + rho * np.sin(angle)], 1))
    rounded = np.concatenate(arcs + arcs[:1])
    out = e2d.corner_errors([rounded], vertices)
    assert out["corner"] == pytest.approx(rho * (math.sqrt(2) - 1), rel=1e-3)
    assert out["corner_convex"] == pytest.approx(out["corner"])
    assert math.isnan(out["corner_concave"])
    sharp = np.concatenate([vertices, vertices[:1]])
    assert e2d.corner_errors([sharp], vertices)["corner"] == pytest.approx(0.0, abs=1e-12)


def test_corner_classes_of_the_l_and_the_snowflake():
    l_vertices = shapes2d.get_shape("l_shape").vertices
    convex = e2d.interior_angles(l_vertices) < math.pi
    assert convex.sum() == 5 and (~convex).sum() == 1
    concave_vertex = l_vertices[~convex][0]
    np.testing.assert_allclose(concave_vertex, [0.0, 0.0], atol=1e-12)
    angles = np.degrees(e2d.interior_angles(shapes2d.get_shape("snowflake").vertices))
    # Koch degree 2: 48 vertices, 60 degree tips (6 of the star + 12 new) and 240 degree notches;
    # the interior angles of a simple 48-gon sum to 46 x 180 degrees.
    assert set(np.round(angles).astype(int)) == {60, 240}
    assert (np.round(angles) == 60).sum() == 18
    assert angles.sum() == pytest.approx(46 * 180.0)


def test_only_the_concave_corner_of_the_l_is_missed_when_filled_in():
    # The L with its notch filled by the chord from (0.25, 0) to (0, 0.25): only the concave
    # corner (0, 0) is missed, by its distance to that chord.
    vertices = shapes2d.get_shape("l_shape").vertices
    filled = np.array(
        [
            (0.25, 0.0),
            (0.5, 0.0),
            (0.5, -0.5),
            (-0.5, -0.5),
            (-0.5, 0.5),
            (0.0, 0.5),
            (0.0, 0.25),
            (0.25, 0.0),
        ]
    )
    out = e2d.corner_errors([filled], vertices)
    chord_distance = 0.25 / math.sqrt(2)
    assert out["corner_concave"] == pytest.approx(chord_distance, rel=1e-9)
    assert out["corner_convex"] == pytest.approx(0.0, abs=1e-12)
    assert out["corner"] == pytest.approx(chord_distance / 6, rel=1e-9)


def test_spurious_components_are_counted_from_a_field():
    config = e2d.AnalysisConfig(resolution=256)
    axis = e2d.grid_axis(config)
    xx, yy = np.meshgrid(axis, axis)
    main = np.hypot(xx, yy) - 0.8
    blob1 = np.hypot(xx - 1.05, yy - 1.05) - 0.08
    blob2 = np.hypot(xx + 1.05, yy - 1.05) - 0.08
    hole = 0.1 - np.hypot(xx, yy)  # a hole in the middle of the disc: its own contour
    values = np.minimum(np.minimum(np.maximum(main, hole), blob1), blob2)
    lines = e2d.zero_contours(values, axis)
    assert e2d.count_components(lines) == (4, 3)
    assert e2d.count_components(e2d.zero_contours(main, axis)) == (1, 0)
    assert e2d.count_components([]) == (0, 0)
    assert e2d.zero_contours(np.ones_like(main), axis) == []


def test_segment_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    line = rng.normal(size=(30, 2))
    points = rng.normal(size=(50, 2))
    dense = np.concatenate(
        [a + np.linspace(0, 1, 2001)[:, None] * (b - a) for a, b in itertools.pairwise(line)]
    )
    brute = np.linalg.norm(points[:, None] - dense[None], axis=2).min(axis=1)
    np.testing.assert_allclose(e2d.segment_distance(points, [line]), brute, atol=1e-3)


def test_snapshot_iterations_and_bad_fractions():
    assert e2d.snapshot_iterations(100, (0.1, 0.2, 0.2, 1.0)) == [10, 20, 100]
    with pytest.raises(SteikError, match="fractions"):
        e2d.snapshot_iterations(100, (1.5,))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, dict[str, Path], list[Path]]:
    """Two methods, two shapes, one seed, a few iterations: the whole pipeline on a CPU."""
    from steik.data.sample import SampleConfig, build_sample, write_sample

    root = tmp_path_factory.mktemp("e2d")
    samples = []
    for shape in ("circle", "snowflake"):
        sample = build_sample(
            "demo2d", shape, config=SampleConfig(n_points=300, n_gt=2000, n_occ=64)
        )
        samples.append(write_sample(root / "samples" / f"{shape}.npz", sample))
    scale = e2d.Scale(
        iterations=20,
        n_points=64,
        layers=2,
        hidden_linear=16,
        hidden_quadratic=8,
        extra={"log_every": 5, "checkpoint_every": 0},
    )
    torch.manual_seed(0)
    paths = e2d.run_experiment(
        samples,
        root / "out",
        methods=("digs", "steik"),
        seeds=(0,),
        scale=scale,
        analysis=e2d.AnalysisConfig(resolution=64, n_curve=500),
        fractions=(0.25, 0.5, 1.0),
    )
    return root, paths, samples


def test_tiny_run_writes_the_table_with_every_column(tiny_run):
    _, paths, _ = tiny_run
    rows = pd.read_parquet(paths["rows"])
    assert list(rows.columns) == list(e2d.RUN_COLUMNS)
    assert len(rows) == 4
    assert set(rows["method"]) == {"digs", "steik"}
    assert rows["iterations"].eq(20).all()
    assert np.isfinite(rows["eikonal"]).all() and rows["iou"].between(0, 1).all()
    summary = pd.read_parquet(paths["summary"])
    for metric in e2d.METRICS:
        assert f"{metric}_mean" in summary.columns and f"{metric}_std" in summary.columns
    expected = rows.groupby(["method", "shape"])["eikonal"].mean()
    for _, rec in summary.iterrows():
        assert rec["eikonal_mean"] == pytest.approx(expected[(rec["method"], rec["shape"])])
    markdown = paths["markdown"].read_text()
    assert "### snowflake" in markdown and "steik" in markdown


def test_tiny_run_writes_figures_of_the_expected_size(tiny_run):
    _, paths, _ = tiny_run
    for key, rows, columns in (("levelsets", 2, 2), ("strip", 2, 3)):
        image = np.asarray(Image.open(paths[key]).convert("L"), dtype=np.float64)
        width = columns * 2.2 + 0.6
        assert image.shape[1] == round(width * 100)
        assert image.shape[0] > rows * 200
        assert image.std() > 10  # lines on a white background, not a blank canvas
        assert (image < 100).mean() > 0.001


def test_snapshots_record_the_schedule(tiny_run):
    root, _, _ = tiny_run
    networks, meta = e2d.load_snapshots(root / "out" / "steik" / "snowflake" / "snapshots.pt")
    assert meta["iterations"] == [5, 10, 20]
    # SRB schedule: 100 up to 20% of training, linear to 0 at 40% (75 at 25%); the last
    # snapshot carries the weight of the final iteration (0).
    assert meta["w_div"] == pytest.approx([75.0, 0.0, 0.0])
    assert len(networks) == 3
    final, _ = load_model(root / "out" / "steik" / "snowflake" / "model.pt")
    x = torch.rand(1, 50, 2)
    torch.testing.assert_close(networks[-1](x), final(x))
    assert not torch.allclose(networks[0](x), final(x))


def test_table_cli_refuses_a_model_without_its_sample(tiny_run, tmp_path):
    root, _, samples = tiny_run
    with pytest.raises(SteikError, match="no sample file for shape 'snowflake'"):
        e2d.table(
            [root / "out" / "steik" / "snowflake" / "model.pt"],
            samples[:1],
            tmp_path / "2d.parquet",
        )
    assert not (tmp_path / "2d.parquet").exists()
    with pytest.raises(SteikError, match="not trained on the points"):
        e2d.analyse(root / "out" / "steik" / "snowflake" / "model.pt", samples[0])


def test_cli_table_and_figure_from_trained_models(tiny_run, tmp_path, capsys):
    from steik.cli import main

    root, _, samples = tiny_run
    models = sorted(str(p) for p in (root / "out").glob("*/*/model.pt"))
    args = ["--samples", *map(str, samples), "--device", "cpu"]
    out = tmp_path / "tables" / "2d.parquet"
    assert main(["experiment2d", "table", "--models", *models, *args, "--out", str(out),
                 "--resolution", "64"]) == 0  # fmt: skip
    rows = pd.read_parquet(out)
    assert len(rows) == 4 and list(rows.columns) == list(e2d.RUN_COLUMNS)
    snapshots = pd.read_parquet(tmp_path / "tables" / "2d_snapshots.parquet")
    assert list(snapshots.columns) == list(e2d.SNAPSHOT_COLUMNS)
    assert sorted(snapshots["fraction"].unique()) == [0.25, 0.5, 1.0]
    assert "during training" in (tmp_path / "tables" / "2d.md").read_text()
    figure = tmp_path / "levels.png"
    assert main(["experiment2d", "figure", "--models", *models, *args, "--out", str(figure),
                 "--resolution", "48"]) == 0  # fmt: skip
    assert figure.stat().st_size > 1000
    # A wrong output suffix is one clear error and writes nothing.
    assert main(["experiment2d", "figure", "--models", *models, *args, "--out",
                 str(tmp_path / "levels.jpg")]) == 2  # fmt: skip
    assert "must end in .png" in capsys.readouterr().err
    assert not (tmp_path / "levels.jpg").exists()


def test_cli_default_methods_are_the_experiment_methods():
    import argparse

    from steik.cli import experiment2d as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["run", "--samples", "a.npz", "--out", "x"])
    assert tuple(args.methods) == e2d.EXPERIMENT_METHODS
    assert args.seeds == [0, 1, 2] and args.jobs == 1
