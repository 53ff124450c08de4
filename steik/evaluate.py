"""`steik evaluate`: one metrics row per trained shape, from its mesh, model and sample file.

Which metrics apply follows the sample's `ground_truth` (SPEC 7):

| ground_truth | metrics |
|---|---|
| `points` (SRB) | chamfer, hausdorff (vs `gt_points`), chamfer_scan, hausdorff_scan |
| `shapenet` | chamfer_sq (G = the input cloud), iou (network sign at `occ_points`) |
| `mesh` (demo, folder meshes) | all of them |
| `none` (scene; SRB from its scans alone) | chamfer_scan, hausdorff_scan |
| SPEC 9 shape (exact curve) | chamfer, hausdorff, iou, eikonal, spurious, corner (see below) |

Every other metric is NaN; where the ground truth of a registry dataset is missing (SRB fetched
from its scans alone), the log says so in one line. IoU is the network's own inside test (u < 0
at the occupancy points mapped into the training frame), not the mesh's, so it is computed even
without a surface.

The 2D shapes of SPEC 9 are scored against their exact curves (the paper's 2D figure, with
numbers): Chamfer and Hausdorff between the extracted zero contour and the curve, IoU and the
eikonal residual mean | |grad u| - 1 | on the extraction's grid over the training domain, the
contour's connected pieces (every one beyond the first is spurious) and the distance from each
polygon corner to the contour (the rounding a divergence term causes). Networks kept during
training (`snapshots.pt`) are scored the same way, without the eikonal residual.

The row also carries the identifiers, timings and provenance of training and extraction.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from steik import mesh, metrics
from steik.data import shapes2d
from steik.data.registry import REGISTRY
from steik.data.sample import Sample, load_sample
from steik.errors import SteikError
from steik.fileio import atomic_path, sha256_file
from steik.model import ModelMeta, check_model_matches_sample, load_model, load_snapshots
from steik.provenance import steik_version
from steik.seeds import check_seed
from steik.tables import (
    CURVE_METRICS,
    ROW_COLUMNS,
    SCAN_COLUMNS,
    SNAPSHOT_COLUMNS,
    SURFACE_METRICS,
)

log = logging.getLogger(__name__)

METRIC_COLUMNS: tuple[str, ...] = (*SURFACE_METRICS, *CURVE_METRICS)

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


def missing_metrics(sample: Sample) -> tuple[str, ...]:
    """Metrics the sample's registry dataset has but this sample cannot give, for want of the
    ground truth its archive holds (SRB fetched from its scans alone: chamfer, hausdorff)."""
    record = REGISTRY.get(sample.dataset)
    if record is None or record.ground_truth not in APPLICABLE:
        return ()
    have = APPLICABLE[sample.ground_truth]
    return tuple(m for m in APPLICABLE[record.ground_truth] if m not in have)


def _log_missing_ground_truth(lacking: Sequence[tuple[str, str, tuple[str, ...]]]) -> None:
    """One log line naming the shapes (dataset, shape, `missing_metrics`) and the metrics left
    NaN for want of ground truth."""
    if not lacking:
        return
    dataset, _, missing = lacking[0]
    columns = ", ".join(SCAN_COLUMNS.get(m, m) for m in missing)
    archives = ", ".join(source.filename for source in REGISTRY[dataset].sources)
    log.info(
        "%s: %s without dense ground truth (scans only): %s are NaN; they need the full "
        "archive %s (`steik fetch %s` without --scans)",
        dataset, ", ".join(shape for _, shape, _ in lacking), columns, archives, dataset,
    )  # fmt: skip


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


def _read_mesh_for(sample: Sample, mesh_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices `[V, d]` and cells of the mesh file, checked against the sample's dimension."""
    vertices, cells = mesh.read_surface(mesh_path)
    if len(cells) == 0:
        return vertices[:, : sample.dim], cells
    expected = 3 if sample.dim == 3 else 2
    if cells.shape[1] != expected:
        kind = "triangle mesh" if cells.shape[1] == 3 else "polyline file"
        raise SteikError(
            f"mesh file {mesh_path} is a {kind} but sample is {sample.dim}D; "
            "pass the mesh extracted for this sample"
        )
    return vertices[:, : sample.dim], cells


# ----------------------------------------------------------------- 2D shapes with exact curves


@functools.lru_cache(maxsize=8)
def _exact_inside(
    shape: str, grid: mesh.Grid, center: tuple[float, ...], scale: float
) -> np.ndarray:
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


