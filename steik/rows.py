"""Metrics rows: the one schema of the row `steik evaluate` writes per reconstructed shape (and of
the snapshot row per network kept during training), building a row, writing and reading rows.

A row's columns each have a role: identifiers (which run), setup (what was trained: network,
budget, batch), metrics (SPEC 7's surface metrics and the 2D curve measures; NaN where one does
not apply), timings, provenance (device, versions, input file) and status. `ROW_SCHEMA` lists
them in file order, with their dtypes; the column lists the other stages use (`ROW_COLUMNS`,
`TIMINGS`, `METRICS`) are derived from it, so adding a column is one line of the schema (plus
the value its producer passes to `build_row`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from steik.data.sample import Sample
from steik.errors import SteikError
from steik.fileio import atomic_path

IDENTIFIER, SETUP, METRIC, TIMING, PROVENANCE, STATUS = (
    "identifier", "setup", "metric", "timing", "provenance", "status",
)  # fmt: skip
"""The roles of a column."""


@dataclass(frozen=True)
class Column:
    """One column of a row file."""

    name: str
    role: str
    dtype: str
    """`float64` (cast so when written: a column of NaN stays numeric), `int64` or `str`."""


SURFACE_METRICS: tuple[str, ...] = (
    "chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan", "chamfer_sq", "iou", "chamfer_l1",
    "normal_consistency", "fscore",
)  # fmt: skip
"""Metrics of a reconstructed surface (SPEC 7; NaN where one does not apply)."""
CURVE_METRICS: tuple[str, ...] = (
    "eikonal", "n_components", "spurious", "corner", "corner_convex", "corner_concave",
)  # fmt: skip
"""Measures of a 2D zero contour against an exact curve (`steik.metrics`, plane curves);
`n_components` also counts the pieces of a 3D mesh."""
METRIC_COLUMNS: tuple[str, ...] = (*SURFACE_METRICS, *CURVE_METRICS)
"""Every metric column of a row, in order."""


def _metrics(metric_names: Sequence[str]) -> tuple[Column, ...]:
    """The float64 metric columns of these names."""
    return tuple(Column(name, METRIC, "float64") for name in metric_names)


RUN_IDENTIFIERS: tuple[Column, ...] = (
    Column("dataset", IDENTIFIER, "str"),
    Column("shape", IDENTIFIER, "str"),
    Column("method", IDENTIFIER, "str"),
    Column("seed", IDENTIFIER, "int64"),
)
"""Which run a row belongs to: the first columns of every row file."""

ROW_SCHEMA: tuple[Column, ...] = (
    *RUN_IDENTIFIERS,
    Column("neuron", SETUP, "str"),
    Column("structure", SETUP, "str"),
    Column("init", SETUP, "str"),
    Column("div", SETUP, "str"),
    Column("n_params", SETUP, "int64"),
    Column("iterations", SETUP, "int64"),
    Column("n_points", SETUP, "int64"),
    *_metrics(METRIC_COLUMNS),
    Column("train_seconds", TIMING, "float64"),
    Column("ms_per_iter", TIMING, "float64"),
    Column("n_shapes_batch", SETUP, "int64"),
    Column("extract_seconds", TIMING, "float64"),
    Column("device", PROVENANCE, "str"),
    Column("torch_version", PROVENANCE, "str"),
    Column("steik_version", PROVENANCE, "str"),
    Column("config_hash", PROVENANCE, "str"),
    Column("source", PROVENANCE, "str"),
    Column("status", STATUS, "str"),
    Column("message", STATUS, "str"),
    Column("step", PROVENANCE, "str"),
)
"""Columns of a metrics row (DESIGN 2, plus the 2D curve measures, the training batch size and
the shape's input file), in order. `status` is `ok`, `diverged` (training) or `no_surface`.
`step`: the derivative path training took (explicit, compiled or autograd; None without a
network, as for screened Poisson, and for model files older than it)."""

ADDED_LATER: tuple[str, ...] = ("step",)
"""Columns that rows written by earlier versions lack; read back as missing values."""

SNAPSHOT_METRICS: tuple[str, ...] = (
    "chamfer", "hausdorff", "chamfer_scan", "iou", "n_components", "spurious", "corner",
    "corner_convex", "corner_concave",
)  # fmt: skip
"""The metrics of a network kept during training (no eikonal residual, scan-side Chamfer only)."""

SNAPSHOT_SCHEMA: tuple[Column, ...] = (
    *RUN_IDENTIFIERS,
    Column("fraction", IDENTIFIER, "float64"),
    Column("iteration", IDENTIFIER, "int64"),
    Column("w_div", SETUP, "float64"),
    Column("seconds", TIMING, "float64"),
    *_metrics(SNAPSHOT_METRICS),
)
"""Columns of a snapshot row: one network kept during training (`fraction` of the run's
iterations, `seconds`: training seconds spent to reach it), scored like a final one."""


def names(schema: Sequence[Column], *roles: str) -> tuple[str, ...]:
    """The names of `schema`'s columns (of those `roles` only, when given), in order."""
    return tuple(c.name for c in schema if not roles or c.role in roles)


ROW_COLUMNS: tuple[str, ...] = names(ROW_SCHEMA)
SNAPSHOT_COLUMNS: tuple[str, ...] = names(SNAPSHOT_SCHEMA)
TIMINGS: tuple[str, ...] = names(ROW_SCHEMA, TIMING)
METRICS: tuple[str, ...] = names(ROW_SCHEMA, METRIC, TIMING)
"""Numeric columns of a row that the tables summarise."""

SCAN_COLUMNS: dict[str, str] = {
    "chamfer": "d_C",
    "hausdorff": "d_H",
    "chamfer_scan": "d_C->",
    "hausdorff_scan": "d_H->",
}
"""The scan metrics' symbols (SPEC 8, Table 1 headings): metric -> symbol."""


@dataclass(frozen=True)
class Run:
    """What made a reconstruction, as its row reports it: a trained model, or a method without
    a network (screened Poisson), each filling these in from its own record."""

    columns: Mapping[str, Any]
    """The row's identifiers, setup, training timings and provenance that the method knows
    (every column except dataset, shape, source, the metrics, extract_seconds and status)."""
    diverged: bool
    """Training ended with non-finite losses or gradients (status `diverged`)."""
    message: str
    """Said about the run in the row's message (empty for nothing)."""


def build_row(
    sample: Sample,
    run: Run,
    metrics: Mapping[str, float],
    extraction: Mapping[str, Any],
    n_cells: int,
) -> dict[str, Any]:
    """The metrics row (`ROW_COLUMNS` in order) of one reconstruction: the sample's identifiers
    and input file, the run's columns, `metrics` (every metric column) and, from the mesh's
    `extraction` record (its sidecar), its seconds, status and message. A run that diverged has
    status `diverged`; else a mesh that the extraction found no surface for, or that has no
    cells (`n_cells` 0), has `no_surface`."""
    status = "ok"
    if run.diverged:
        status = "diverged"
    elif extraction["status"] == "no_surface" or n_cells == 0:
        status = "no_surface"
    messages = [run.message, str(extraction.get("message") or "")]
    row: dict[str, Any] = {
        "dataset": sample.dataset,
        "shape": sample.shape,
        **run.columns,
        **metrics,
        "extract_seconds": float(extraction["extract_seconds"]),
        "source": sample.source,
        "status": status,
        "message": "; ".join(m for m in messages if m),
    }
    missing = [c for c in ROW_COLUMNS if c not in row]
    unknown = [c for c in row if c not in ROW_COLUMNS]
    if missing or unknown:
        raise ValueError(f"row columns missing: {missing}, not in the schema: {unknown}")
    return {column: row[column] for column in ROW_COLUMNS}


def snapshot_row(values: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot row (`SNAPSHOT_COLUMNS` in order) from `values`; a metric not among them (a
    measure of the other dimension) is NaN."""
    return {column: values.get(column, math.nan) for column in SNAPSHOT_COLUMNS}


def write_rows(
    rows: Sequence[Mapping[str, Any]], out: str | Path, schema: Sequence[Column] = ROW_SCHEMA
) -> Path:
    """Write rows as a Parquet file (atomically), in `schema` order, its float columns as
    float64."""
    out = Path(out)
    if out.suffix != ".parquet":
        raise SteikError(f"metrics output {out} must end in .parquet")
    frame = pd.DataFrame(list(rows), columns=list(names(schema)))
    for column in schema:
        if column.dtype == "float64":
            frame[column.name] = frame[column.name].astype(np.float64)
    with atomic_path(out) as tmp:
        frame.to_parquet(tmp, index=False)
    return out


def write_row(row: Mapping[str, Any], out: str | Path) -> Path:
    """Write one metrics row as a Parquet file (atomically), columns in `ROW_COLUMNS` order."""
    return write_rows([row], out)


def read_rows(paths: Sequence[str | Path], columns: Sequence[str], what: str) -> pd.DataFrame:
    """Every row of the Parquet files `paths` in one frame with `columns` (files hold one run's
    row, or a training batch's rows); a file that is unreadable or lacks a column is refused."""
    if not paths:
        raise SteikError(f"no {what} files given")
    frames = []
    for path in paths:
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise SteikError(f"{path}: unreadable {what} file ({error}); make it again") from None
        for name in ADDED_LATER:
            if name in columns and name not in frame.columns:
                frame[name] = None
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise SteikError(
                f"{path}: {what} rows lack column(s) {', '.join(missing)}; make it again "
                "(`steik evaluate`, then `steik tables`)"
            )
        frames.append(frame[list(columns)])
    return pd.concat(frames, ignore_index=True)
