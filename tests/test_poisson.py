"""Screened Poisson (the classical row): a sphere comes back as the sphere, in original units."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import trimesh

from steik.cli import main
from steik.data.sample import Sample, write_sample
from steik.errors import SteikError
from steik.poisson import (
    PoissonConfig,
    estimate_normals,
    orient_outward,
    reconstruct,
    reconstruct_file,
    trim_by_density,
)

CENTER = np.array([1.0, -2.0, 0.5])
SCALE = 0.5


def unit_sphere(n: int, dim: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(n, dim))
    return (p / np.linalg.norm(p, axis=1, keepdims=True)).astype(np.float32)


def write_sphere(path, n=3000, dim=3):
    """A sample whose normalised points lie on the unit sphere: in original units, the sphere of
    radius SCALE about CENTER."""
    points = unit_sphere(n, dim)
    sample = Sample(
        points=points,
        center=CENTER[:dim],
        scale=SCALE,
        dataset="test",
        shape="sphere",
        ground_truth="none",
        source="generated:sphere",
        source_sha256="0" * 64,
        normals=points.copy(),
    )
    return write_sample(path, sample)


def test_sphere_sample_gives_the_sphere_in_original_units(tmp_path):
    sample = write_sphere(tmp_path / "sphere.npz")
    out = tmp_path / "poisson" / "mesh.ply"
    config = PoissonConfig(depth=6, trim_quantile=0.0)
    extraction = reconstruct_file(sample, out, config)
    assert extraction.status == "ok" and extraction.seconds > 0
    mesh = trimesh.load(out, process=False)
    radii = np.linalg.norm(np.asarray(mesh.vertices) - CENTER, axis=1)
    # every vertex within 2% of the radius (a depth-6 cell is 2.2 / 64 = 0.034 normalised)
    assert np.abs(radii - SCALE).max() < 0.02 * SCALE
    # untrimmed, the surface is closed and faces outward: volume 4/3 pi r^3
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * SCALE**3, rel=0.03)
    record = json.loads(out.with_suffix(".json").read_text())
    assert (record["status"], record["mode"], record["method"]) == ("ok", "poisson", "poisson")
    assert record["extract_seconds"] == pytest.approx(extraction.seconds)
    assert record["points_evaluated"] == 0 and record["resolution"] == 2**6 + 1
    assert record["poisson"]["depth"] == 6 and record["library"].startswith("pymeshlab ")
    assert record["normals"].startswith("estimated") and record["trimmed_vertices"] == 0
    # the same input gives the same mesh (one solver thread)
    again = reconstruct_file(sample, tmp_path / "again.ply", config)
    assert np.array_equal(again.vertices, extraction.vertices)


def test_density_trimming_removes_the_low_quantile(tmp_path):
    points = unit_sphere(3000)
    # a cap of the sphere is left unsampled: Poisson closes it with low-density surface
    points = points[points[:, 2] < 0.6]
    full, full_faces, _ = reconstruct(points, PoissonConfig(depth=6, trim_quantile=0.0))
    trimmed, faces, info = reconstruct(points, PoissonConfig(depth=6, trim_quantile=0.1))
    assert info["trimmed_vertices"] >= 0.1 * info["poisson_vertices"]
    assert len(trimmed) == info["poisson_vertices"] - info["trimmed_vertices"]
    assert len(faces) < len(full_faces) and faces.max() < len(trimmed)
    # what goes is the invented cap, far from the data
    removed_z = np.setdiff1d(full[:, 2].round(9), trimmed[:, 2].round(9))
    assert np.median(removed_z) > 0.6


def test_trim_by_density_on_a_hand_mesh():
    vertices = np.arange(15.0).reshape(5, 3)
    faces = np.array([[0, 1, 2], [1, 2, 3], [2, 3, 4]])
    density = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    kept, kept_faces = trim_by_density(vertices, faces, density, 0.25)  # drops vertex 4 (1.0)
    assert np.array_equal(kept, vertices[:4]) and kept_faces.tolist() == [[0, 1, 2], [1, 2, 3]]
    kept, kept_faces = trim_by_density(vertices, faces, density, 0.0)
    assert np.array_equal(kept, vertices) and np.array_equal(kept_faces, faces)


def test_normals_are_estimated_and_turned_outward():
    points = unit_sphere(2000).astype(np.float64)
    normals = estimate_normals(points, k=10)
    assert (np.einsum("ij,ij->i", normals, points) > 0.9).all()
    inward = -points
    assert np.array_equal(orient_outward(points, inward), points)
    assert np.array_equal(orient_outward(points, points), points)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(depth=1), "depth must be an integer in"),
        (dict(trim_quantile=1.5), "trim_quantile must lie in"),
        (dict(k_neighbours=True), "k_neighbours must be an integer"),
        (dict(box_scale=float("nan")), "box_scale must lie in"),
        (dict(use_sample_normals="yes"), "use_sample_normals must be true or false"),
    ],
)
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(SteikError, match=message):
        PoissonConfig(**overrides)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    flat = write_sphere(tmp_path / "circle.npz", n=500, dim=2)
    with pytest.raises(SteikError, match="2D; screened Poisson reconstructs 3D"):
        reconstruct_file(flat, tmp_path / "m.ply")
    with pytest.raises(SteikError, match="more than k_neighbours = 10 points"):
        reconstruct(unit_sphere(8), PoissonConfig())
    with pytest.raises(SteikError, match=r"must end in \.ply"):
        reconstruct_file(write_sphere(tmp_path / "s.npz", n=200), tmp_path / "m.obj")
    with pytest.raises(SteikError, match="use_sample_normals is set but the sample has no"):
        reconstruct(unit_sphere(200), PoissonConfig(use_sample_normals=True))
    code = main(["reconstruct", "--sample", str(tmp_path / "missing.npz"), "--out", "x.ply"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert err.startswith("steik reconstruct: error: sample file") and "does not exist" in err
    assert not (tmp_path / "m.ply").exists()


def test_command_line_writes_mesh_and_sidecar(tmp_path, capsys):
    sample = write_sphere(tmp_path / "sphere.npz", n=1500)
    out = tmp_path / "mesh.ply"
    code = main(["reconstruct", "--sample", str(sample), "--out", str(out), "--depth", "5"])
    assert code == 0 and out.is_file() and out.with_suffix(".json").is_file()
    assert "ok" in capsys.readouterr().out
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["poisson"]["depth"] == 5 and record["poisson"]["trim_quantile"] == 0.01


def test_evaluate_without_a_model_scores_the_poisson_mesh(tmp_path, capsys):
    """`steik evaluate` with no --model: a Poisson mesh's row, IoU from its own inside test."""
    from steik.data.sampling import SampleConfig, sample_mesh

    ball = trimesh.creation.icosphere(4, radius=1.5).apply_translation([2.0, 0.0, -1.0])
    arrays = sample_mesh(ball, SampleConfig(n_points=4000, n_gt=8000, n_occ=8000))
    sample = write_sample(tmp_path / "ball.npz", Sample(dataset="demo", shape="ball",
                          ground_truth="mesh", source="generated:ball", source_sha256="",
                          **arrays))  # fmt: skip
    mesh_path, out = tmp_path / "poisson" / "ball" / "mesh.ply", tmp_path / "m.parquet"
    assert main(["reconstruct", "--sample", str(sample), "--out", str(mesh_path),
                 "--depth", "7"]) == 0  # fmt: skip
    assert main(["evaluate", "--mesh", str(mesh_path), "--sample", str(sample), "--out", str(out),
                 "--n-samples", "8000"]) == 0  # fmt: skip
    row = pd.read_parquet(out).iloc[0]
    assert (row["method"], row["structure"], row["n_params"], row["status"]) == (
        "poisson", "depth 7", 0, "ok")  # fmt: skip
    # A ball is easy for Poisson: its vertices lie on the sphere, the network-free IoU is high.
    vertices = trimesh.load(mesh_path, process=False).vertices
    radial = np.abs(np.linalg.norm(vertices - [2.0, 0.0, -1.0], axis=1) - 1.5)
    assert radial.mean() < 0.01 * 1.5 and row["iou"] > 0.95 and np.isfinite(row["chamfer"])
    record = json.loads(mesh_path.with_suffix(".json").read_text())
    assert row["extract_seconds"] == record["extract_seconds"] > 0
    # A network's mesh needs its model, and a Poisson mesh refuses one.
    model = tmp_path / "model.pt"
    model.write_bytes(b"not used")
    assert main(["evaluate", "--mesh", str(mesh_path), "--model", str(model), "--sample",
                 str(sample), "--out", str(tmp_path / "x.parquet")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "was made by poisson, not from a network; evaluate it without --model" in err