def _grid_iou(values: np.ndarray, shape: str, grid: mesh.Grid, sample: Sample) -> float:
    """IoU of the network's inside (u < 0) and the exact inside at the grid points."""
    truth = _exact_inside(shape, grid, tuple(np.asarray(sample.center, float)), float(sample.scale))
    return metrics.iou(values.reshape(grid.shape) < 0, truth)


def curve_row_metrics(
    network: torch.nn.Module,
    sample: Sample,
    shape: str,
    vertices: np.ndarray,
    cells: np.ndarray,
    grid: mesh.Grid,
    config: EvaluationConfig,
    device: torch.device | str,
) -> dict[str, float]:
    """Every metric column of a 2D run against its exact curve (module docstring)."""
    out = dict.fromkeys(METRIC_COLUMNS, math.nan)
    lines = metrics.polylines(vertices, cells)
    out.update(curve_metrics(lines, shape, grid.spacing * sample.scale, config.curve_samples))
    index = np.indices(grid.shape).reshape(grid.dim, -1).T
    points = grid.points(torch.from_numpy(index)).numpy()
    u, gradient = mesh.evaluate_with_gradient(network, points, device, config.chunk)
    out["iou"] = _grid_iou(u, shape, grid, sample)
    out["eikonal"] = float(np.abs(gradient - 1.0).mean())
    return out


def score_snapshots(
    snapshot_path: str | Path,
    sample: Sample,
    sample_path: str | Path,
    grid: mesh.Grid,
    config: EvaluationConfig = EvaluationConfig(),
    device: torch.device | str = "cpu",
) -> list[dict[str, Any]]:
    """Rows (`SNAPSHOT_COLUMNS`) scoring every network of a snapshot file like a final model
    (`seconds`: training seconds per shape spent to reach it): 2D against the sample's exact
    curve on `grid` (the final model's extraction grid), 3D by marching cubes of the same box at
    `config.snapshot_resolution` against the ground truth."""
    networks, meta = load_snapshots(snapshot_path)
    check_model_matches_sample(meta, sample, snapshot_path, sample_path)
    shape = shapes2d.exact_curve(sample)
    if shape is None and sample.dim == 2:
        raise SteikError(
            f"{snapshot_path}: 2D snapshots are scored against an exact curve; {sample_path} has "
            "none (only the demo2d shapes do)"
        )
    if shape is None:
        grid = mesh.grid_for_points(sample.points, config.snapshot_resolution)
    iterations = int(meta["config"]["iterations"])
    # Training seconds per shape: a batch of K shapes spends its step time on all K.
    per_shape = max(1, int(meta.get("n_shapes_batch", 1)))
    seconds = [t / per_shape for t in meta.get("seconds") or [math.nan] * len(networks)]
    rows = []
    kept = zip(networks, meta["iterations"], meta["w_div"], seconds, strict=True)
    for network, iteration, weight, elapsed in kept:
        if shape is not None:
            scores = _curve_snapshot_scores(network.to(device), sample, shape, grid, config, device)
        else:
            scores = _surface_snapshot_scores(network.to(device), sample, grid, config, device)
        row = {
            "dataset": sample.dataset,
            "shape": sample.shape,
            "method": str(meta["config"]["name"]),
            "seed": int(meta["seed"]),
            "fraction": iteration / iterations,
            "iteration": int(iteration),
            "w_div": float(weight),
            "seconds": float(elapsed),
            **scores,
        }
        rows.append({column: row.get(column, math.nan) for column in SNAPSHOT_COLUMNS})
    return rows


def _curve_snapshot_scores(
    network: torch.nn.Module,
    sample: Sample,
    shape: str,
    grid: mesh.Grid,
    config: EvaluationConfig,
    device: torch.device | str,
) -> dict[str, float]:
    """A 2D snapshot's curve measures and grid IoU against the exact curve."""
    values = mesh.evaluate_grid(network, grid, device, config.chunk)
    vertices, cells = mesh.contour_2d(values, grid, sample.center, sample.scale)
    scores = curve_metrics(
        metrics.polylines(vertices, cells), shape, grid.spacing * sample.scale, config.curve_samples
    )
    scores["iou"] = _grid_iou(values, shape, grid, sample)
    return scores


def _surface_snapshot_scores(
    network: torch.nn.Module,
    sample: Sample,
    grid: mesh.Grid,
    config: EvaluationConfig,
    device: torch.device | str,
) -> dict[str, float]:
    """A 3D snapshot's surface metrics (Chamfer, IoU, pieces) from its zero level set on `grid`."""
    values = mesh.evaluate_grid(network, grid, device, config.chunk)
    vertices, cells = mesh.marching_cubes(values, grid, sample.center, sample.scale)
    inside = _network_inside(network, sample, config, device)
    return surface_metrics(sample, vertices, cells, inside, config)


