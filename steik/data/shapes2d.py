"""The 2D sanity shapes of SPEC 9 (circle, L polygon, Koch snowflake) with exact signed distances.

Each shape is a closed curve in the plane: the circle analytically, the other two as
counter-clockwise polygons. `signed_distance` is exact (analytic for the circle, GEOS's
point-to-boundary distance for polygons; negative inside), so 2D reconstructions can be scored
against the true SDF.
`surface_points` gives the training surface of SPEC 9 (all polygon vertices plus points spaced
along the edges in proportion to edge length); `curve_samples` gives dense arc-length samples with
outward unit normals for metrics. Everything is vectorised numpy and deterministic.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from steik.errors import SteikError

SHAPES_2D: tuple[str, ...] = ("circle", "l_shape", "snowflake")
"""Names of the 2D shapes, in the order the demo2d dataset lists them."""

CIRCLE_RADIUS = 0.5
SNOWFLAKE_DEGREE = 2
SNOWFLAKE_SIDE = 1.0
GRID_EXTENT = 1.2
"""SPEC 9's off-surface grid covers [-GRID_EXTENT, GRID_EXTENT]^2."""

_L_VERTICES = np.array(
    [(0.0, 0.0), (0.5, 0.0), (0.5, -0.5), (-0.5, -0.5), (-0.5, 0.5), (0.0, 0.5)], dtype=np.float64
)


@dataclass(frozen=True)
class Shape2D:
    """A closed plane curve: a circle (`radius` set) or a counter-clockwise polygon (`vertices`).

    `vertices` is `[V, 2]`, the polygon's corners in order without repeating the first one.
    """

    name: str
    radius: float | None = None
    vertices: np.ndarray | None = None

    @property
    def is_circle(self) -> bool:
        """True for the analytic circle (no corners)."""
        return self.radius is not None

    def length(self) -> float:
        """Perimeter of the curve."""
        if self.is_circle:
            return 2.0 * math.pi * float(self.radius)
        return float(np.linalg.norm(_edges(self.vertices)[1], axis=1).sum())


def koch_snowflake(degree: int = SNOWFLAKE_DEGREE, side: float = SNOWFLAKE_SIDE) -> np.ndarray:
    """Vertices `[3 * 4**degree, 2]` of the Koch snowflake, counter-clockwise, centroid at 0.

    Starts from an equilateral triangle of the given side (degree 0) and replaces each edge
    a -> b by four edges of a third of its length with the bump pointing outwards.
    """
    if degree < 0:
        raise SteikError(f"Koch snowflake degree must be >= 0, got {degree}")
    height = side * math.sqrt(3.0) / 2.0
    points = np.array(
        [(-side / 2, -height / 3), (side / 2, -height / 3), (0.0, 2 * height / 3)], dtype=np.float64
    )
    # A rotation by -60 degrees turns an edge direction of a CCW polygon towards the outside.
    c, s = math.cos(-math.pi / 3), math.sin(-math.pi / 3)
    rotate = np.array([[c, -s], [s, c]])
    for _ in range(degree):
        start = points
        step = (np.roll(points, -1, axis=0) - start) / 3.0
        one = start + step
        peak = one + step @ rotate.T
        two = start + 2 * step
        points = np.stack([start, one, peak, two], axis=1).reshape(-1, 2)
    return points


def _counter_clockwise(vertices: np.ndarray) -> np.ndarray:
    """The polygon `[V, 2]` counter-clockwise (SPEC 9 lists the L clockwise), same first vertex."""
    x, y = vertices[:, 0], vertices[:, 1]
    signed_area = 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
    return vertices.copy() if signed_area > 0 else np.roll(vertices[::-1], 1, axis=0)


def get_shape(name: str) -> Shape2D:
    """The 2D shape called `name` (one of SHAPES_2D)."""
    if name == "circle":
        return Shape2D(name, radius=CIRCLE_RADIUS)
    if name == "l_shape":
        return Shape2D(name, vertices=_counter_clockwise(_L_VERTICES))
    if name == "snowflake":
        return Shape2D(name, vertices=koch_snowflake())
    raise SteikError(f"unknown 2D shape {name!r}; choose one of {', '.join(SHAPES_2D)}")


