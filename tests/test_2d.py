"""The 2D experiment as pipeline stages: curve metrics on hand-made contours and analytic fields,
and a tiny chain train (with snapshots) -> extract -> evaluate -> tables -> figures."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_plots_levelsets import assert_zero_set_of

from steik import evaluate as ev
from steik import mesh, metrics
from steik.cli import main
from steik.data import shapes2d
from steik.data.sample import Sample, SampleConfig, build_sample, write_sample
from steik.errors import SteikError
from steik.hooks import snapshot_iterations
from steik.methods import preset
from steik.model import load_model, load_snapshots
from steik.plots.levelsets import build_levelset_figure, build_snapshot_figure
from steik.tables import ROW_COLUMNS, SNAPSHOT_COLUMNS
from steik.train import train

EXTENT = 1.2


def _sample(shape: str, scale: float = 1.0, center=(0.0, 0.0)) -> Sample:
    """A demo2d-like sample of `shape` in a frame with the given normalisation."""
    points, _ = shapes2d.surface_points(shape, 400)
    return Sample(points=((points - np.asarray(center)) / scale).astype(np.float32),
                  center=np.asarray(center, float), scale=scale, dataset="demo2d", shape=shape,
                  ground_truth="mesh", source=f"generated:{shape}", source_sha256="")  # fmt: skip


def _score(field, sample: Sample, resolution: int = 256) -> dict[str, float]:
    """Every 2D metric of an analytic field `field(x [K, N, 2]) -> [K, N]` (normalised frame),
    extracted and scored as the pipeline does."""
    config = mesh.ExtractionConfig(resolution=resolution)
    extraction = mesh.extract_surface(
        field, sample.points, sample.center, sample.scale, config, domain=EXTENT
    )
    return ev.curve_row_metrics(
        field, sample, sample.shape, extraction.vertices, extraction.cells, extraction.grid,
        ev.EvaluationConfig(curve_samples=4000), "cpu",
    )  # fmt: skip


def _circle(sample: Sample, radius: float):
    """The exact SDF of a circle of `radius` (original units) about the origin, in the
    sample's normalised frame."""
    c = torch.tensor(-sample.center / sample.scale, dtype=torch.float32)
    return lambda x: (x - c).norm(dim=-1) - radius / sample.scale


def test_exact_circle_level_set_scores_zero():
    sample = _sample("circle", scale=0.5)
    out = _score(_circle(sample, 0.5), sample)
    spacing = 2 * EXTENT * sample.scale / 255
    assert out["chamfer"] < 0.05 * spacing  # marching squares: linear interpolation in cells
    assert out["hausdorff"] < 0.1 * spacing
    assert out["iou"] == 1.0
    assert out["eikonal"] == pytest.approx(0.0, abs=1e-5)
    assert (out["n_components"], out["spurious"]) == (1, 0)
    assert math.isnan(out["corner"])


def test_iou_of_a_smaller_disc_matches_the_area_ratio():
    sample = _sample("circle", scale=0.5)
    out = _score(_circle(sample, 0.4), sample, resolution=512)  # inside the r = 0.5 circle
    assert out["iou"] == pytest.approx(0.4**2 / 0.5**2, rel=0.01)
    assert out["chamfer"] == pytest.approx(0.1, abs=1e-3)


def test_shifted_circle_distances_are_the_shift():
    # A circle of radius r + 0.01 about the same centre: every distance is exactly 0.01.
    angle = np.linspace(0.0, 2 * math.pi, 20001)
    line = 0.51 * np.stack([np.cos(angle), np.sin(angle)], 1)
    curve, _ = shapes2d.curve_samples("circle", 4000)
    out = metrics.curve_distances(
        [line], lambda xy: shapes2d.signed_distance("circle", xy), curve, 1e-3
    )
    assert out["chamfer"] == pytest.approx(0.01, abs=1e-5)
    assert out["hausdorff"] == pytest.approx(0.01, abs=1e-5)