def _network_inside(
    network: torch.nn.Module, sample: Sample, config: EvaluationConfig, device: torch.device | str
) -> np.ndarray | None:
    """bool `[Q]`: where the network is negative at the sample's IoU points (None without them)."""
    if sample.occ_points is None:
        return None
    local = sample.to_normalised(sample.occ_points).astype(np.float32)
    return mesh.evaluate_points(network, local, device, config.chunk) < 0


# ----------------------------------------------------------------- one row


def _row(
    sample: Sample, meta: ModelMeta, record: dict[str, Any], values: dict[str, float], n_cells: int
) -> dict[str, Any]:
    """The metrics row (`ROW_COLUMNS`) of one run from its parts."""
    config = dict(meta.get("config", {}))
    status = "ok"
    if meta.get("status") == "diverged":
        status = "diverged"
    elif record["status"] == "no_surface" or n_cells == 0:
        status = "no_surface"
    messages = [str(meta.get("message") or ""), str(record.get("message") or "")]
    row: dict[str, Any] = {
        "dataset": sample.dataset,
        "shape": sample.shape,
        "method": str(config.get("name", "")),
        "seed": int(meta.get("seed", 0)),
        "neuron": str(config.get("neuron", "")),
        "structure": meta.get("structure") or f"{config.get('layers')} x {config.get('hidden')}",
        "init": str(config.get("init", "")),
        "div": str(config.get("div", "")),
        "n_params": int(meta.get("n_params", 0)),
        "iterations": int(meta.get("iterations", 0)),
        "n_points": int(config.get("n_manifold", 0)) + int(config.get("n_offsurface", 0)),
        **values,
        "train_seconds": float(meta.get("train_seconds", math.nan)),
        "ms_per_iter": float(meta.get("ms_per_iter", math.nan)),
        "n_shapes_batch": int(meta.get("n_shapes_batch", 1)),
        "extract_seconds": float(record["extract_seconds"]),
        "device": str(meta.get("device", "")),
        "step": meta.get("step"),
        "torch_version": str(meta.get("torch_version", "")),
        "steik_version": str(meta.get("steik_version", "")),
        "config_hash": str(meta.get("config_hash", "")),
        "source": sample.source,
        "status": status,
        "message": "; ".join(m for m in messages if m),
    }
    return {column: row[column] for column in ROW_COLUMNS}


