"""`steik evaluate`: one metrics row per reconstructed shape, from its mesh, model and sample file.

The metrics follow the sample's ground truth (`steik.scores`); where the ground truth of a
registry dataset is missing (SRB fetched from its scans alone), the log says so in one line. A
mesh made without a network (screened Poisson, whose sidecar names the method) is scored without
a model: its IoU is then the mesh's own inside test. Networks kept during training
(`snapshots.pt` beside a model) are scored too when asked for (`steik.snapshot_scores`).

The row (`steik.rows`) also carries the identifiers, timings and provenance of training and
extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steik import metrics
from steik.batching import each_shape
from steik.data import shapes2d
from steik.data.registry import REGISTRY
from steik.data.sample import Sample, load_sample
from steik.errors import SteikError
from steik.fileio import sha256_file
from steik.grid import Grid, NonFiniteOutputError
from steik.mesh import read_sidecar, read_surface
from steik.model import ModelRecord, check_model_matches_sample, load_model
from steik.poisson import row_run
from steik.rows import SCAN_COLUMNS, SNAPSHOT_SCHEMA, Run, build_row, write_row, write_rows
from steik.scores import (
    APPLICABLE,
    EvaluationConfig,
    curve_row_metrics,
    network_inside,
    surface_metrics,
)
from steik.snapshot_scores import score_snapshots

log = logging.getLogger(__name__)


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


def _read_mesh_for(sample: Sample, mesh_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices `[V, d]` and cells of the mesh file, checked against the sample's dimension."""
    vertices, cells = read_surface(mesh_path)
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


def model_run(record: ModelRecord) -> Run:
    """What a trained model's metrics row says of its making, from its model file's record."""
    config = record.config
    columns = {
        "method": config.name,
        "seed": record.seed,
        "neuron": config.neuron,
        "structure": config.structure,
        "init": config.init,
        "div": config.div,
        "n_params": record.n_params,
        "iterations": record.iterations,
        "n_points": config.n_manifold + config.n_offsurface,
        "train_seconds": record.train_seconds,
        "ms_per_iter": record.ms_per_iter,
        "n_shapes_batch": record.n_shapes_batch,
        "device": record.device,
        "torch_version": record.torch_version,
        "steik_version": record.steik_version,
        "config_hash": record.config_hash,
        "step": record.step,
    }
    return Run(columns, diverged=record.status == "diverged", message=record.message)


def evaluate(
    mesh_path: str | Path,
    model_path: str | Path | None,
    sample_path: str | Path,
    config: EvaluationConfig | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """The metrics row (a dict with `ROW_COLUMNS` in order) for one extracted shape (`config`:
    the defaults of `EvaluationConfig` when None)."""
    model = None if model_path is None else Path(model_path)
    config = EvaluationConfig() if config is None else config
    return _evaluate(Path(mesh_path), model, Path(sample_path), config, device)[0]


def _evaluate(
    mesh_path: Path,
    model_path: Path | None,
    sample_path: Path,
    config: EvaluationConfig,
    device: torch.device | str,
) -> tuple[dict[str, Any], Sample, Grid]:
    """The row, the sample and the extraction grid. Without a model (`model_path` None) the
    mesh must come from a method without a network (screened Poisson): IoU is then the mesh's
    own inside test."""
    sample = load_sample(sample_path)
    sidecar = read_sidecar(mesh_path)
    vertices, cells = _read_mesh_for(sample, mesh_path)
    grid = Grid(**{k: tuple(v) if k != "spacing" else v for k, v in sidecar["grid"].items()})
    if model_path is None:
        if sidecar.get("method") is None:
            raise SteikError(
                f"mesh {mesh_path} was extracted from a trained network; pass its model with "
                "--model"
            )
        inside = None
        if sample.occ_points is not None and sample.dim == 3 and len(cells):
            inside = metrics.inside_mesh(vertices, cells, sample.occ_points)
        values = surface_metrics(sample, vertices, cells, inside, config)
        return build_row(sample, row_run(sidecar), values, sidecar, len(cells)), sample, grid
    if sidecar.get("method") is not None:
        raise SteikError(
            f"mesh {mesh_path} was made by {sidecar['method']}, not from a network; evaluate it "
            "without --model"
        )
    network, record = load_model(model_path, device)
    check_model_matches_sample(record, sample, model_path, sample_path)
    recorded = sidecar.get("model_sha256")
    if recorded is not None and recorded != sha256_file(model_path):
        raise SteikError(
            f"mesh {mesh_path} was extracted from another version of {sidecar.get('model')}, not "
            f"from {model_path}; run `steik extract` again"
        )
    curve = shapes2d.exact_curve(sample)
    if curve is not None:
        values = curve_row_metrics(network, sample, curve, vertices, cells, grid, config, device)
    else:
        try:
            inside = network_inside(network, sample, config, device)
        except NonFiniteOutputError as error:
            raise SteikError(f"model {model_path}: {error}") from None
        values = surface_metrics(sample, vertices, cells, inside, config)
    return build_row(sample, model_run(record), values, sidecar, len(cells)), sample, grid


def evaluate_batch(
    meshes: Sequence[str | Path],
    models: Sequence[str | Path] | None,
    samples: Sequence[str | Path],
    outs: Sequence[str | Path],
    config: EvaluationConfig | None = None,
    device: torch.device | str = "cpu",
    table: str | Path | None = None,
    snapshot_table: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Evaluate several shapes in one process (a training batch): one row file per shape in
    `outs`, and optionally all rows in `table` and every snapshot's row (from `snapshots.pt`
    beside each model) in `snapshot_table` (written, possibly empty, when asked for). No
    `models` (an empty list): meshes of a method without a network (screened Poisson). `config`:
    the defaults of `EvaluationConfig` when None."""
    config = EvaluationConfig() if config is None else config
    models = list(models) if models else [None] * len(meshes)
    lacking: list[tuple[str, str, tuple[str, ...]]] = []
    snapshot_rows: list[dict[str, Any]] = []

    def one(
        mesh_path: str | Path, model: str | Path | None, sample_path: str | Path, out: str | Path
    ) -> dict[str, Any]:
        """Score one shape and write its row; note its missing ground truth, score its
        snapshots."""
        model_path = None if model is None else Path(model)
        row, sample, grid = _evaluate(
            Path(mesh_path), model_path, Path(sample_path), config, device
        )
        write_row(row, out)
        if missing := missing_metrics(sample):
            lacking.append((sample.dataset, sample.shape, missing))
        snapshots = None if model_path is None else model_path.with_name("snapshots.pt")
        if snapshot_table is not None and snapshots is not None and snapshots.is_file():
            snapshot_rows.extend(
                score_snapshots(snapshots, sample, sample_path, grid, config, device)
            )
        return row

    per_shape = {"--mesh": meshes, "--model": models, "--sample": samples, "--out": outs}
    rows = each_shape(per_shape, one)
    _log_missing_ground_truth(lacking)
    if table is not None:
        write_rows(rows, table)
    if snapshot_table is not None:
        write_rows(snapshot_rows, snapshot_table, SNAPSHOT_SCHEMA)
    return rows
