"""Scores of the networks kept during training (`snapshots.pt`): one snapshot row each.

Every snapshot is scored like a final model, without the eikonal residual: a 2D network against
its shape's exact curve on the final model's extraction grid, a 3D one by marching cubes of the
same box at `EvaluationConfig.snapshot_resolution` (coarser than the final extraction: a run
keeps several snapshots and each costs a grid) against the ground truth. Its row carries the
fraction of training it was kept at, the divergence weight then in force and the training
seconds per shape spent to reach it (what a quality-per-compute curve plots).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from steik import metrics
from steik.data import shapes2d
from steik.data.sample import Sample
from steik.errors import SteikError
from steik.grid import Grid, evaluate_grid, grid_for_points
from steik.mesh import contour_2d, marching_cubes
from steik.model import check_model_matches_sample, load_snapshots
from steik.rows import snapshot_row
from steik.scores import (
    EvaluationConfig,
    curve_metrics,
    grid_iou,
    network_inside,
    surface_metrics,
)


def score_snapshots(
    snapshot_path: str | Path,
    sample: Sample,
    sample_path: str | Path,
    grid: Grid,
    config: EvaluationConfig,
    device: torch.device | str,
) -> list[dict[str, Any]]:
    """Rows (`SNAPSHOT_COLUMNS`) scoring every network of a snapshot file (module docstring);
    `grid` is the final model's extraction grid, used for 2D snapshots."""
    networks, snapshots = load_snapshots(snapshot_path)
    check_model_matches_sample(snapshots, sample, snapshot_path, sample_path)
    shape = shapes2d.exact_curve(sample)
    if shape is None and sample.dim == 2:
        raise SteikError(
            f"{snapshot_path}: 2D snapshots are scored against an exact curve; {sample_path} has "
            "none (only the demo2d shapes do)"
        )
    if shape is None:
        grid = grid_for_points(sample.points, config.snapshot_resolution)
    # Training seconds per shape: a batch of K shapes spends its step time on all K.
    per_shape = max(1, snapshots.n_shapes_batch)
    kept = zip(networks, snapshots.iterations, snapshots.w_div, snapshots.seconds, strict=True)
    rows = []
    for network, iteration, weight, elapsed in kept:
        scores = _snapshot_scores(network.to(device), sample, shape, grid, config, device)
        rows.append(snapshot_row({
            "dataset": sample.dataset,
            "shape": sample.shape,
            "method": snapshots.config.name,
            "seed": snapshots.seed,
            "fraction": iteration / snapshots.config.iterations,
            "iteration": iteration,
            "w_div": weight,
            "seconds": elapsed / per_shape,
            **scores,
        }))  # fmt: skip
    return rows


def _snapshot_scores(
    network: torch.nn.Module,
    sample: Sample,
    shape: str | None,
    grid: Grid,
    config: EvaluationConfig,
    device: torch.device | str,
) -> dict[str, float]:
    """One snapshot's metrics from its zero level set on `grid`: with an exact curve `shape`
    (2D) the curve measures and the grid IoU, else the surface metrics (Chamfer, IoU, pieces)."""
    values = evaluate_grid(network, grid, device, config.chunk)
    if shape is None:
        vertices, cells = marching_cubes(values, grid, sample.center, sample.scale)
        inside = network_inside(network, sample, config, device)
        return surface_metrics(sample, vertices, cells, inside, config)
    vertices, cells = contour_2d(values, grid, sample.center, sample.scale)
    lines = metrics.polylines(vertices, cells)
    scores = curve_metrics(lines, shape, grid.spacing * sample.scale, config.curve_samples)
    scores["iou"] = grid_iou(values, shape, grid, sample)
    return scores
