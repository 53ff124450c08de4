"""The metrics of one reconstruction: which apply to a sample, and their values.

Which metrics apply follows the sample's `ground_truth` (SPEC 7):

| ground_truth | metrics |
|---|---|
| `points` (SRB) | chamfer, hausdorff (vs `gt_points`), chamfer_scan, hausdorff_scan |
| `shapenet` | chamfer_sq (G = the input cloud), iou (network sign at `occ_points`) |
| `mesh` (demo, folder meshes) | all of them |
| `none` (scene; SRB from its scans alone) | chamfer_scan, hausdorff_scan |
| SPEC 9 shape (exact curve) | chamfer, hausdorff, iou, eikonal, spurious, corner (see below) |

Every other metric is NaN. IoU is the network's own inside test (u < 0 at the occupancy points
mapped into the training frame), not the mesh's, so it is computed even without a surface.

The 2D shapes of SPEC 9 are scored against their exact curves (the paper's 2D figure, with
numbers): Chamfer and Hausdorff between the extracted zero contour and the curve, IoU and the
eikonal residual mean | |grad u| - 1 | on the extraction's grid over the training domain, the
contour's connected pieces (every one beyond the first is spurious) and the distance from each
polygon corner to the contour (the rounding a divergence term causes).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from steik import metrics
from steik.data import shapes2d
from steik.data.sample import Sample
from steik.errors import SteikError
from steik.grid import Grid, evaluate_points, evaluate_with_gradient
from steik.rows import METRIC_COLUMNS, SURFACE_METRICS
from steik.seeds import check_seed

APPLICABLE: dict[str, tuple[str, ...]] = {
    "points": ("chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan", "n_components"),
    "shapenet": ("chamfer_sq", "iou", "n_components"),
    "mesh": (*SURFACE_METRICS, "n_components"),
    "none": ("chamfer_scan", "hausdorff_scan", "n_components"),
}
"""Metrics reported for each kind of ground truth (pieces of the mesh for all of them); the rest
are NaN."""

DEFAULT_SAMPLES: dict[str, int] = {
    "points": 1_000_000,
    "shapenet": 30_000,
    "mesh": 100_000,
    "none": 1_000_000,
}
"""Surface samples R per kind of ground truth: SPEC 7 for SRB (and the scene, same metrics) and
ShapeNet; 100,000 for meshes, as Occupancy Networks' evaluation."""


@dataclass(frozen=True)
class EvaluationConfig:
    """How the reconstruction is sampled and scored."""

    n_samples: int | None = None
    """Points sampled on the reconstruction; None = `DEFAULT_SAMPLES[ground_truth]`."""
    seed: int = 0
    """Seed of the surface sampling (the reference evaluation is unseeded; ours is not)."""
    fscore_fraction: float = 0.01
    """F-score threshold tau as a fraction of the ground truth's bounding-box diagonal."""
    chunk: int = 131_072
    """Points per network call for the IoU inside test."""
    curve_samples: int = 20_000
    """2D shapes with an exact curve: arc-length samples of the curve (curve -> contour)."""
    snapshot_resolution: int = 64
    """3D snapshots: grid samples along the shortest box axis of their marching cubes (coarser
    than the final extraction: a run keeps several snapshots and each costs a grid)."""

    def __post_init__(self) -> None:
        if self.n_samples is not None and self.n_samples < 1:
            raise SteikError(f"--n-samples must be positive, got {self.n_samples}")
        check_seed(self.seed)
        if self.curve_samples < 1 or self.chunk < 1:
            raise SteikError("curve_samples and chunk must be positive")
        if self.snapshot_resolution < 2:
            raise SteikError(
                f"snapshot_resolution must be 2 or more, got {self.snapshot_resolution}"
            )
        if not self.fscore_fraction > 0:
            raise SteikError(f"fscore_fraction must be positive, got {self.fscore_fraction}")


