"""Reconstruction metrics (SPEC 7): pure functions of point sets, arrays in, numbers out.

Distances are Euclidean nearest-neighbour distances between point sets (point-cloud-utils'
KD-tree). The paper's conventions:
- SRB: Chamfer d_C = 1/2 (mean_g d(g, R) + mean_r d(r, G)), Hausdorff d_H = the larger of the
  two maxima, and one-sided distances from the input scan S to the reconstruction R.
- ShapeNet: squared Chamfer = mean_g d(g, R)^2 + mean_r d(r, G)^2 (summed, no 1/2); IoU of
  inside labels.
- Occupancy Networks: Chamfer-L1, normal consistency (orientation-free) and F-score at a
  distance threshold tau.
R is sampled from the reconstructed mesh (area-weighted) or polylines (length-weighted) with a
fixed seed, so the same inputs give the same numbers.

Plane curves with an exact ground truth (the 2D shapes of SPEC 9) have their own measures:
Chamfer and Hausdorff against the exact curve, the rounding of polygon corners, and the number
of connected pieces of the zero contour (every piece beyond the shape's one is spurious).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import point_cloud_utils as pcu
import scipy.sparse
import scipy.sparse.csgraph
import shapely


def _as3d(points: np.ndarray) -> np.ndarray:
    """float64 `[n, 3]`: 2D points get a zero z column (point-cloud-utils' KD-tree is 3D only)."""
    data = np.asarray(points, dtype=np.float64)
    if data.shape[1] == 2:
        data = np.concatenate([data, np.zeros((len(data), 1))], axis=1)
    return np.ascontiguousarray(data)


def nearest(query: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `query [n, d]`: distance to and index of its nearest point in `reference [m, d]`.

    Returns float64 `[n]` distances and int64 `[n]` indices (d = 2 or 3).
    """
    distances, index = pcu.k_nearest_neighbors(_as3d(query), _as3d(reference), 1)
    return np.asarray(distances, dtype=np.float64).reshape(-1), np.asarray(
        index, dtype=np.int64
    ).reshape(-1)


def sample_mesh(
    vertices: np.ndarray, faces: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` area-uniform samples on a triangle mesh -> (points `[count, 3]`, unit face normals
    `[count, 3]`).

    point-cloud-utils takes seed 0 as "use the clock", so seed s is passed as s + 1.
    """
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    face_index, barycentric = pcu.sample_mesh_random(v, f, int(count), random_seed=int(seed) + 1)
    points = pcu.interpolate_barycentric_coords(f, face_index, barycentric, v)
    corners = v[f[face_index]]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.asarray(points), normals / np.where(length > 0, length, 1.0)


def sample_polylines(
    vertices: np.ndarray, edges: np.ndarray, count: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """`count` length-uniform samples on 2D segments -> (points `[count, 2]`, unit normals
    `[count, 2]`, the segment direction turned by 90 degrees)."""
    rng = np.random.default_rng(seed)
    start = np.asarray(vertices, dtype=np.float64)[edges[:, 0], :2]
    end = np.asarray(vertices, dtype=np.float64)[edges[:, 1], :2]
    direction = end - start
    length = np.linalg.norm(direction, axis=1)
    chosen = rng.choice(len(edges), size=int(count), p=length / length.sum())
    t = rng.random(int(count))[:, None]
    points = start[chosen] + t * direction[chosen]
    tangent = direction[chosen] / length[chosen, None]
    return points, np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def bbox_diagonal(points: np.ndarray) -> float:
    """Length of the diagonal of the axis-aligned bounding box of `points [n, d]`."""
    data = np.asarray(points, dtype=np.float64)
    return float(np.linalg.norm(data.max(axis=0) - data.min(axis=0)))


def inside_mesh(
    vertices: np.ndarray, faces: np.ndarray, query: np.ndarray, chunk: int = 1_000_000
) -> np.ndarray:
    """bool `[Q]`: query points `[Q, 3]` inside a closed triangle mesh (vertices `[V, 3]`,
    faces `[F, 3]`), by the fast generalised winding number.

    The winding number is ~1 inside and ~0 outside a closed mesh and degrades gracefully on small
    holes, unlike ray parity.
    """
    v = np.asarray(vertices, dtype=np.float64)
    # relative to the mesh's centre: the winding number loses its precision on coordinates far
    # from the origin (a shape at y = 1e9 came out as all outside)
    origin = (v.min(axis=0) + v.max(axis=0)) / 2 if len(v) else np.zeros(3)
    v = np.ascontiguousarray(v - origin)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    out = np.empty(len(query), dtype=bool)
    for lo in range(0, len(query), chunk):
        part = np.ascontiguousarray(np.asarray(query[lo : lo + chunk], np.float64) - origin)
        out[lo : lo + chunk] = pcu.triangle_soup_fast_winding_number(v, f, part) > 0.5
    return out


def one_sided(source: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(mean, max) over `source [n, d]` of the distance to `target [m, d]`.

    SRB's scan metrics are `one_sided(scan, reconstruction)`: a reconstruction that adds a
    spurious component does not change them; a scan point far from the surface does.
    """
    distances, _ = nearest(source, target)
    return float(distances.mean()), float(distances.max())


def iou(predicted: np.ndarray, labels: np.ndarray) -> float:
    """Intersection over union of two boolean inside masks `[Q]` (NaN when both are empty)."""
    predicted = np.asarray(predicted, dtype=bool)
    labels = np.asarray(labels, dtype=bool)
    union = int(np.count_nonzero(predicted | labels))
    if union == 0:
        return math.nan
    return int(np.count_nonzero(predicted & labels)) / union


def compare_surfaces(
    reconstruction: np.ndarray,
    reference: np.ndarray,
    reconstruction_normals: np.ndarray | None = None,
    reference_normals: np.ndarray | None = None,
    tau: float | None = None,
) -> dict[str, float]:
    """All two-way metrics between surface samples R `[n, d]` and ground truth G `[m, d]`.

    One nearest-neighbour query each way, then:
    - `chamfer` = 1/2 (mean d(g, R) + mean d(r, G)), `hausdorff` = max of both maxima (SRB);
    - `chamfer_sq` = mean d(g, R)^2 + mean d(r, G)^2 (ShapeNet, no 1/2);
    - `chamfer_l1` = `chamfer` in the Occupancy Networks frame, i.e. divided by the longest side
      of G's bounding box (their meshes are scaled into the unit cube), so it is scale-free;
    - `normal_consistency` = 1/2 (mean |n_r . n_g(r)| + mean |n_g . n_r(g)|) over nearest
      neighbours, orientation-free (NaN without both normal sets);
    - `fscore` = 2 P Rc / (P + Rc) with precision P = share of R within tau of G and recall Rc =
      share of G within tau of R (NaN without tau; 0 when both are 0).
    """
    to_reference, r_index = nearest(reconstruction, reference)
    to_reconstruction, g_index = nearest(reference, reconstruction)
    extent = np.asarray(reference, dtype=np.float64)
    longest = float((extent.max(axis=0) - extent.min(axis=0)).max())
    chamfer = 0.5 * (to_reconstruction.mean() + to_reference.mean())
    out = {
        "chamfer": float(chamfer),
        "hausdorff": float(max(to_reconstruction.max(), to_reference.max())),
        "chamfer_sq": float(np.mean(to_reconstruction**2) + np.mean(to_reference**2)),
        "chamfer_l1": float(chamfer / longest) if longest > 0 else math.nan,
        "normal_consistency": math.nan,
        "fscore": math.nan,
    }
    if reconstruction_normals is not None and reference_normals is not None:
        n_r = np.asarray(reconstruction_normals, dtype=np.float64)
        n_g = np.asarray(reference_normals, dtype=np.float64)
        accuracy = np.abs(np.sum(n_r * n_g[r_index], axis=1)).mean()
        completeness = np.abs(np.sum(n_g * n_r[g_index], axis=1)).mean()
        out["normal_consistency"] = float(0.5 * (accuracy + completeness))
    if tau is not None:
        precision = float(np.mean(to_reference <= tau))
        recall = float(np.mean(to_reconstruction <= tau))
        total = precision + recall
        out["fscore"] = 2 * precision * recall / total if total > 0 else 0.0
    return out


# ------------------------------------------------------------------ plane curves (2D shapes)


def polylines(vertices: np.ndarray, edges: np.ndarray) -> list[np.ndarray]:
    """The polylines `[n_i, 2]` of a 2D reconstruction given as vertices `[V, >=2]` and edges
    `[E, 2]` that join consecutive vertices of each line (as `steik extract` writes them)."""
    if len(edges) == 0:
        return []
    xy = np.asarray(vertices, dtype=np.float64)[:, :2]
    breaks = np.nonzero(edges[1:, 0] != edges[:-1, 1])[0] + 1
    return [xy[np.append(run[:, 0], run[-1, 1])] for run in np.split(edges, breaks)]


def resample_polylines(lines: Sequence[np.ndarray], spacing: float) -> np.ndarray:
    """Points `[M, 2]` along every polyline at most `spacing` apart (vertices included)."""
    out = []
    for line in lines:
        start, end = line[:-1], line[1:]
        length = np.linalg.norm(end - start, axis=1)
        steps = np.maximum(np.ceil(length / spacing).astype(np.int64), 1)
        t = np.concatenate([np.arange(n) / n for n in steps])
        index = np.repeat(np.arange(len(start)), steps)
        out.append(start[index] + t[:, None] * (end - start)[index])
        out.append(line[-1:])
    return np.concatenate(out) if out else np.zeros((0, 2))


def curve_distances(
    lines: Sequence[np.ndarray],
    distance_to_curve: Callable[[np.ndarray], np.ndarray],
    curve_points: np.ndarray,
    spacing: float,
) -> dict[str, float]:
    """Chamfer and Hausdorff (SPEC 7) between polylines and an exactly known curve.

    Polyline -> curve distances are exact (`distance_to_curve` of points `[n, 2]`, at samples at
    most `spacing` apart along the lines); curve -> polyline distances go from the dense
    `curve_points [m, 2]` to those samples (so `spacing` should be well below the grid step).
    NaN for both when there are no lines.
    """
    if not lines:
        return {"chamfer": math.nan, "hausdorff": math.nan}
    dense = resample_polylines(lines, spacing)
    to_curve = np.abs(distance_to_curve(dense))
    to_lines, _ = nearest(curve_points, dense)
    return {
        "chamfer": float(0.5 * (to_curve.mean() + to_lines.mean())),
        "hausdorff": float(max(to_curve.max(), to_lines.max())),
    }


def distance_to_lines(points: np.ndarray, lines: Sequence[np.ndarray]) -> np.ndarray:
    """Exact Euclidean distance `[n]` from `points [n, 2]` to the nearest of the polylines."""
    geometry = shapely.MultiLineString([np.asarray(line, dtype=np.float64) for line in lines])
    return shapely.distance(shapely.points(np.asarray(points, dtype=np.float64)), geometry)


def interior_angles(vertices: np.ndarray) -> np.ndarray:
    """Interior angle `[V]` (radians, in (0, 2 pi)) at each vertex of a CCW polygon `[V, 2]`."""
    incoming = vertices - np.roll(vertices, 1, axis=0)
    outgoing = np.roll(vertices, -1, axis=0) - vertices
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    dot = (incoming * outgoing).sum(axis=1)
    turn = np.arctan2(cross, dot)  # > 0: left turn = convex corner of a CCW polygon
    return math.pi - turn


def corner_errors(lines: Sequence[np.ndarray], vertices: np.ndarray) -> dict[str, float]:
    """Corner sharpness of polylines against a CCW polygon `vertices [V, 2]`.

    The distance from each true vertex to the nearest polyline: a corner of interior angle theta
    rounded off with radius rho misses its vertex by rho (1 / sin(theta / 2) - 1), so this is the
    rounding itself, zero for a sharp corner. Means over all vertices (`corner`), the convex ones
    (interior angle below 180 degrees) and the concave ones (NaN where there are none).
    """
    if not lines:
        return {"corner": math.nan, "corner_convex": math.nan, "corner_concave": math.nan}
    distance = distance_to_lines(vertices, lines)
    convex = interior_angles(vertices) < math.pi
    return {
        "corner": float(distance.mean()),
        "corner_convex": float(distance[convex].mean()) if convex.any() else math.nan,
        "corner_concave": float(distance[~convex].mean()) if (~convex).any() else math.nan,
    }


def count_components(lines: Sequence[np.ndarray], expected: int = 1) -> tuple[int, int]:
    """(connected pieces of a zero contour, spurious pieces = those beyond `expected`)."""
    return len(lines), max(0, len(lines) - expected)


def mesh_components(vertices: np.ndarray, faces: np.ndarray) -> int:
    """Connected pieces of a triangle mesh `faces [F, 3]` over `vertices [V, 3]`; vertices at
    the same position count as one, so a marching-cubes surface split only by duplicated
    vertices is still one piece. 0 for an empty mesh."""
    if len(faces) == 0:
        return 0
    _, index = np.unique(np.asarray(vertices, dtype=np.float64), axis=0, return_inverse=True)
    f = index.reshape(-1)[np.asarray(faces, dtype=np.int64)]
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]]])
    n = int(index.max()) + 1
    graph = scipy.sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), (n, n))
    used = np.unique(f)
    _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    return int(np.unique(labels[used]).size)