def test_corner_error_of_a_rounded_square_follows_the_rounding_formula():
    # Square [-0.5, 0.5]^2 with corners rounded by radius rho: each corner (90 degrees) is missed
    # by rho (1 / sin(45 deg) - 1) = rho (sqrt 2 - 1).
    rho = 0.1
    vertices = np.array([(-0.5, -0.5), (0.5, -0.5), (0.5, 0.5), (-0.5, 0.5)])
    arcs = []
    for cx, cy, start in ((0.4, 0.4, 0.0), (-0.4, 0.4, 90.0), (-0.4, -0.4, 180.0),
                          (0.4, -0.4, 270.0)):  # fmt: skip
        angle = np.radians(np.linspace(start, start + 90.0, 200))
        arcs.append(np.stack([cx + rho * np.cos(angle), cy + rho * np.sin(angle)], 1))
    rounded = np.concatenate(arcs + arcs[:1])
    out = metrics.corner_errors([rounded], vertices)
    assert out["corner"] == pytest.approx(rho * (math.sqrt(2) - 1), rel=1e-3)
    assert out["corner_convex"] == pytest.approx(out["corner"])
    assert math.isnan(out["corner_concave"])
    sharp = np.concatenate([vertices, vertices[:1]])
    assert metrics.corner_errors([sharp], vertices)["corner"] == pytest.approx(0.0, abs=1e-12)


def test_corner_classes_of_the_l_and_the_snowflake():
    l_vertices = shapes2d.get_shape("l_shape").vertices
    convex = metrics.interior_angles(l_vertices) < math.pi
    assert convex.sum() == 5 and (~convex).sum() == 1
    np.testing.assert_allclose(l_vertices[~convex][0], [0.0, 0.0], atol=1e-12)
    angles = np.degrees(metrics.interior_angles(shapes2d.get_shape("snowflake").vertices))
    # Koch degree 2: 48 vertices, 60 degree tips (6 of the star + 12 new) and 240 degree notches;
    # the interior angles of a simple 48-gon sum to 46 x 180 degrees.
    assert set(np.round(angles).astype(int)) == {60, 240}
    assert (np.round(angles) == 60).sum() == 18
    assert angles.sum() == pytest.approx(46 * 180.0)


def test_only_the_concave_corner_of_the_l_is_missed_when_filled_in():
    # The L with its notch filled by the chord from (0.25, 0) to (0, 0.25): only the concave
    # corner (0, 0) is missed, by its distance to that chord.
    vertices = shapes2d.get_shape("l_shape").vertices
    filled = np.array([(0.25, 0.0), (0.5, 0.0), (0.5, -0.5), (-0.5, -0.5), (-0.5, 0.5),
                       (0.0, 0.5), (0.0, 0.25), (0.25, 0.0)])  # fmt: skip
    out = metrics.corner_errors([filled], vertices)
    chord_distance = 0.25 / math.sqrt(2)
    assert out["corner_concave"] == pytest.approx(chord_distance, rel=1e-9)
    assert out["corner_convex"] == pytest.approx(0.0, abs=1e-12)
    assert out["corner"] == pytest.approx(chord_distance / 6, rel=1e-9)


def test_spurious_components_are_counted_from_a_field():
    sample = _sample("circle")

    def field(x):
        r = x.norm(dim=-1)
        main_disc = torch.maximum(r - 0.8, 0.1 - r)  # a ring: outer and inner contour
        blob1 = (x - torch.tensor([1.05, 1.05])).norm(dim=-1) - 0.08
        blob2 = (x - torch.tensor([-1.05, 1.05])).norm(dim=-1) - 0.08
        return torch.minimum(torch.minimum(main_disc, blob1), blob2)

    out = _score(field, sample)
    assert (out["n_components"], out["spurious"]) == (4, 3)
    assert metrics.count_components([]) == (0, 0)


def test_distance_to_lines_matches_brute_force():
    rng = np.random.default_rng(0)
    line = rng.normal(size=(30, 2))
    points = rng.normal(size=(50, 2))
    dense = np.concatenate(
        [a + np.linspace(0, 1, 2001)[:, None] * (b - a) for a, b in itertools.pairwise(line)]
    )
    brute = np.linalg.norm(points[:, None] - dense[None], axis=2).min(axis=1)
    np.testing.assert_allclose(metrics.distance_to_lines(points, [line]), brute, atol=1e-3)


def test_snapshot_iterations_and_bad_fractions():
    assert snapshot_iterations(100, (0.1, 0.2, 0.2, 1.0)) == [10, 20, 100]
    with pytest.raises(SteikError, match="fractions"):
        snapshot_iterations(100, (1.5,))


