"""Quality checks and quality-against-time: pieces of a mesh, the good-surface check, 3D snapshots
scored like final networks (with the seconds spent to reach them), the figure and its commands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import trimesh

from steik.cli import main
from steik.errors import SteikError
from steik.metrics import mesh_components
from steik.model import load_snapshots
from steik.quality import quality_curves, quality_figure, surface_checks
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


def test_quality_figure_from_the_tables(sphere_run: Path, tmp_path: Path):
    out = tmp_path / "quality.png"
    assert main(["plot-quality", "--rows", str(sphere_run / "tables" / "demo3d.parquet"),
                 "--snapshots", str(sphere_run / "tables" / "demo3d_snapshots.parquet"),
                 "--out", str(out)]) == 0  # fmt: skip
    image = __import__("matplotlib.image", fromlist=["imread"]).imread(out)
    assert image.shape[1] > image.shape[0]  # two panels side by side: Chamfer and IoU
    empty = pd.DataFrame(columns=list(SNAPSHOT_COLUMNS))
    rows = pd.read_parquet(sphere_run / "tables" / "demo3d.parquet")
    with pytest.raises(SteikError, match="no snapshot rows"):
        quality_figure(rows, empty, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