def surface_metrics(
    sample: Sample,
    vertices: np.ndarray,
    cells: np.ndarray,
    inside: np.ndarray | None,
    config: EvaluationConfig = EvaluationConfig(),
) -> dict[str, float]:
    """The metric columns for one reconstruction (NaN where a metric does not apply).

    `vertices [V, d]` (original units) with `cells` (triangles `[F, 3]` or 2D edges `[E, 2]`; no
    rows = no surface), `inside [Q]` the network's inside test at `sample.occ_points` (or None).
    """
    kind = sample.ground_truth
    wanted = APPLICABLE[kind]
    out = dict.fromkeys(METRIC_COLUMNS, math.nan)
    if "iou" in wanted and inside is not None and sample.occ_labels is not None:
        out["iou"] = metrics.iou(inside, sample.occ_labels)
    if len(cells) == 0:
        return out
    if "n_components" in wanted and sample.dim == 3:
        out["n_components"] = float(metrics.mesh_components(vertices, cells))
    count = config.n_samples or DEFAULT_SAMPLES[kind]
    if sample.dim == 3:
        recon, recon_normals = metrics.sample_mesh(vertices, cells, count, config.seed)
    else:
        recon, recon_normals = metrics.sample_polylines(vertices[:, :2], cells, count, config.seed)
    if "chamfer_scan" in wanted:
        scan = sample.to_original(sample.points)
        out["chamfer_scan"], out["hausdorff_scan"] = metrics.one_sided(scan, recon)
    reference = sample.gt_points
    if kind == "shapenet" and reference is None:
        reference = sample.to_original(sample.points)
    two_way = {"chamfer", "hausdorff", "chamfer_sq", "chamfer_l1", "normal_consistency", "fscore"}
    if reference is not None and two_way & set(wanted):
        tau = config.fscore_fraction * metrics.bbox_diagonal(reference)
        compared = metrics.compare_surfaces(recon, reference, recon_normals, sample.gt_normals, tau)
        out.update({key: value for key, value in compared.items() if key in wanted})
    return out


def network_inside(
    network: torch.nn.Module, sample: Sample, config: EvaluationConfig, device: torch.device | str
) -> np.ndarray | None:
    """bool `[Q]`: where the network is negative at the sample's IoU points (None without them).

    Raises `steik.grid.NonFiniteOutputError` where the network gives NaN or infinity."""
    if sample.occ_points is None:
        return None
    local = sample.to_normalised(sample.occ_points).astype(np.float32)
    return evaluate_points(network, local, device, config.chunk) < 0


# ----------------------------------------------------------------- 2D shapes with exact curves


@functools.lru_cache(maxsize=8)
def _exact_inside(shape: str, grid: Grid, center: tuple[float, ...], scale: float) -> np.ndarray:
    """bool `grid.shape`: grid points inside the exact curve (cached: every run of a shape is
    scored on the same grid, and the polygon test is the slow part)."""
    index = np.indices(grid.shape).reshape(grid.dim, -1).T
    points = np.asarray(grid.origin) + index * grid.spacing
    inside = shapes2d.signed_distance(shape, points * scale + np.asarray(center)) < 0
    inside = inside.reshape(grid.shape)
    inside.flags.writeable = False
    return inside


def curve_metrics(
    lines: Sequence[np.ndarray], shape: str, spacing: float, curve_samples: int
) -> dict[str, float]:
    """Chamfer, Hausdorff, contour pieces and corner errors of polylines (original units)
    against the exact curve of SPEC 9 shape `shape`; `spacing` is the extraction grid's step."""
    curve, _ = shapes2d.curve_samples(shape, curve_samples)
    out = metrics.curve_distances(
        lines, lambda xy: shapes2d.signed_distance(shape, xy), curve, spacing / 16.0
    )
    out["n_components"], out["spurious"] = metrics.count_components(lines)
    polygon = shapes2d.get_shape(shape)
    if polygon.is_circle:
        out.update(corner=math.nan, corner_convex=math.nan, corner_concave=math.nan)
    else:
        out.update(metrics.corner_errors(lines, polygon.vertices))
    return out


def grid_iou(values: np.ndarray, shape: str, grid: Grid, sample: Sample) -> float:
    """IoU of the network's inside (u < 0 of `values`, `grid.shape`) and the exact inside at the
    grid points."""
    truth = _exact_inside(shape, grid, tuple(np.asarray(sample.center, float)), float(sample.scale))
    return metrics.iou(values.reshape(grid.shape) < 0, truth)


def curve_row_metrics(
    network: torch.nn.Module,
    sample: Sample,
    shape: str,
    vertices: np.ndarray,
    cells: np.ndarray,
    grid: Grid,
    config: EvaluationConfig,
    device: torch.device | str,
) -> dict[str, float]:
    """Every metric column of a 2D run against its exact curve (module docstring)."""
    out = dict.fromkeys(METRIC_COLUMNS, math.nan)
    lines = metrics.polylines(vertices, cells)
    out.update(curve_metrics(lines, shape, grid.spacing * sample.scale, config.curve_samples))
    index = np.indices(grid.shape).reshape(grid.dim, -1).T
    points = grid.points(torch.from_numpy(index)).numpy()
    u, gradient = evaluate_with_gradient(network, points, device, config.chunk)
    out["iou"] = grid_iou(u, shape, grid, sample)
    out["eikonal"] = float(np.abs(gradient - 1.0).mean())
    return out