def evaluate(
    mesh_path: str | Path,
    model_path: str | Path | None,
    sample_path: str | Path,
    config: EvaluationConfig = EvaluationConfig(),
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """The metrics row (a dict with `ROW_COLUMNS` in order) for one extracted shape."""
    model = None if model_path is None else Path(model_path)
    return _evaluate(Path(mesh_path), model, Path(sample_path), config, device)[0]


def _evaluate(
    mesh_path: Path,
    model_path: Path | None,
    sample_path: Path,
    config: EvaluationConfig,
    device: torch.device | str,
) -> tuple[dict[str, Any], Sample, mesh.Grid | None]:
    """The row, the sample and the extraction grid. Without a model (`model_path` None) the
    mesh must come from a method without a network (screened Poisson): IoU is then the mesh's
    own inside test."""
    sample = load_sample(sample_path)
    record = mesh.read_sidecar(mesh_path)
    vertices, cells = _read_mesh_for(sample, mesh_path)
    grid = mesh.Grid(**{k: tuple(v) if k != "spacing" else v for k, v in record["grid"].items()})
    if model_path is None:
        return (
            _evaluate_without_model(sample, record, vertices, cells, config, mesh_path),
            sample,
            grid,
        )
    if record.get("method") is not None:
        raise SteikError(
            f"mesh {mesh_path} was made by {record['method']}, not from a network; evaluate it "
            "without --model"
        )
    network, meta = load_model(model_path, device)
    check_model_matches_sample(meta, sample, model_path, sample_path)
    recorded = record.get("model_sha256")
    if recorded is not None and recorded != sha256_file(model_path):
        raise SteikError(
            f"mesh {mesh_path} was extracted from another version of {record.get('model')}, not "
            f"from {model_path}; run `steik extract` again"
        )
    curve = shapes2d.exact_curve(sample)
    if curve is not None:
        values = curve_row_metrics(network, sample, curve, vertices, cells, grid, config, device)
    else:
        inside = None
        if sample.occ_points is not None:
            local = sample.to_normalised(sample.occ_points).astype(np.float32)
            try:
                u = mesh.evaluate_points(network, local, device, config.chunk)
            except mesh.NonFiniteOutputError as error:
                raise SteikError(f"model {model_path}: {error}") from None
            inside = u < 0
        values = surface_metrics(sample, vertices, cells, inside, config)
    return _row(sample, meta, record, values, len(cells)), sample, grid


def _evaluate_without_model(
    sample: Sample,
    record: dict[str, Any],
    vertices: np.ndarray,
    cells: np.ndarray,
    config: EvaluationConfig,
    mesh_path: Path,
) -> dict[str, Any]:
    """The row of a reconstruction made without a network (the sidecar names its method)."""
    method = record.get("method")
    if method is None:
        raise SteikError(
            f"mesh {mesh_path} was extracted from a trained network; pass its model with --model"
        )
    inside = None
    if sample.occ_points is not None and sample.dim == 3 and len(cells):
        inside = metrics.inside_mesh(vertices, cells, sample.occ_points)
    values = surface_metrics(sample, vertices, cells, inside, config)
    settings = record.get(method, {})
    meta = {
        "config": {"name": method},
        "structure": f"depth {settings['depth']}" if "depth" in settings else "",
        "iterations": 0,
        "n_params": 0,
        "train_seconds": 0.0,
        "ms_per_iter": math.nan,
        "device": "cpu",
        "torch_version": "",
        "steik_version": steik_version(),
        "config_hash": "",
        "message": record.get("library", ""),
    }
    return _row(sample, meta, record, values, len(cells))


def write_rows(rows: Sequence[dict[str, Any]], out: str | Path, columns=ROW_COLUMNS) -> Path:
    """Write rows as a Parquet file (atomically), in `columns` order, metrics as float64."""
    out = Path(out)
    if out.suffix != ".parquet":
        raise SteikError(f"metrics output {out} must end in .parquet")
    frame = pd.DataFrame(list(rows), columns=list(columns))
    for column in (*METRIC_COLUMNS, "fraction", "w_div", "seconds"):
        if column in frame.columns:
            frame[column] = frame[column].astype(np.float64)
    with atomic_path(out) as tmp:
        frame.to_parquet(tmp, index=False)
    return out


def write_row(row: dict[str, Any], out: str | Path) -> Path:
    """Write one row as a Parquet file (atomically), columns in `ROW_COLUMNS` order."""
    return write_rows([row], out)


def evaluate_batch(
    meshes: Sequence[str | Path],
    models: Sequence[str | Path] | None,
    samples: Sequence[str | Path],
    outs: Sequence[str | Path],
    config: EvaluationConfig = EvaluationConfig(),
    device: torch.device | str = "cpu",
    table: str | Path | None = None,
    snapshot_table: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Evaluate several shapes in one process (a training batch): one row file per shape in
    `outs`, and optionally all rows in `table` and every snapshot's row (from `snapshots.pt`
    beside each model) in `snapshot_table` (written, possibly empty, when asked for). No
    `models` (an empty list): meshes of a method without a network (screened Poisson)."""
    models = list(models) if models else [None] * len(meshes)
    counts = {len(meshes), len(models), len(samples), len(outs)}
    if len(counts) != 1:
        raise SteikError(
            f"--mesh, --model, --sample and --out need one entry per shape each; got "
            f"{len(meshes)}, {len(models)}, {len(samples)}, {len(outs)}"
        )
    rows, snapshot_rows, lacking = [], [], []
    for mesh_path, model_path, sample_path, out in zip(meshes, models, samples, outs, strict=True):
        model = None if model_path is None else Path(model_path)
        row, sample, grid = _evaluate(Path(mesh_path), model, Path(sample_path), config, device)
        write_row(row, out)
        rows.append(row)
        if missing := missing_metrics(sample):
            lacking.append((sample.dataset, sample.shape, missing))
        snapshots = None if model is None else model.with_name("snapshots.pt")
        if snapshot_table is not None and snapshots is not None and snapshots.is_file():
            snapshot_rows += score_snapshots(snapshots, sample, sample_path, grid, config, device)
    _log_missing_ground_truth(lacking)
    if table is not None:
        write_rows(rows, table)
    if snapshot_table is not None:
        write_rows(snapshot_rows, snapshot_table, SNAPSHOT_COLUMNS)
    return rows