# ----------------------------------------------------------------- the stages on a tiny run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, list[Path]]:
    """Two methods, two shapes, one seed, a few iterations: train with snapshots -> extract ->
    evaluate -> tables, through the command line as the workflow calls it."""
    root = tmp_path_factory.mktemp("two_d")
    samples = []
    for shape in ("circle", "snowflake"):
        sample = build_sample("demo2d", shape, config=SampleConfig(n_points=300, n_gt=2000,
                                                                   n_occ=64))  # fmt: skip
        samples.append(write_sample(root / "samples" / f"{shape}.npz", sample))
    tables = []
    for method in ("digs", "steik"):
        out = root / method
        hidden = 16 if method == "digs" else 8
        args = ["--points", *map(str, samples), "--method", method, "--experiment", "2d",
                "--out", str(out), "--quiet", "--snapshots", "0.25,0.5,1.0",
                "--overrides", f'{{"iterations": 20, "n_manifold": 64, "n_offsurface": 64, '
                f'"layers": 2, "hidden": {hidden}, "log_every": 5}}']  # fmt: skip
        assert main(["train", *args]) == 0
        meshes = [str(out / s / "mesh.ply") for s in ("circle", "snowflake")]
        models = [str(out / s / "model.pt") for s in ("circle", "snowflake")]
        assert main(["extract", "--model", *models, "--sample", *map(str, samples), "--out",
                     *meshes, "--resolution", "64", "--device", "cpu"]) == 0  # fmt: skip
        table = root / method / "metrics.parquet"
        assert main(["evaluate", "--mesh", *meshes, "--model", *models, "--sample",
                     *map(str, samples), "--out", *(m.replace(".ply", ".parquet") for m in meshes),
                     "--table", str(table), "--snapshot-table", str(root / method / "snap.parquet"),
                     "--options", '{"curve_samples": 500}', "--device", "cpu"]) == 0  # fmt: skip
        tables.append(table)
    assert main(["tables", "--dataset", "demo2d", "--out-dir", str(root / "tables"),
                 "--metrics", *map(str, tables), "--snapshots",
                 *(str(root / m / "snap.parquet") for m in ("digs", "steik")),
                 "--snapshot-shape", "snowflake"]) == 0  # fmt: skip
    return root, samples


def test_tiny_run_writes_the_table_with_every_column(tiny_run):
    root, _ = tiny_run
    rows = pd.read_parquet(root / "tables" / "demo2d.parquet")
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert len(rows) == 4 and set(rows["method"]) == {"digs", "steik"}
    assert rows["iterations"].eq(20).all() and rows["n_shapes_batch"].eq(2).all()
    assert np.isfinite(rows["eikonal"]).all() and rows["iou"].between(0, 1).all()
    summary = pd.read_parquet(root / "tables" / "demo2d_summary.parquet")
    expected = rows.groupby(["method", "shape"])["eikonal"].mean()
    for _, rec in summary.iterrows():
        assert rec["eikonal_mean"] == pytest.approx(expected[(rec["method"], rec["shape"])])
    markdown = (root / "tables" / "demo2d.md").read_text()
    assert "## demo2d: snowflake" in markdown and "StEik" in markdown
    snapshots = pd.read_parquet(root / "tables" / "demo2d_snapshots.parquet")
    assert list(snapshots.columns) == list(SNAPSHOT_COLUMNS)
    assert sorted(snapshots["fraction"].unique()) == [0.25, 0.5, 1.0]
    assert "snowflake during training" in markdown


