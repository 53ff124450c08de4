"""Quality checks and quality-against-time: pieces of a mesh, the good-surface check, 3D snapshots
scored like final networks (with the seconds spent to reach them), the figure and its commands."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import trimesh

from steik.cli import main
from steik.errors import SteikError
from steik.methods import method_label
from steik.metrics import mesh_components
from steik.model import load_snapshots
from steik.plots.figure import save_figure
from steik.quality import build_quality_figure, quality_curves, quality_figure, surface_checks
from steik.tables import ROW_COLUMNS, SNAPSHOT_COLUMNS


def test_mesh_components_counts_pieces_not_duplicated_vertices():
    box = trimesh.creation.box()
    far = box.copy()
    far.apply_translation([5.0, 0.0, 0.0])
    two = trimesh.util.concatenate([box, far])
    assert mesh_components(two.vertices, two.faces) == 2
    # Every triangle with its own three vertices (as a mesh file may store it): still one piece.
    soup = box.vertices[box.faces].reshape(-1, 3)
    assert mesh_components(soup, np.arange(len(soup)).reshape(-1, 3)) == 1
    assert mesh_components(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)) == 0
    # Unused vertices are not pieces.
    extra = np.concatenate([box.vertices, [[9.0, 9.0, 9.0]]])
    assert mesh_components(extra, box.faces) == 1


def _rows(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"dataset": ["d"] * n, "method": ["steik"] * n, "shape": [f"s{i}" for i in range(n)],
            "seed": [0] * n, "status": ["ok"] * n, "chamfer": [0.01] * n}  # fmt: skip
    return pd.DataFrame({**base, **columns})


def test_surface_checks_need_iou_pieces_and_status():
    rows = _rows(
        iou=[0.95, 0.02, 0.97, math.nan, 0.99],
        n_components=[1.0, 1.0, 3.0, 1.0, 1.0],
        status=["ok", "ok", "ok", "ok", "diverged"],
    )
    checks = surface_checks(rows, min_iou=0.9, components=1)
    assert checks["good"].tolist() == [True, False, False, False, False]
    assert "IoU 0.020 < 0.9" in checks["why"][1]  # an inside-out network fails on IoU
    assert "3 pieces" in checks["why"][2]
    assert "IoU nan" in checks["why"][3]  # no IoU is no evidence
    assert "status diverged" in checks["why"][4]
    only = surface_checks(rows.assign(method=["digs", "steik", "steik", "steik", "steik"]),
                          methods=["digs"])  # fmt: skip
    assert only["shape"].tolist() == ["s0"]
    with pytest.raises(SteikError, match="n_components"):
        surface_checks(rows.drop(columns=["n_components"]))


def test_check_quality_command_exit_status(tmp_path: Path):
    good = tmp_path / "good.parquet"
    _rows(iou=[0.95, 0.91], n_components=[1.0, 1.0]).to_parquet(good)
    bad = tmp_path / "bad.parquet"
    _rows(iou=[0.95], n_components=[2.0]).to_parquet(bad)
    assert main(["check-quality", "--tables", str(good)]) == 0
    assert main(["check-quality", "--tables", str(good), str(bad)]) == 1
    assert main(["check-quality", "--tables", str(good), "--min-iou", "0.93"]) == 1
    assert main(["check-quality", "--tables", str(tmp_path / "none.parquet")]) == 2
    assert main(["check-quality", "--tables", str(good), "--min-iou", "2"]) == 2


def test_quality_curves_average_shapes_and_seeds():
    snapshots = pd.DataFrame({
        "method": ["steik"] * 4 + ["digs"] * 2,
        "fraction": [0.5, 0.5, 1.0, 1.0, 0.5, 1.0],
        "seconds": [10.0, 20.0, 30.0, 50.0, 5.0, 9.0],
        "chamfer": [0.2, 0.4, 0.1, 0.3, 1.0, 0.5],
        "iou": [0.5, 0.7, 0.9, 0.95, 0.1, 0.2],
    })  # fmt: skip
    curves = quality_curves(snapshots).set_index(["method", "fraction"])
    assert curves.loc[("steik", 0.5), "seconds"] == pytest.approx(15.0)
    assert curves.loc[("steik", 1.0), "chamfer"] == pytest.approx(0.2)
    assert curves.loc[("digs", 1.0), "iou"] == pytest.approx(0.2)


@pytest.fixture(scope="module")
def sphere_run(tmp_path_factory) -> Path:
    """A tiny 3D run with snapshots: fetch and sample the demo sphere, train, extract, evaluate
    (snapshots meshed on the final grid), tables."""
    root = tmp_path_factory.mktemp("quality3d")
    sample = root / "sphere.npz"
    assert main(["fetch", "demo3d", "--root", str(root / "res"), "--quiet"]) == 0
    assert main(["sample", "demo3d", "sphere", "--root", str(root / "res"), "--out", str(sample),
                 "--n-points", "2000", "--n-gt", "2000", "--n-occ", "2000"]) == 0  # fmt: skip
    run = root / "siren_wo_n"
    assert main(["train", "--points", str(sample), "--method", "siren_wo_n", "--experiment", "srb",
                 "--out", str(run), "--quiet", "--device", "cpu", "--snapshots", "0.5,1.0",
                 "--overrides", '{"iterations": 12, "hidden": 16, "layers": 2, "n_manifold": 256,'
                 ' "n_offsurface": 256, "log_every": 4}']) == 0  # fmt: skip
    mesh = run / "sphere" / "mesh.ply"
    assert main(["extract", "--model", str(run / "sphere" / "model.pt"), "--sample", str(sample),
                 "--out", str(mesh), "--resolution", "24", "--device", "cpu"]) == 0  # fmt: skip
    assert main(["evaluate", "--mesh", str(mesh), "--model", str(run / "sphere" / "model.pt"),
                 "--sample", str(sample), "--out", str(run / "sphere" / "metrics.parquet"),
                 "--n-samples", "3000", "--device", "cpu", "--options",
                 '{"snapshot_resolution": 24}', "--table", str(run / "rows.parquet"),
                 "--snapshot-table", str(run / "snap.parquet")]) == 0  # fmt: skip
    assert main(["tables", "--dataset", "demo3d", "--out-dir", str(root / "tables"),
                 "--metrics", str(run / "rows.parquet"),
                 "--snapshots", str(run / "snap.parquet")]) == 0  # fmt: skip
    return root


def test_3d_snapshots_score_like_the_final_network(sphere_run: Path):
    rows = pd.read_parquet(sphere_run / "tables" / "demo3d.parquet")
    snapshots = pd.read_parquet(sphere_run / "tables" / "demo3d_snapshots.parquet")
    assert list(snapshots.columns) == list(SNAPSHOT_COLUMNS)
    assert list(rows.columns) == list(ROW_COLUMNS)
    assert snapshots["fraction"].tolist() == [0.5, 1.0]
    final, last = rows.iloc[0], snapshots.iloc[-1]
    # The last snapshot is the final network, meshed on the same grid and sampled with the same
    # seed: the same surface, so the same numbers (up to the mesh file's float32 vertices).
    for metric in ("chamfer", "hausdorff", "iou", "n_components"):
        assert last[metric] == pytest.approx(final[metric], rel=1e-6), metric
    assert final["n_components"] >= 1
    # Seconds of training per shape, growing, the last equal to the model's training time.
    seconds = snapshots["seconds"].to_numpy()
    assert 0 < seconds[0] < seconds[1]
    assert seconds[1] == pytest.approx(final["train_seconds"], rel=1e-6)
    _, meta = load_snapshots(sphere_run / "siren_wo_n" / "sphere" / "snapshots.pt")
    assert len(meta.seconds) == 2


def test_3d_tables_keep_the_scan_layout_and_show_training(sphere_run: Path):
    markdown = (sphere_run / "tables" / "demo3d.md").read_text()
    assert "sphere during training, IoU" in markdown
    assert "pieces" in markdown
    assert "demo3d: sphere\n" not in markdown  # not the per-shape 2D curve layout


def _means(frame: pd.DataFrame, by: str, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """Means of x and y over the rows sharing each value of `by`, in increasing `by`."""
    groups = sorted(set(frame[by]))
    return (np.array([frame.loc[frame[by] == g, x].mean() for g in groups]),
            np.array([frame.loc[frame[by] == g, y].mean() for g in groups]))  # fmt: skip


def test_quality_figure_draws_each_methods_means():
    """A line per trained method through its snapshots' means over shapes and seeds (seconds
    against Chamfer, then IoU), a black star per untrained method at the mean of its good final
    rows; Chamfer on a log scale, IoU from 0 to 1; no IoU panel when no IoU is defined."""
    rng = np.random.default_rng(3)
    snapshots = pd.DataFrame([
        {"method": method, "shape": shape, "seed": seed, "fraction": fraction,
         "seconds": 10 * fraction + rng.uniform(0, 2), "chamfer": rng.uniform(0.01, 0.1),
         "iou": rng.uniform(0.5, 1.0)}
        for method in ("steik", "digs") for shape in ("a", "b") for seed in (0, 1)
        for fraction in (0.5, 0.25, 1.0)
    ])  # fmt: skip
    rows = pd.DataFrame({
        "method": ["poisson"] * 4 + ["steik"], "iterations": [0, 0, 0, 0, 100],
        "status": ["ok", "ok", "failed", "ok", "ok"], "extract_seconds": [1.0, 2.0, 50.0, 6.0, 9.0],
        "chamfer": [0.02, 0.03, 9.0, 0.07, 0.5], "iou": [0.7, 0.8, 0.0, 0.99, 0.1],
    })  # fmt: skip
    fig = build_quality_figure(rows, snapshots, title="demo3d")
    assert [ax.get_ylabel() for ax in fig.axes] == ["Chamfer (original units)", "IoU"]
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "linear"]
    assert fig.axes[1].get_ylim() == (0.0, 1.02)
    for ax, metric in zip(fig.axes, ("chamfer", "iou"), strict=True):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert sorted(lines) == ["DiGS", "Screened Poisson", "StEik"]
        for method in ("steik", "digs"):
            line = lines[method_label(method)]
            assert line.get_marker() == "o"
            x, y = _means(snapshots[snapshots["method"] == method], "fraction", "seconds", metric)
            np.testing.assert_allclose(line.get_xdata(), x)
            np.testing.assert_allclose(line.get_ydata(), y)
        star = lines["Screened Poisson"]
        assert star.get_marker() == "*" and star.get_linestyle() == "None"
        want = {"chamfer": 0.04, "iou": 0.83}[metric]  # means of the ok rows, not the failed one
        np.testing.assert_allclose(star.get_xydata(), [[3.0, want]])
    without_iou = build_quality_figure(rows.assign(iou=np.nan), snapshots.assign(iou=np.nan))
    assert [ax.get_ylabel() for ax in without_iou.axes] == ["Chamfer (original units)"]


def test_quality_figure_from_the_tables(sphere_run: Path, tmp_path: Path):
    """The command draws the tables' snapshot means: the figure it saves is the one built from
    the tables, whose line is the mean over shapes and seeds of each snapshot's row."""
    out = tmp_path / "quality.png"
    tables = sphere_run / "tables"
    assert main(["plot-quality", "--rows", str(tables / "demo3d.parquet"),
                 "--snapshots", str(tables / "demo3d_snapshots.parquet"),
                 "--out", str(out)]) == 0  # fmt: skip
    rows = pd.read_parquet(tables / "demo3d.parquet")
    snapshots = pd.read_parquet(tables / "demo3d_snapshots.parquet")
    fig = build_quality_figure(rows, snapshots)
    (line,) = fig.axes[0].get_lines()
    assert line.get_label() == "SIREN wo n"
    x, y = _means(snapshots, "fraction", "seconds", "chamfer")
    np.testing.assert_allclose(line.get_xydata(), np.stack([x, y], axis=1))
    built = save_figure(fig, tmp_path / "built.png")
    np.testing.assert_array_equal(mpimg.imread(out), mpimg.imread(built))
    empty = pd.DataFrame(columns=list(SNAPSHOT_COLUMNS))
    with pytest.raises(SteikError, match="no snapshot rows"):
        quality_figure(rows, empty, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
