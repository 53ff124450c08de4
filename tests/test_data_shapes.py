"""The generated shapes: exact 2D signed distances (against brute force) and 3D demo meshes."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import shapely

from steik.data import shapes2d, shapes3d
from steik.errors import SteikError


def brute_force_distance(vertices: np.ndarray, point: np.ndarray) -> float:
    """Unsigned distance of one point to a closed polygon, one segment at a time."""
    best = math.inf
    for i in range(len(vertices)):
        a, b = vertices[i], vertices[(i + 1) % len(vertices)]
        ab, ap = b - a, point - a
        t = min(1.0, max(0.0, float(ap @ ab) / float(ab @ ab)))
        best = min(best, float(np.linalg.norm(ap - t * ab)))
    return best


def test_snowflake_signed_distance_matches_brute_force() -> None:
    vertices = shapes2d.get_shape("snowflake").vertices
    points = np.random.default_rng(0).uniform(-1.2, 1.2, size=(600, 2))
    points[:48] = vertices + 1e-4  # near corners, where the nearest feature switches
    sdf = shapes2d.signed_distance("snowflake", points)
    polygon = shapely.Polygon(vertices)
    for point, value in zip(points, sdf, strict=True):
        expected = brute_force_distance(vertices, point)
        inside = polygon.contains(shapely.Point(point))
        assert abs(abs(value) - expected) < 1e-12
        assert (value < 0) == inside


def test_snowflake_geometry() -> None:
    vertices = shapes2d.get_shape("snowflake").vertices
    assert vertices.shape == (48, 2)  # 3 * 4**2 edges for degree 2
    polygon = shapely.Polygon(vertices)
    assert polygon.is_valid and polygon.exterior.is_ccw
    triangle = math.sqrt(3) / 4
    assert polygon.area == pytest.approx(triangle * (1 + 1 / 3 + 4 / 27), rel=1e-12)
    assert shapes2d.get_shape("snowflake").length() == pytest.approx(3 * (4 / 3) ** 2)
    np.testing.assert_allclose(vertices.mean(axis=0), 0.0, atol=1e-12)  # centred at centroid
    edges = np.linalg.norm(np.roll(vertices, -1, axis=0) - vertices, axis=1)
    np.testing.assert_allclose(edges, 1 / 9)


def test_l_shape_and_circle_known_values() -> None:
    probe = np.array([[0.25, 0.25], [-0.25, -0.25], [1.0, -0.5], [0.0, 0.0], [-0.25, 0.0]])
    np.testing.assert_allclose(
        shapes2d.signed_distance("l_shape", probe), [0.25, -0.25, 0.5, 0.0, -0.25], atol=1e-15
    )
    np.testing.assert_allclose(
        shapes2d.signed_distance("circle", np.array([[0.0, 0.0], [0.3, 0.4], [3.0, 4.0]])),
        [-0.5, 0.0, 4.5],
    )


@pytest.mark.parametrize("name", shapes2d.SHAPES_2D)
def test_surface_points_and_curve_samples_lie_on_the_curve(name: str) -> None:
    points, normals = shapes2d.surface_points(name, 1000)
    assert points.shape == normals.shape == (1000, 2)
    np.testing.assert_allclose(shapes2d.signed_distance(name, points), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0)
    shape = shapes2d.get_shape(name)
    if not shape.is_circle:
        np.testing.assert_array_equal(points[: len(shape.vertices)], shape.vertices)
        # Points per edge in proportion to the edge's length (within one for rounding).
        edges = [
            shapely.LineString([a, b])
            for a, b in zip(shape.vertices, np.roll(shape.vertices, -1, 0), strict=True)
        ]
        extra = shapely.points(points[len(shape.vertices) :])
        counts = np.array([int(shapely.dwithin(e, extra, 1e-12).sum()) for e in edges])
        lengths = np.array([e.length for e in edges])
        assert np.abs(counts - lengths / lengths.sum() * (1000 - len(shape.vertices))).max() <= 1
    dense, dense_normals = shapes2d.curve_samples(name, 2000)
    np.testing.assert_allclose(shapes2d.signed_distance(name, dense), 0.0, atol=1e-12)
    # Outward normals: a small step along them leaves the shape by that step (away from corners).
    step = 1e-4
    moved = shapes2d.signed_distance(name, dense + step * dense_normals)
    assert np.median(np.abs(moved - step)) < 1e-9
    assert (moved > 0).all()


def test_unknown_shape_is_refused() -> None:
    with pytest.raises(SteikError, match="snowflake"):
        shapes2d.signed_distance("square", np.zeros((1, 2)))
    with pytest.raises(SteikError, match="torus"):
        shapes3d.make_mesh("cube")


@pytest.mark.parametrize("name", shapes3d.SHAPES_3D)
def test_demo_meshes_are_watertight_and_deterministic(name: str) -> None:
    mesh = shapes3d.make_mesh(name)
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
    again = hashlib.sha256(shapes3d.mesh_bytes(shapes3d.make_mesh(name))).hexdigest()
    assert hashlib.sha256(shapes3d.mesh_bytes(mesh)).hexdigest() == again


def test_demo_mesh_volumes_match_analytic_solids() -> None:
    assert shapes3d.make_mesh("sphere").volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=5e-3)
    torus = 2 * math.pi**2 * 0.35 * 0.15**2
    assert shapes3d.make_mesh("torus").volume == pytest.approx(torus, rel=5e-3)
    grooves = 3 * 0.04 * 0.8 * 0.1 + 2 * 0.08 * 0.8 * 0.03
    assert shapes3d.make_mesh("grooved_box").volume == pytest.approx(0.8 * 0.8 * 0.5 - grooves)
