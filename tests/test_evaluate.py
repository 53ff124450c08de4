"""The metrics row: analytic reconstructions with known answers, metric selection, statuses,
and the command line's checks of its inputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import trimesh
from test_mesh import make_trained

from steik import evaluate as ev
from steik import mesh, rows, scores
from steik.cli import main as cli
from steik.data.sample import Sample, write_sample
from steik.data.sampling import SampleConfig, sample_mesh
from steik.errors import SteikError
from steik.fileio import array_digest
from steik.methods import MethodConfig
from steik.model import ModelRecord

RADIUS, CENTER = 2.0, np.array([5.0, 1.0, -2.0])


@pytest.fixture(scope="module")
def ball(tmp_path_factory) -> dict:
    """A ground-truth ball of radius 2 (original units) sampled as for the demo dataset."""
    mesh_gt = trimesh.creation.icosphere(5, radius=RADIUS).apply_translation(CENTER)
    arrays = sample_mesh(mesh_gt, SampleConfig(n_points=3000, n_gt=30_000, n_occ=60_000))
    return arrays


def write(folder, arrays: dict, ground_truth: str = "mesh", drop=()) -> tuple[str, Sample]:
    kept = {k: v for k, v in arrays.items() if k not in drop}
    sample = Sample(dataset="demo", shape="ball", ground_truth=ground_truth,
                    source="generated:ball", source_sha256="0" * 64, **kept)  # fmt: skip
    return str(write_sample(folder / f"ball_{ground_truth}.npz", sample)), sample


def analytic_model(monkeypatch, sample: Sample, radius: float, status: str = "ok"):
    """Make `load_model` return a sphere of `radius` (original units) around CENTER."""
    c = torch.tensor((CENTER - sample.center) / sample.scale, dtype=torch.float32)
    r = radius / sample.scale

    def network(x):
        return (x - c).norm(dim=-1) - r

    config = MethodConfig(name="steik", experiment="srb", neuron="quadratic", init="mfgi",
                          div="directional", layers=5, hidden=128, n_manifold=15_000,
                          n_offsurface=15_000)  # fmt: skip
    message = "loss non-finite at iteration 7" if status == "diverged" else ""
    meta = ball_meta(sample, config=config, status=status, message=message)
    monkeypatch.setattr("steik.evaluate.load_model", lambda path, device="cpu": (network, meta))
    return network


def extract(folder, network, sample: Sample, resolution: int = 48) -> str:
    result = mesh.extract_surface(
        network, sample.points, sample.center, sample.scale, mesh.ExtractionConfig(resolution)
    )
    path = folder / "mesh.ply"
    mesh.write_surface(path, result)
    return str(path)


def test_row_of_a_larger_sphere_has_the_analytic_values(ball, tmp_path, monkeypatch):
    sample_path, sample = write(tmp_path, ball)
    network = analytic_model(monkeypatch, sample, radius=2.2)
    mesh_path = extract(tmp_path, network, sample)
    row = ev.evaluate(mesh_path, "model.pt", sample_path, scores.EvaluationConfig(n_samples=50_000))
    assert tuple(row) == rows.ROW_COLUMNS
    assert row["chamfer"] == pytest.approx(0.2, abs=0.01)
    assert row["hausdorff"] == pytest.approx(0.2, abs=0.03)
    assert row["chamfer_scan"] == pytest.approx(0.2, abs=0.01)
    assert row["hausdorff_scan"] == pytest.approx(0.2, abs=0.03)
    assert row["chamfer_sq"] == pytest.approx(2 * 0.2**2, rel=0.1)
    assert row["chamfer_l1"] == pytest.approx(0.2 / (2 * RADIUS), rel=0.05)
    assert row["iou"] == pytest.approx((2.0 / 2.2) ** 3, abs=0.02)
    assert row["normal_consistency"] > 0.99
    assert row["fscore"] == 0.0  # tau = 1% of the diagonal (~0.07) < 0.2
    assert row["status"] == "ok" and row["message"] == ""
    identity = (row["dataset"], row["shape"], row["method"], row["seed"])
    assert identity == ("demo", "ball", "steik", 3)
    assert (row["structure"], row["n_points"], row["n_params"]) == ("5 x 128", 30_000, 200_067)
    assert row["extract_seconds"] == mesh.read_sidecar(mesh_path)["extract_seconds"]


def test_matching_sphere_scores_near_perfect(ball, tmp_path, monkeypatch):
    sample_path, sample = write(tmp_path, ball)
    network = analytic_model(monkeypatch, sample, radius=RADIUS)
    row = ev.evaluate(extract(tmp_path, network, sample, 64), "m", sample_path,
                      scores.EvaluationConfig(n_samples=50_000))  # fmt: skip
    assert row["chamfer"] < 0.02 and row["fscore"] > 0.95 and row["iou"] > 0.98


@pytest.mark.parametrize("ground_truth", ["points", "shapenet", "none"])
def test_only_the_metrics_of_the_ground_truth_kind_are_reported(
    ball, tmp_path, monkeypatch, ground_truth
):
    drop = ("gt_points", "gt_normals", "occ_points", "occ_labels") if ground_truth == "none" else ()
    sample_path, sample = write(tmp_path, ball, ground_truth, drop)
    network = analytic_model(monkeypatch, sample, radius=2.2)
    row = ev.evaluate(extract(tmp_path, network, sample, 32), "m", sample_path,
                      scores.EvaluationConfig(n_samples=20_000))  # fmt: skip
    reported = {c for c in rows.METRIC_COLUMNS if not math.isnan(row[c])}
    assert reported == set(scores.APPLICABLE[ground_truth])


def test_no_surface_row_has_nan_distances_but_an_iou(ball, tmp_path, monkeypatch):
    sample_path, sample = write(tmp_path, ball)
    analytic_model(monkeypatch, sample, radius=2.2)

    def everywhere_outside(x):
        return x.norm(dim=-1) + 1.0

    mesh_path = extract(tmp_path, everywhere_outside, sample, 16)
    monkeypatch.setattr(
        "steik.evaluate.load_model", lambda p, device="cpu": (everywhere_outside, ball_meta(sample))
    )
    row = ev.evaluate(mesh_path, "m", sample_path)
    assert row["status"] == "no_surface" and "no zero crossing" in row["message"]
    assert all(math.isnan(row[c]) for c in rows.METRIC_COLUMNS if c != "iou")
    assert row["iou"] == 0.0  # nothing predicted inside, the labels have an inside


def ball_meta(sample: Sample, **changes) -> ModelRecord:
    """The record of a model trained on `sample` (fields of `ModelRecord` in `changes` win)."""
    fields = dict(
        config=MethodConfig(name="steik", experiment="srb"), config_hash="abc", shape="ball",
        dim=sample.dim, points_digest=array_digest(sample.points), center=tuple(sample.center),
        scale=sample.scale, seed=3, iterations=10_000, status="ok", message="",
        train_seconds=12.5, ms_per_iter=1.25, n_params=200_067, device="cpu",
        torch_version="t", steik_version="s", n_shapes_batch=1,
    )  # fmt: skip
    return ModelRecord(**(fields | changes))


def test_diverged_model_gives_diverged_status(ball, tmp_path, monkeypatch):
    sample_path, sample = write(tmp_path, ball)
    network = analytic_model(monkeypatch, sample, radius=2.2, status="diverged")
    row = ev.evaluate(extract(tmp_path, network, sample, 24), "m", sample_path,
                      scores.EvaluationConfig(n_samples=5_000))  # fmt: skip
    assert row["status"] == "diverged" and "iteration 7" in row["message"]
    assert not math.isnan(row["chamfer"])


def test_write_row_keeps_columns_and_nan(tmp_path):
    row = {c.name: math.nan if c.dtype == "float64" else "x" for c in rows.ROW_SCHEMA}
    row |= {"seed": 0, "chamfer": 0.5}
    path = rows.write_row(row, tmp_path / "metrics.parquet")
    frame = pd.read_parquet(path)
    assert tuple(frame.columns) == rows.ROW_COLUMNS and len(frame) == 1
    assert frame["chamfer"].iloc[0] == 0.5 and np.isnan(frame["iou"].iloc[0])
    with pytest.raises(SteikError, match="parquet"):
        rows.write_row(row, tmp_path / "metrics.csv")


# -- command line with a real model file ----------------------------------------------------


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("cli")
    files = make_trained(folder)
    files["mesh"] = folder / "mesh.ply"
    code = cli(["extract", "--model", str(files["model"]), "--sample", str(files["sample"]),
                "--out", str(files["mesh"]), "--resolution", "24", "--device", "cpu"])  # fmt: skip
    assert code == 0
    return files


def run_evaluate(files: dict, out, **override) -> int:
    args = {"mesh": files["mesh"], "model": files["model"], "sample": files["sample"]} | override
    return cli(["evaluate", "--mesh", str(args["mesh"]), "--model", str(args["model"]),
                "--sample", str(args["sample"]), "--out", str(out), "--n-samples", "2000",
                "--device", "cpu"])  # fmt: skip


def test_cli_evaluate_writes_one_row(extracted, tmp_path):
    out = tmp_path / "metrics.parquet"
    assert run_evaluate(extracted, out) == 0
    frame = pd.read_parquet(out)
    assert tuple(frame.columns) == rows.ROW_COLUMNS and len(frame) == 1
    row = frame.iloc[0]
    assert (row["method"], row["structure"], row["n_points"], row["iterations"]) == (
        "steik", "3 x 32", 512, 2)  # fmt: skip
    assert row["status"] == "ok" and row["dataset"] == "demo" and row["shape"] == "ball"
    sidecar = json.loads(extracted["mesh"].with_suffix(".json").read_text())
    assert row["extract_seconds"] == sidecar["extract_seconds"]
    assert all(np.isfinite(row[c]) for c in rows.SURFACE_METRICS)
    assert row["n_components"] >= 1  # pieces of the mesh, counted for every 3D surface
    assert all(np.isnan(row[c]) for c in rows.CURVE_METRICS if c != "n_components")  # no 2D curve
    assert row["n_shapes_batch"] == 1 and row["source"] == "generated:ball"


def test_cli_evaluate_rejects_a_sample_of_another_shape(extracted, tmp_path, capsys):
    out = tmp_path / "metrics.parquet"
    assert run_evaluate(extracted, out, sample=extracted["other_sample"]) == 2
    assert "was not trained on the points" in capsys.readouterr().err
    assert not out.exists()


def test_cli_evaluate_rejects_an_unreadable_mesh(extracted, tmp_path, capsys):
    broken = tmp_path / "mesh.ply"
    broken.write_bytes(b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\nnot numbers\n")
    broken.with_suffix(".json").write_text(extracted["mesh"].with_suffix(".json").read_text())
    out = tmp_path / "metrics.parquet"
    assert run_evaluate(extracted, out, mesh=broken) == 2
    assert "unreadable" in capsys.readouterr().err
    assert not out.exists()


def test_cli_evaluate_rejects_a_mesh_without_its_record(extracted, tmp_path, capsys):
    lone = tmp_path / "mesh.ply"
    lone.write_bytes(extracted["mesh"].read_bytes())
    out = tmp_path / "metrics.parquet"
    assert run_evaluate(extracted, out, mesh=lone) == 2
    assert "steik extract" in capsys.readouterr().err
    assert not out.exists()


def test_cli_evaluate_rejects_a_mesh_of_another_model(extracted, tmp_path, capsys):
    payload = torch.load(extracted["model"], weights_only=True)
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key] = payload["state_dict"][key] * 1.01
    other = tmp_path / "model.pt"
    torch.save(payload, other)
    out = tmp_path / "metrics.parquet"
    assert run_evaluate(extracted, out, model=other) == 2
    assert "extracted from another version" in capsys.readouterr().err
    assert not out.exists()


def test_missing_model_is_one_clear_error(extracted, tmp_path, capsys):
    out = tmp_path / "metrics.parquet"
    assert run_evaluate(extracted, out, model=tmp_path / "nope.pt") == 2
    assert "no such model file" in capsys.readouterr().err
    assert not out.exists()


def test_2d_contour_of_a_larger_circle(tmp_path, monkeypatch):
    from steik.data.sampling import sample_curve

    arrays = sample_curve("circle", SampleConfig(n_points=2000, n_gt=20_000, n_occ=40_000))
    sample = Sample(dataset="demo2d", shape="circle", ground_truth="mesh",
                    source="generated:circle", source_sha256="0" * 64, **arrays)  # fmt: skip
    sample_path = write_sample(tmp_path / "circle.npz", sample)
    c = torch.tensor(-sample.center / sample.scale, dtype=torch.float32)

    def circle(x):  # radius 0.55 in original units, the exact curve has radius 0.5
        return (x - c).norm(dim=-1) - 0.55 / sample.scale

    meta = ball_meta(sample)
    monkeypatch.setattr("steik.evaluate.load_model", lambda p, device="cpu": (circle, meta))
    mesh_path = extract(tmp_path, circle, sample, 128)
    vertices, edges = mesh.read_surface(mesh_path)
    assert edges.shape[1] == 2 and np.allclose(vertices[:, 2], 0)
    row = ev.evaluate(mesh_path, "m", sample_path, scores.EvaluationConfig(n_samples=20_000))
    # Scored against the exact circle: every contour point is 0.05 from it.
    assert row["chamfer"] == pytest.approx(0.05, abs=1e-4)
    assert row["hausdorff"] == pytest.approx(0.05, abs=1e-3)
    assert row["iou"] == pytest.approx((0.5 / 0.55) ** 2, abs=0.01)
    assert row["eikonal"] == pytest.approx(0.0, abs=1e-5)  # |grad| of a distance function is 1
    assert (row["n_components"], row["spurious"]) == (1, 0)
    assert math.isnan(row["corner"]) and math.isnan(row["chamfer_sq"])  # a circle has no corner
    assert row["status"] == "ok"
