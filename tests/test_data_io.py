"""Readers of steik.data.io on files the tests write, and every refusal on a broken file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from steik.data import io
from steik.data.shapes3d import make_mesh
from steik.errors import SteikError

RNG = np.random.default_rng(7)
POINTS = RNG.normal(size=(50, 3))
NORMALS = RNG.normal(size=(50, 3))


def write_ply_cloud(path: Path, points: np.ndarray, normals: np.ndarray | None) -> Path:
    """An ASCII PLY point cloud, written by hand so the reader is checked against the format."""
    props = ["x", "y", "z"] + (["nx", "ny", "nz"] if normals is not None else [])
    header = ["ply", "format ascii 1.0", f"element vertex {len(points)}"]
    header += [f"property float {p}" for p in props] + ["end_header"]
    rows = points if normals is None else np.concatenate([points, normals], axis=1)
    body = "\n".join(" ".join(f"{v:.6f}" for v in row) for row in rows)
    path.write_text("\n".join(header) + "\n" + body + "\n")
    return path


def test_ply_point_cloud_with_and_without_normals(tmp_path: Path) -> None:
    cloud = io.read_points(write_ply_cloud(tmp_path / "n.ply", POINTS, NORMALS))
    np.testing.assert_allclose(cloud.points, POINTS, atol=1e-6)
    np.testing.assert_allclose(cloud.normals, NORMALS, atol=1e-6)
    bare = io.read_points(write_ply_cloud(tmp_path / "p.ply", POINTS, None))
    np.testing.assert_allclose(bare.points, POINTS, atol=1e-6)
    assert bare.normals is None
    assert not io.is_mesh(tmp_path / "p.ply")


@pytest.mark.parametrize("columns", [3, 6])
def test_xyz_three_and_six_columns(tmp_path: Path, columns: int) -> None:
    table = np.concatenate([POINTS, NORMALS], axis=1)[:, :columns]
    np.savetxt(tmp_path / "c.xyz", table)
    cloud = io.read_points(tmp_path / "c.xyz")
    np.testing.assert_allclose(cloud.points, POINTS)
    if columns == 6:
        np.testing.assert_allclose(cloud.normals, NORMALS)
    else:
        assert cloud.normals is None


def test_numpy_files(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.concatenate([POINTS, NORMALS], axis=1))
    np.savez(tmp_path / "b.npz", points=POINTS)
    a, b = io.read_points(tmp_path / "a.npy"), io.read_points(tmp_path / "b.npz")
    np.testing.assert_array_equal(a.points, POINTS)
    np.testing.assert_array_equal(a.normals, NORMALS)
    np.testing.assert_array_equal(b.points, POINTS)
    assert b.normals is None


@pytest.mark.parametrize("suffix", [".ply", ".off", ".obj", ".stl"])
def test_mesh_formats(tmp_path: Path, suffix: str) -> None:
    mesh = make_mesh("gear")
    path = tmp_path / f"gear{suffix}"
    mesh.export(path)
    loaded = io.read_mesh(path)
    assert io.is_mesh(path)
    assert abs(loaded.volume - mesh.volume) < 1e-5 * mesh.volume
    assert len(loaded.faces) == len(mesh.faces)


def test_occupancy_networks_points(tmp_path: Path) -> None:
    points = RNG.uniform(-0.5, 0.5, size=(1001, 3)).astype(np.float16)  # ONet stores float16
    inside = np.linalg.norm(points.astype(np.float64), axis=1) < 0.3
    np.savez(tmp_path / "points.npz", points=points, occupancies=np.packbits(inside))
    read, labels = io.read_occupancy(tmp_path / "points.npz")
    assert read.dtype == np.float32 and labels.dtype == bool
    np.testing.assert_array_equal(read, points.astype(np.float32))
    np.testing.assert_array_equal(labels, inside)


def binary_ply(path: Path, cut: float | None = None) -> Path:
    """A binary PLY mesh, optionally truncated to a fraction of its bytes."""
    data = trimesh.exchange.ply.export_ply(make_mesh("gear"), encoding="binary")
    path.write_bytes(data if cut is None else data[: int(len(data) * cut)])
    return path


def test_refusals(tmp_path: Path) -> None:
    def refuses(reader, path: Path, match: str) -> None:
        with pytest.raises(SteikError, match=match) as caught:
            reader(path)
        assert str(path) in str(caught.value)

    (tmp_path / "garbage.ply").write_bytes(b"\x00\x01 not a ply file at all")
    refuses(io.read_points, tmp_path / "garbage.ply", "unreadable")
    refuses(io.read_mesh, binary_ply(tmp_path / "cut.ply", cut=0.5), "truncated|unreadable")
    refuses(io.read_points, binary_ply(tmp_path / "cut2.ply", cut=0.5), "truncated|unreadable")
    (tmp_path / "empty.xyz").write_text("")
    refuses(io.read_points, tmp_path / "empty.xyz", "zero points")
    write_ply_cloud(tmp_path / "none.ply", np.zeros((0, 3)), None)
    refuses(io.read_points, tmp_path / "none.ply", "zero points|unreadable")
    nan = POINTS.copy()
    nan[3, 1] = np.nan
    np.savetxt(tmp_path / "nan.xyz", nan)
    refuses(io.read_points, tmp_path / "nan.xyz", "non-finite")
    np.savetxt(tmp_path / "same.xyz", np.ones((10, 3)))
    refuses(io.read_points, tmp_path / "same.xyz", "all 10 points are equal")
    flat = POINTS.copy()
    flat[:, 2] = 0.25 * flat[:, 0] - flat[:, 1]  # a tilted plane, not just z = 0
    np.savetxt(tmp_path / "flat.xyz", flat)
    refuses(io.read_points, tmp_path / "flat.xyz", "one plane")
    write_ply_cloud(tmp_path / "cloud.ply", POINTS, None)
    refuses(io.read_mesh, tmp_path / "cloud.ply", "no faces")
    np.savetxt(tmp_path / "four.xyz", np.ones((5, 4)))
    refuses(io.read_points, tmp_path / "four.xyz", "3 columns")
    np.savez(tmp_path / "nokey.npz", xyz=POINTS)
    refuses(io.read_points, tmp_path / "nokey.npz", "no `points`")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated zip")
    refuses(io.read_points, tmp_path / "broken.npz", "unreadable")
    refuses(io.read_points, tmp_path / "missing.ply", "not found")
    np.savez(tmp_path / "occ.npz", points=POINTS, occupancies=np.packbits(np.ones(20, bool)))
    refuses(io.read_occupancy, tmp_path / "occ.npz", "occupancy bits")


def test_planarity_check_accepts_thin_but_solid_clouds() -> None:
    thin = POINTS * np.array([1.0, 1.0, 1e-3])
    assert io.check_points(thin, "thin").shape == (50, 3)