def test_snapshots_record_the_schedule(tiny_run):
    root, _ = tiny_run
    networks, meta = load_snapshots(root / "steik" / "snowflake" / "snapshots.pt")
    assert meta.iterations == (5, 10, 20)
    # SRB schedule: 100 up to 20% of training, linear to 0 at 40% (75 at 25%); the last
    # snapshot carries the weight of the final iteration (0).
    assert meta.w_div == pytest.approx([75.0, 0.0, 0.0])
    final, _ = load_model(root / "steik" / "snowflake" / "model.pt")
    x = torch.rand(1, 50, 2)
    torch.testing.assert_close(networks[-1](x), final(x))
    assert not torch.allclose(networks[0](x), final(x))
    # The last snapshot is the final model: its row equals the model's row where both score.
    rows = pd.read_parquet(root / "tables" / "demo2d.parquet").set_index(["method", "shape"])
    snap = pd.read_parquet(root / "tables" / "demo2d_snapshots.parquet")
    last = snap[(snap.method == "steik") & (snap["shape"] == "snowflake") & (snap.fraction == 1.0)]
    for metric in ("chamfer", "iou", "n_components", "corner"):
        want = rows.loc[("steik", "snowflake"), metric]
        got = last[metric].iloc[0]
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-6)


def test_figures_show_each_runs_level_sets(tiny_run, tmp_path):
    """The commands write the figures at their layout's size; the figures they draw put each
    run's and each snapshot's own zero level set in its panel (the bold curve is where that
    network is zero), under the right shape, run, training fraction and weight."""
    root, samples = tiny_run
    models = [root / m / s / "model.pt" for m in ("digs", "steik") for s in ("circle", "snowflake")]
    snapshots = [root / m / "snowflake" / "snapshots.pt" for m in ("digs", "steik")]
    levels = tmp_path / "levels.png"
    assert main(["plot-levelsets", "--models", *map(str, models), "--samples",
                 *map(str, samples), "--out", str(levels), "--resolution", "48"]) == 0  # fmt: skip
    strip = tmp_path / "strip.png"
    assert main(["plot-snapshots", "--snapshots", *map(str, snapshots), "--sample",
                 str(samples[1]), "--out", str(strip), "--resolution", "48"]) == 0  # fmt: skip
    for path, rows, columns in ((levels, 2, 2), (strip, 2, 3)):
        image = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
        assert image.shape[1] == round((columns * 2.2 + 0.6) * 100)
        assert image.shape[0] > rows * 200

    fig = build_levelset_figure(models, samples, resolution=48)
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[0]] == ["circle", "snowflake"]
    assert [ax.get_ylabel() for ax in axes[:, 0]] == ["DiGS", "StEik"]
    for ax, model in zip(axes.ravel(), models, strict=True):
        sample = samples[0] if model.parent.name == "circle" else samples[1]
        assert_zero_set_of(ax, load_model(model)[0], sample, resolution=48)
    fig = build_snapshot_figure(snapshots, samples[1], resolution=48)
    panels = np.array(fig.axes[1:]).reshape(2, 3)
    for row, path in zip(panels, snapshots, strict=True):
        networks, meta = load_snapshots(path)
        assert row[0].get_ylabel() == ("DiGS" if "digs" in str(path) else "StEik")
        for ax, network, fraction, w in zip(row, networks, (0.25, 0.5, 1.0), meta.w_div,
                                            strict=True):  # fmt: skip
            assert ax.get_title() == f"t={fraction:.2f}, w_div={w:g}"
            assert_zero_set_of(ax, network, samples[1], resolution=48)


def test_a_model_without_its_sample_is_refused(tiny_run, tmp_path, capsys):
    root, samples = tiny_run
    out = tmp_path / "levels.png"
    model = str(root / "steik" / "snowflake" / "model.pt")
    assert main(["plot-levelsets", "--models", model, "--samples", str(samples[0]),
                 "--out", str(out)]) == 2  # fmt: skip
    assert "no sample file given for shape(s) snowflake" in capsys.readouterr().err
    mesh_path = root / "steik" / "snowflake" / "mesh.ply"
    assert main(["evaluate", "--mesh", str(mesh_path), "--model", model, "--sample",
                 str(samples[0]), "--out", str(tmp_path / "m.parquet")]) == 2  # fmt: skip
    assert "was not trained on the points" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "m.parquet").exists()


def test_training_twice_gives_the_same_rows(tiny_run, tmp_path):
    """The 2D stages are deterministic: retraining one run gives bit-identical weights."""
    root, samples = tiny_run
    config = preset("steik", "2d", iterations=20, n_manifold=64, n_offsurface=64, layers=2,
                    hidden=8, log_every=5)  # fmt: skip
    train(samples, config, tmp_path, quiet=True)
    a = torch.load(root / "steik" / "circle" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "circle" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[n], b[n]) for n in a)
