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
"""

from __future__ import annotations

import math

import numpy as np
import point_cloud_utils as pcu


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