def _edges(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edge start points `[E, 2]` and edge vectors `[E, 2]` of a closed polygon."""
    return vertices, np.roll(vertices, -1, axis=0) - vertices


def signed_distance(name: str, xy: np.ndarray) -> np.ndarray:
    """Exact signed distance `[N]` of points `xy [N, 2]` to shape `name`; negative inside.

    The circle analytically; polygons by GEOS (shapely): the distance to the boundary, negated
    for points inside.
    """
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise SteikError(f"2D signed distance needs points of shape [N, 2], got {xy.shape}")
    shape = get_shape(name)
    if shape.is_circle:
        return np.linalg.norm(xy, axis=1) - shape.radius
    polygon = shapely.Polygon(shape.vertices)
    distance = shapely.distance(shapely.points(xy), polygon.exterior)
    inside = shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])
    return np.where(inside, -distance, distance)


def exact_curve(sample: Any) -> str | None:
    """The SPEC 9 shape a sample file was made from (its exact curve is known), else None."""
    shape = getattr(sample, "shape", "")
    if sample.dim == 2 and shape in SHAPES_2D and sample.source == f"generated:{shape}":
        return shape
    return None


def _polygon_vertex_normals(vertices: np.ndarray) -> np.ndarray:
    """Outward unit normals `[V, 2]` at polygon corners: the bisector of the two edge normals."""
    _, edge = _edges(vertices)
    edge_normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1)  # outward for a CCW polygon
    edge_normal /= np.linalg.norm(edge_normal, axis=1, keepdims=True)
    bisector = edge_normal + np.roll(edge_normal, 1, axis=0)  # edge i and edge i-1 meet at vertex i
    return bisector / np.linalg.norm(bisector, axis=1, keepdims=True)


def _split_by_length(lengths: np.ndarray, total: int) -> np.ndarray:
    """Integer counts `[E]` summing to `total`, proportional to `lengths` (largest remainders)."""
    exact = lengths / lengths.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    return counts


def surface_points(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """SPEC 9's surface sampling: `n` points `[n, 2]` and outward unit normals `[n, 2]`.

    Polygons: every vertex, then the remaining `n - V` points spaced evenly along each edge, the
    number per edge proportional to its length. The circle: `n` evenly spaced angles.
    """
    shape = get_shape(name)
    if shape.is_circle:
        angle = 2.0 * math.pi * np.arange(n) / n
        normals = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return shape.radius * normals, normals
    vertices = shape.vertices
    if n < len(vertices):
        raise SteikError(
            f"{name} has {len(vertices)} vertices; ask for at least that many points, got {n}"
        )
    lengths = np.linalg.norm(_edges(vertices)[1], axis=1)
    counts = _split_by_length(lengths, n - len(vertices))
    # Edge points at parameters (k + 1) / (count + 1): strictly between the two corners.
    start, edge = _edges(vertices)
    edge_index = np.repeat(np.arange(len(edge)), counts)
    first = np.cumsum(counts) - counts
    k = np.arange(int(counts.sum())) - np.repeat(first, counts)
    t = (k + 1.0) / (np.repeat(counts, counts) + 1.0)
    edge_points = start[edge_index] + t[:, None] * edge[edge_index]
    edge_normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1) / lengths[:, None]
    points = np.concatenate([vertices, edge_points])
    normals = np.concatenate([_polygon_vertex_normals(vertices), edge_normal[edge_index]])
    return points, normals


def curve_samples(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense ground-truth samples: `n` points `[n, 2]` evenly spaced in arc length, unit normals.

    Samples sit at the midpoints of n equal arc-length steps, so none falls on a corner where the
    normal is undefined; normals are the exact outward normals of the curve there.
    """
    if n < 1:
        raise SteikError(f"number of curve samples must be positive, got {n}")
    shape = get_shape(name)
    if shape.is_circle:
        angle = 2.0 * math.pi * (np.arange(n) + 0.5) / n
        normals = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        return shape.radius * normals, normals
    start, edge = _edges(shape.vertices)
    lengths = np.linalg.norm(edge, axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(lengths)])
    s = (np.arange(n) + 0.5) / n * cumulative[-1]
    edge_index = np.clip(np.searchsorted(cumulative, s, side="right") - 1, 0, len(edge) - 1)
    t = (s - cumulative[edge_index]) / lengths[edge_index]
    points = start[edge_index] + t[:, None] * edge[edge_index]
    normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1) / lengths[:, None]
    return points, normal[edge_index]


def outline(name: str, n_circle: int = 512) -> np.ndarray:
    """A closed polyline `[V, 2]` for drawing the shape (the circle as an `n_circle`-gon)."""
    shape = get_shape(name)
    if shape.is_circle:
        angle = 2.0 * math.pi * np.arange(n_circle) / n_circle
        return shape.radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return shape.vertices.copy()


def grid(resolution: int = 256, extent: float = GRID_EXTENT) -> np.ndarray:
    """A regular `resolution x resolution` grid `[resolution**2, 2]` on [-extent, extent]^2.

    Row-major with x varying fastest, so `values.reshape(resolution, resolution)` is an image with
    y along the first axis.
    """
    axis = np.linspace(-extent, extent, resolution)
    gx, gy = np.meshgrid(axis, axis, indexing="xy")
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def curve_bytes(name: str) -> bytes:
    """Canonical `.npy` bytes of the shape's outline (what `steik fetch demo2d` writes)."""
    buffer = io.BytesIO()
    np.save(buffer, outline(name).astype(np.float64), allow_pickle=False)
    return buffer.getvalue()
