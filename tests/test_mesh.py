"""Surface extraction against analytic signed distance functions wrapped as networks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import trimesh
from scipy.spatial import cKDTree

from steik import mesh
from steik.cli import main as cli
from steik.errors import SteikError
from steik.grid import evaluate_grid, evaluate_multires, grid_for_points

# -- analytic SDFs as networks: x [K, N, d] -> u [K, N] -----------------------------------------


def sphere_sdf(radius: float, center=(0.0, 0.0, 0.0)):
    c = torch.tensor(center, dtype=torch.float32)
    return lambda x: (x - c).norm(dim=-1) - radius


def torus_sdf(major: float, minor: float):
    def u(x):
        ring = torch.sqrt(x[..., 0] ** 2 + x[..., 1] ** 2) - major
        return torch.sqrt(ring**2 + x[..., 2] ** 2) - minor

    return u


def box_sdf(half: tuple[float, float, float]):
    b = torch.tensor(half, dtype=torch.float32)

    def u(x):
        q = x.abs() - b
        return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)

    return u


def sphere_surface(n: int, radius: float, rng) -> np.ndarray:
    p = rng.normal(size=(n, 3))
    return radius * p / np.linalg.norm(p, axis=1, keepdims=True)


def torus_surface(n: int, major: float, minor: float, rng) -> np.ndarray:
    # dense enough in both angles that the non-uniform density does not matter at this tolerance
    a, b = rng.uniform(0, 2 * np.pi, (2, n))
    r = major + minor * np.cos(b)
    return np.stack([r * np.cos(a), r * np.sin(a), minor * np.sin(b)], axis=1)


def box_surface(n: int, half, rng) -> np.ndarray:
    p = rng.uniform(-1, 1, (n, 3)) * np.asarray(half)
    axis = rng.integers(0, 3, n)
    p[np.arange(n), axis] = np.sign(rng.uniform(-1, 1, n)) * np.asarray(half)[axis]
    return p


CUBE = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]], dtype=np.float32)
"""A normalised 'scan' whose bounding box is [-1, 1]^3 (the grid box is [-1.1, 1.1]^3)."""

SHAPES = {
    "sphere": (sphere_sdf(0.7), lambda n, rng: sphere_surface(n, 0.7, rng)),
    "torus": (torus_sdf(0.6, 0.25), lambda n, rng: torus_surface(n, 0.6, 0.25, rng)),
    "box": (box_sdf((0.6, 0.4, 0.5)), lambda n, rng: box_surface(n, (0.6, 0.4, 0.5), rng)),
}


def mesh_samples(vertices, faces, n=200_000):
    points, _ = trimesh.sample.sample_surface(
        trimesh.Trimesh(vertices, faces, process=False), n, seed=0
    )
    return np.asarray(points)


def make_trained(folder) -> dict:
    """Sample files and a real `model.pt` (a tiny network trained for 2 iterations on a ball).

    A fresh mfgi network with sphere radius 0.5 has a zero level set inside the box.
    """
    from steik.data.sample import Sample, write_sample
    from steik.data.sampling import SampleConfig, sample_mesh
    from steik.methods import preset
    from steik.train import train

    def write(name, arrays, ground_truth="mesh"):
        sample = Sample(
            dataset="demo",
            shape=name,
            ground_truth=ground_truth,
            source=f"generated:{name}",
            source_sha256="0" * 64,
            **arrays,
        )
        return write_sample(folder / f"{name}.npz", sample)

    config = SampleConfig(n_points=2000, n_gt=5000, n_occ=5000)
    ball = trimesh.creation.icosphere(3, radius=2.0).apply_translation([5.0, 1.0, -2.0])
    out = {"sample": write("ball", sample_mesh(ball, config))}
    other = trimesh.creation.box(extents=(1.0, 2.0, 3.0))
    out["other_sample"] = write("other", sample_mesh(other, config))
    t = np.linspace(0, 2 * np.pi, 500, endpoint=False)
    circle = np.stack([np.cos(t), np.sin(t)], axis=1).astype(np.float32)
    out["sample_2d"] = write(
        "circle", {"points": circle, "center": np.zeros(2), "scale": np.float64(1.0)}, "none"
    )
    method = preset(
        "steik",
        "srb",
        hidden=32,
        layers=3,
        iterations=2,
        n_manifold=256,
        n_offsurface=256,
        sphere_radius=0.5,
        checkpoint_every=0,
        log_every=1,
    )
    train([out["sample"]], method, folder / "run", quiet=True)
    out["model"] = folder / "run" / "ball" / "model.pt"
    with np.load(out["sample"]) as data:
        out["center"], out["scale"] = data["center"], float(data["scale"])
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    return make_trained(tmp_path_factory.mktemp("trained"))


# -- grid ---------------------------------------------------------------------------------------


def test_grid_has_resolution_on_shortest_axis_and_covers_box():
    points = np.array([[-1.0, -0.5, -0.2], [1.0, 0.5, 0.2]], dtype=np.float32)
    grid = grid_for_points(points, 33, margin=0.1)
    assert grid.shape[2] == 33
    assert grid.spacing == pytest.approx(0.6 / 32)
    lo = np.asarray(grid.origin)
    hi = lo + (np.asarray(grid.shape) - 1) * grid.spacing
    assert np.all(lo <= points.min(axis=0) - 0.1 + 1e-6)
    assert np.all(hi >= points.max(axis=0) + 0.1 - 1e-6)
    assert np.all(hi - lo < 2.0 * np.array([1.2, 0.7, 0.4]) + grid.spacing)
    assert grid.points(torch.tensor([[1, 2, 3]])).dtype == torch.float32


def test_dense_values_do_not_depend_on_chunk_size():
    grid = grid_for_points(CUBE, 20)
    u = sphere_sdf(0.5)
    big = evaluate_grid(u, grid, chunk=1 << 20)
    small = evaluate_grid(u, grid, chunk=777)
    np.testing.assert_array_equal(big, small)
    i, j, k = 3, 11, 17
    p = np.asarray(grid.origin) + np.array([i, j, k]) * grid.spacing
    assert big[i, j, k] == pytest.approx(np.linalg.norm(p) - 0.5, abs=1e-6)


# -- extraction accuracy ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_dense_mesh_of_analytic_sdf_is_within_half_a_voxel(name):
    sdf, surface = SHAPES[name]
    config = mesh.ExtractionConfig(resolution=64)
    result = mesh.extract_surface(sdf, CUBE, np.zeros(3), 1.0, config)
    assert result.status == "ok" and result.points_evaluated == result.grid.size
    recon = mesh_samples(result.vertices, result.cells)
    exact = surface(200_000, np.random.default_rng(1))
    accuracy = np.abs(sdf(torch.from_numpy(recon).float()[None]).numpy()).mean()
    completeness = cKDTree(recon).query(exact)[0].mean()
    chamfer = 0.5 * (accuracy + completeness)
    assert chamfer < 0.5 * result.grid.spacing
    # outward orientation: a closed mesh with positive volume
    assert trimesh.Trimesh(result.vertices, result.cells).volume > 0


def test_vertices_are_in_original_units():
    center, scale = np.array([10.0, -5.0, 3.0]), 7.0
    result = mesh.extract_surface(sphere_sdf(0.6), CUBE, center, scale, mesh.ExtractionConfig(48))
    radius = np.linalg.norm(result.vertices - center, axis=1)
    assert np.abs(radius - 0.6 * scale).max() < 0.5 * result.grid.spacing * scale
    assert np.abs(result.vertices.mean(axis=0) - center).max() < 0.05 * scale


# -- multi-resolution ---------------------------------------------------------------------------


def hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    return max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max())


@pytest.mark.parametrize("name", ["torus", "box"])
def test_multires_and_dense_meshes_agree(name):
    sdf, _ = SHAPES[name]
    dense = mesh.extract_surface(sdf, CUBE, np.zeros(3), 1.0, mesh.ExtractionConfig(96))
    multi = mesh.extract_surface(
        sdf, CUBE, np.zeros(3), 1.0, mesh.ExtractionConfig(96, multires=True, coarse_resolution=13)
    )
    box_diagonal = np.linalg.norm((np.asarray(dense.grid.shape) - 1) * dense.grid.spacing)
    assert hausdorff(dense.vertices, multi.vertices) < 1e-3 * box_diagonal
    assert multi.points_evaluated < 0.5 * dense.points_evaluated


def test_multires_evaluates_at_most_15_percent_at_256_on_a_sphere():
    grid = grid_for_points(CUBE, 256)
    calls = []

    def counted(x):
        calls.append(x.shape[1])
        return sphere_sdf(0.9)(x)

    values, evaluated = evaluate_multires(counted, grid)
    assert evaluated == sum(calls)
    assert evaluated <= 0.15 * grid.size
    assert values.shape == grid.shape and np.isfinite(values).all()
    # every point within a voxel of the surface carries its exact value
    p = np.asarray(grid.origin) + np.argwhere(np.abs(values) < grid.spacing) * grid.spacing
    near = values[np.abs(values) < grid.spacing]
    np.testing.assert_allclose(near, np.linalg.norm(p, axis=1) - 0.9, atol=1e-5)


# -- no surface, bad network --------------------------------------------------------------------


def test_no_zero_crossing_gives_empty_mesh_and_status(tmp_path):
    def outside(x):
        return x.norm(dim=-1) + 5.0

    result = mesh.extract_surface(outside, CUBE, np.zeros(3), 1.0, mesh.ExtractionConfig(16))
    assert result.status == "no_surface" and len(result.vertices) == 0
    path = tmp_path / "mesh.ply"
    mesh.write_surface(path, result)
    vertices, cells = mesh.read_surface(path)
    assert len(vertices) == 0 and len(cells) == 0
    assert mesh.read_sidecar(path)["status"] == "no_surface"


def test_non_finite_output_raises():
    def broken(x):
        u = x.norm(dim=-1) - 0.5
        return torch.where(x[..., 0] > 0.9, torch.nan, u)

    with pytest.raises(mesh.NonFiniteOutputError, match="non-finite"):
        mesh.extract_surface(broken, CUBE, np.zeros(3), 1.0, mesh.ExtractionConfig(16))


# -- 2D -----------------------------------------------------------------------------------------


def test_2d_contour_is_the_circle_in_original_units(tmp_path):
    square = np.array([[-1.0, -1.0], [1.0, 1.0]], dtype=np.float32)
    center, scale = np.array([3.0, -2.0]), 0.5
    circle = sphere_sdf(0.5, (0.0, 0.0))
    for multires in (False, True):
        config = mesh.ExtractionConfig(128, multires=multires, coarse_resolution=17)
        result = mesh.extract_surface(circle, square, center, scale, config)
        assert result.vertices.shape[1] == 2 and result.cells.shape[1] == 2
        radius = np.linalg.norm(result.vertices - center, axis=1)
        assert np.abs(radius - 0.25).max() < 0.1 * result.grid.spacing * scale
        segments = result.vertices[result.cells]
        length = np.linalg.norm(segments[:, 1] - segments[:, 0], axis=1).sum()
        assert length == pytest.approx(2 * math.pi * 0.25, rel=1e-3)
    path = tmp_path / "mesh.ply"
    mesh.write_surface(path, result)
    vertices, cells = mesh.read_surface(path)
    np.testing.assert_allclose(vertices[:, :2][cells], result.vertices[result.cells], atol=1e-6)


# -- command line -------------------------------------------------------------------------------


def test_cli_extract_writes_mesh_and_sidecar(trained, tmp_path):
    out = tmp_path / "mesh.ply"
    code = cli(
        ["extract", "--model", str(trained["model"]), "--sample", str(trained["sample"]),
         "--out", str(out), "--resolution", "40", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["status"] == "ok" and info["mode"] == "dense" and info["resolution"] == 40
    assert info["extract_seconds"] > 0 and info["points_evaluated"] == info["points_total"]
    vertices, faces = mesh.read_surface(out)
    assert len(faces) > 0
    # the surface lies inside the box of the scan, in original units
    center, scale = trained["center"], trained["scale"]
    assert np.abs((vertices - center) / scale).max() <= 1.1 + 2.2 / 39


def test_cli_extract_rejects_a_sample_of_another_shape(trained, tmp_path, capsys):
    out = tmp_path / "mesh.ply"
    code = cli(
        ["extract", "--model", str(trained["model"]), "--sample", str(trained["other_sample"]),
         "--out", str(out), "--resolution", "16", "--device", "cpu"]
    )  # fmt: skip
    assert code == 2
    assert "was not trained on the points" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_extract_rejects_a_2d_sample_for_a_3d_model(trained, tmp_path, capsys):
    out = tmp_path / "mesh.ply"
    code = cli(
        ["extract", "--model", str(trained["model"]), "--sample", str(trained["sample_2d"]),
         "--out", str(out), "--resolution", "16", "--device", "cpu"]
    )  # fmt: skip
    assert code == 2
    assert "3D but sample" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_extract_leaves_nothing_for_non_finite_output(trained, tmp_path, capsys):
    payload = torch.load(trained["model"], weights_only=True)
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key] = torch.full_like(payload["state_dict"][key], float("nan"))
    broken = tmp_path / "broken.pt"
    torch.save(payload, broken)
    out = tmp_path / "out" / "mesh.ply"
    code = cli(
        ["extract", "--model", str(broken), "--sample", str(trained["sample"]),
         "--out", str(out), "--resolution", "16", "--device", "cpu"]
    )  # fmt: skip
    assert code == 2
    assert "non-finite" in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".json").exists()


def test_read_surface_rejects_garbage(tmp_path):
    path = tmp_path / "mesh.ply"
    path.write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 9\nend_header\n\x01")
    with pytest.raises(SteikError, match="unreadable"):
        mesh.read_surface(path)
    with pytest.raises(SteikError, match="does not exist"):
        mesh.read_surface(tmp_path / "missing.ply")
