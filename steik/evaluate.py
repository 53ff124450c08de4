"""`steik evaluate`: one metrics row per trained shape, from its mesh, model and sample file.

Which metrics apply follows the sample's `ground_truth` (SPEC 7):

| ground_truth | metrics |
|---|---|
| `points` (SRB) | chamfer, hausdorff (vs `gt_points`), chamfer_scan, hausdorff_scan |
| `shapenet` | chamfer_sq (G = the input cloud), iou (network sign at `occ_points`) |
| `mesh` (demo, folder meshes, 2D curves) | all of them |
| `none` (scene) | chamfer_scan, hausdorff_scan |

Every other metric is NaN. IoU is the network's own inside test (u < 0 at the occupancy points
mapped into the training frame), not the mesh's, so it is computed even without a surface.
The row also carries the identifiers, timings and provenance of training and extraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from steik import mesh, metrics
from steik.data.sample import Sample, load_sample
from steik.errors import SteikError
from steik.fileio import atomic_path, sha256_file

ROW_COLUMNS: tuple[str, ...] = (
    "dataset", "shape", "method", "seed", "neuron", "structure", "init", "div", "n_params",
    "iterations", "n_points", "chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan",
    "chamfer_sq", "iou", "chamfer_l1", "normal_consistency", "fscore", "train_seconds",
    "ms_per_iter", "extract_seconds", "device", "torch_version", "steik_version", "config_hash",
    "status", "message",
)  # fmt: skip
"""The metrics-row columns, in order (DESIGN 2)."""

METRIC_COLUMNS: tuple[str, ...] = (
    "chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan", "chamfer_sq", "iou", "chamfer_l1",
    "normal_consistency", "fscore",
)  # fmt: skip

APPLICABLE: dict[str, tuple[str, ...]] = {
    "points": ("chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan"),
    "shapenet": ("chamfer_sq", "iou"),
    "mesh": METRIC_COLUMNS,
    "none": ("chamfer_scan", "hausdorff_scan"),
}
"""Metrics reported for each kind of ground truth; the rest are NaN."""

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

    def __post_init__(self) -> None:
        if self.n_samples is not None and self.n_samples < 1:
            raise SteikError(f"--n-samples must be positive, got {self.n_samples}")
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


def _structure(config: dict[str, Any]) -> str:
    """`L x h` as the paper writes it."""
    return f"{config.get('layers')} x {config.get('hidden')}"


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


def evaluate(
    mesh_path: str | Path,
    model_path: str | Path,
    sample_path: str | Path,
    config: EvaluationConfig = EvaluationConfig(),
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """The metrics row (a dict with `ROW_COLUMNS` in order) for one extracted shape."""
    from steik.train import load_model

    mesh_path, model_path, sample_path = Path(mesh_path), Path(model_path), Path(sample_path)
    sample = load_sample(sample_path)
    network, meta = load_model(model_path, device)
    mesh.check_model_matches_sample(meta, sample, model_path, sample_path)
    record = mesh.read_sidecar(mesh_path)
    recorded = record.get("model_sha256")
    if recorded is not None and recorded != sha256_file(model_path):
        raise SteikError(
            f"mesh {mesh_path} was extracted from another version of {record.get('model')}, not "
            f"from {model_path}; run `steik extract` again"
        )
    vertices, cells = _read_mesh_for(sample, mesh_path)
    inside = None
    if sample.occ_points is not None:
        local = sample.to_normalised(sample.occ_points).astype(np.float32)
        try:
            u = mesh.evaluate_points(network, local, device, config.chunk)
        except mesh.NonFiniteOutputError as error:
            raise SteikError(f"model {model_path}: {error}") from None
        inside = u < 0
    values = surface_metrics(sample, vertices, cells, inside, config)

    model_config = dict(meta.get("config", {}))
    status = "ok"
    messages = [str(meta.get("message") or "")]
    if meta.get("status") == "diverged":
        status = "diverged"
    elif record["status"] == "no_surface" or len(cells) == 0:
        status = "no_surface"
    if record.get("message"):
        messages.append(str(record["message"]))
    row: dict[str, Any] = {
        "dataset": sample.dataset,
        "shape": sample.shape,
        "method": str(model_config.get("name", "")),
        "seed": int(meta.get("seed", 0)),
        "neuron": str(model_config.get("neuron", "")),
        "structure": _structure(model_config),
        "init": str(model_config.get("init", "")),
        "div": str(model_config.get("div", "")),
        "n_params": int(meta.get("n_params", 0)),
        "iterations": int(meta.get("iterations", 0)),
        "n_points": int(model_config.get("n_manifold", 0))
        + int(model_config.get("n_offsurface", 0)),
        **values,
        "train_seconds": float(meta.get("train_seconds", math.nan)),
        "ms_per_iter": float(meta.get("ms_per_iter", math.nan)),
        "extract_seconds": float(record["extract_seconds"]),
        "device": str(meta.get("device", "")),
        "torch_version": str(meta.get("torch_version", "")),
        "steik_version": str(meta.get("steik_version", "")),
        "config_hash": str(meta.get("config_hash", "")),
        "status": status,
        "message": "; ".join(m for m in messages if m),
    }
    return {column: row[column] for column in ROW_COLUMNS}


def write_row(row: dict[str, Any], out: str | Path) -> Path:
    """Write one row as a Parquet file (atomically), columns in `ROW_COLUMNS` order."""
    out = Path(out)
    if out.suffix != ".parquet":
        raise SteikError(f"metrics output {out} must end in .parquet")
    frame = pd.DataFrame([row], columns=list(ROW_COLUMNS))
    for column in METRIC_COLUMNS:
        frame[column] = frame[column].astype(np.float64)
    with atomic_path(out) as tmp:
        frame.to_parquet(tmp, index=False)
    return out
