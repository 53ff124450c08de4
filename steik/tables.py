"""Metrics rows: their columns, their aggregation into Parquet tables, the paper's layouts.

`steik evaluate` writes one row per trained model (`ROW_COLUMNS`, the one definition of the
row); this module gathers a dataset's rows (`<dataset>.parquet`), summarises them
(`<dataset>_summary.parquet`: mean, median and standard deviation of every metric, shape, run
and failure counts; per method, and per method and shape for 2D curve datasets) and renders
them in the layouts of the paper (SPEC 8): Table 1 (d_C, d_H, d_C->, d_H->) for scan datasets,
Table 2 (squared Chamfer and IoU, mean / median / std) for ShapeNet-like datasets, Table 3 (time
per iteration, structure, parameters) for the runtime table, and for the 2D shapes of SPEC 9
one table per shape (mean ± std over seeds, the corner and spurious-piece measures) plus the
snapshots taken during training. The paper's numbers are kept apart: they appear only in the
Markdown / HTML renderings, in rows whose `source` is `paper`.

Conventions: statistics skip NaN (a metric that does not apply, or a run without a surface);
`std` is the population standard deviation (ddof = 0, numpy's default, as in the reference
evaluation scripts); a run is a failure when its `status` is not `ok`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from steik.data.registry import PAPER_TABLES
from steik.errors import SteikError
from steik.fileio import atomic_path
from steik.methods import method_label

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
CURVE_ONLY: tuple[str, ...] = tuple(m for m in CURVE_METRICS if m != "n_components")
"""The measures only a 2D curve dataset has: their presence selects the per-shape 2D layout."""
TIMINGS: tuple[str, ...] = ("train_seconds", "ms_per_iter", "extract_seconds")

ROW_COLUMNS: tuple[str, ...] = (
    "dataset", "shape", "method", "seed", "neuron", "structure", "init", "div", "n_params",
    "iterations", "n_points", *SURFACE_METRICS, *CURVE_METRICS, "train_seconds", "ms_per_iter",
    "n_shapes_batch", "extract_seconds", "device", "torch_version", "steik_version", "config_hash",
    "source", "status", "message", "step",
)  # fmt: skip
"""Columns of a metrics row (DESIGN 2, plus the 2D curve measures, the training batch size and
the shape's input file), in order. `step`: the derivative path training took (explicit, compiled
or autograd; None without a network, screened Poisson, and for model files older than it)."""

METRICS: tuple[str, ...] = (*SURFACE_METRICS, *CURVE_METRICS, *TIMINGS)
"""Numeric columns summarised."""

SNAPSHOT_COLUMNS: tuple[str, ...] = (
    "dataset", "shape", "method", "seed", "fraction", "iteration", "w_div", "seconds", "chamfer",
    "hausdorff", "chamfer_scan", "iou", "n_components", "spurious", "corner", "corner_convex",
    "corner_concave",
)  # fmt: skip
"""Columns of a snapshot row: one network kept during training (`seconds`: training seconds
spent to reach it), scored like a final one."""

STATISTICS: tuple[str, ...] = ("mean", "median", "std")

SCAN_COLUMNS: dict[str, str] = {
    "chamfer": "d_C",
    "hausdorff": "d_H",
    "chamfer_scan": "d_C->",
    "hausdorff_scan": "d_H->",
}
"""Table 1: metric -> column heading."""

SHAPENET_COLUMNS: dict[str, str] = {"chamfer_sq": "sq. Chamfer", "iou": "IoU"}
"""Table 2: metric -> column heading (each with mean, median, std)."""

EXTRA_COLUMNS: dict[str, str] = {
    "chamfer_l1": "Chamfer-L1",
    "normal_consistency": "normal consistency",
    "fscore": "F-score",
}
"""Beyond the paper (Occupancy Networks conventions): metric -> column heading."""

# SPEC 8, Table 1 (SRB): method label -> (d_C, d_H, d_C->, d_H->).
PAPER_TABLE1: dict[str, tuple[float, float, float, float]] = {
    "IGR wo n": (1.38, 16.33, 0.25, 2.96),
    "SIREN wo n": (0.42, 7.67, 0.08, 1.42),
    "SAL": (0.36, 7.47, 0.13, 3.50),
    "IGR+FF": (0.96, 11.06, 0.32, 4.75),
    "PHASE+FF": (0.22, 4.96, 0.07, 1.56),
    "DiGS": (0.19, 3.52, 0.08, 1.47),
    "StEik": (0.180, 2.800, 0.096, 1.454),
}

# SPEC 8, Table 2 (ShapeNet): label -> (sq. Chamfer mean, median, std, IoU mean, median, std).
PAPER_TABLE2: dict[str, tuple[float, float, float, float, float, float]] = {
    "SIREN wo n": (3.08e-4, 2.58e-4, 3.26e-4, 0.3085, 0.2952, 0.2014),
    "SAL": (1.14e-3, 2.11e-4, 3.63e-3, 0.4030, 0.3944, 0.2722),
    "DiGS": (1.32e-4, 2.55e-5, 4.73e-4, 0.9390, 0.9764, 0.1262),
    "Lin + L_L.n.": (1.71e-4, 1.23e-5, 1.20e-3, 0.9586, 0.9809, 0.0993),
    "Qua + L_div": (5.45e-5, 1.05e-5, 3.60e-4, 0.9593, 0.9852, 0.1130),
    "StEik": (6.86e-5, 6.33e-6, 3.34e-4, 0.9671, 0.9841, 0.0878),
}

# SPEC 8, Table 3 (paper's GPU, 15,000 + 15,000 points): (label, structure, ms, parameters).
PAPER_TABLE3: tuple[tuple[str, str, float, str], ...] = (
    ("DiGS", "5 x 256", 37.86, "0.26M"),
    ("Lin + L_L.n.", "5 x 256", 32.52, "0.26M"),
    ("Qua + L_div", "5 x 128", 50.92, "0.20M"),
    ("StEik", "5 x 128", 42.20, "0.20M"),
    ("DiGS", "8 x 512", 63.28, "1.84M"),
    ("Lin + L_L.n.", "8 x 512", 50.90, "1.84M"),
    ("Qua + L_div", "8 x 256", 100.27, "1.39M"),
    ("StEik", "8 x 256", 80.62, "1.39M"),
)


# ------------------------------------------------------------------ reading and aggregating


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
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise SteikError(
                f"{path}: {what} rows lack column(s) {', '.join(missing)}; make it again "
                "(`steik evaluate`, then `steik tables`)"
            )
        frames.append(frame[list(columns)])
    return pd.concat(frames, ignore_index=True)


def read_metrics(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Every metrics row of `paths` in one frame, columns in `ROW_COLUMNS` order, sorted by
    method (first appearance), shape and seed so the table does not depend on file order."""
    if not paths:
        raise SteikError("no metrics files given; pass --metrics FILE [FILE ...]")
    rows = read_rows(paths, ROW_COLUMNS, "metrics")
    if rows.empty:
        raise SteikError(f"the metrics files ({paths[0]}, ...) hold no rows; run `steik evaluate`")
    duplicated = rows.duplicated(["dataset", "method", "shape", "seed"])
    if duplicated.any():
        first = rows[duplicated].iloc[0]
        raise SteikError(
            f"two metrics rows for dataset {first['dataset']}, method {first['method']}, shape "
            f"{first['shape']}, seed {first['seed']}; pass each run's metrics once"
        )
    order = {m: i for i, m in enumerate(dict.fromkeys(rows["method"]))}
    rows = rows.sort_values(
        ["method", "shape", "seed"], key=lambda c: c.map(order) if c.name == "method" else c
    )
    for column in METRICS:
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype("float64")
    return rows.reset_index(drop=True)


def summarize(
    rows: pd.DataFrame, by: Sequence[str] = ("method",), metrics: Sequence[str] = METRICS
) -> pd.DataFrame:
    """Per group of `by` (in row order): n_shapes, n_runs, n_failures, structure, n_params and
    `<metric>_mean|_median|_std` of every metric (NaN skipped, std with ddof 0, as the reference
    evaluation scripts)."""
    records = []
    for key, group in rows.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        record: dict[str, object] = dict(zip(by, key, strict=True))
        record.update(
            n_shapes=int(group["shape"].nunique()),
            n_runs=len(group),
            n_failures=int((group["status"] != "ok").sum()),
            structure=", ".join(dict.fromkeys(group["structure"].astype(str))),
            n_params=int(group["n_params"].iloc[0]),
        )
        for metric in metrics:
            values = group[metric].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            empty = values.size == 0
            record[f"{metric}_mean"] = math.nan if empty else float(np.mean(values))
            record[f"{metric}_median"] = math.nan if empty else float(np.median(values))
            record[f"{metric}_std"] = math.nan if empty else float(np.std(values))
        records.append(record)
    return pd.DataFrame.from_records(records)


def _present(summary: pd.DataFrame, metrics: Sequence[str]) -> bool:
    """Whether any of `metrics` has a finite mean in `summary`."""
    return any(summary[f"{m}_mean"].notna().any() for m in metrics)


def scan_table(summary: pd.DataFrame, paper: str) -> pd.DataFrame:
    """Table 1 layout: method, source, d_C, d_H, d_C->, d_H-> (means), paper rows after ours."""
    table = pd.DataFrame({"method": summary["method"].map(method_label), "source": "ours"})
    for metric, heading in SCAN_COLUMNS.items():
        table[heading] = summary[f"{metric}_mean"].to_numpy()
    return _with_paper_rows(table, summary, PAPER_TABLE1 if paper == "srb" else {})


def shapenet_table(summary: pd.DataFrame, paper: str) -> pd.DataFrame:
    """Table 2 layout: method, source, then mean / median / std of squared Chamfer and IoU."""
    table = pd.DataFrame({"method": summary["method"].map(method_label), "source": "ours"})
    for metric, heading in SHAPENET_COLUMNS.items():
        for statistic in STATISTICS:
            table[f"{heading} {statistic}"] = summary[f"{metric}_{statistic}"].to_numpy()
    return _with_paper_rows(table, summary, PAPER_TABLE2 if paper == "shapenet" else {})


def _with_paper_rows(
    table: pd.DataFrame, summary: pd.DataFrame, paper: dict[str, tuple[float, ...]]
) -> pd.DataFrame:
    """Our rows with their failure counts, then the paper's rows (`source` paper) if any."""
    table["failures"] = summary["n_failures"].to_numpy()
    if not paper:
        return table
    reference = pd.DataFrame(
        [(label, "paper", *values, np.nan) for label, values in paper.items()],
        columns=table.columns,
    )
    return pd.concat([table, reference], ignore_index=True)


def extra_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Metrics beyond the paper (means, those that apply) plus timings and parameter counts."""
    table = pd.DataFrame({"method": summary["method"].map(method_label)})
    for metric, heading in {**EXTRA_COLUMNS, "iou": "IoU", "n_components": "pieces"}.items():
        if summary[f"{metric}_mean"].notna().any():
            table[heading] = summary[f"{metric}_mean"].to_numpy()
    table["structure"] = summary["structure"].to_numpy()
    table["parameters"] = summary["n_params"].to_numpy()
    table["train s"] = summary["train_seconds_mean"].to_numpy()
    table["ms / iteration"] = summary["ms_per_iter_median"].to_numpy()
    table["shapes"] = summary["n_shapes"].to_numpy()
    table["runs"] = summary["n_runs"].to_numpy()
    table["failures"] = summary["n_failures"].to_numpy()
    return table


def per_shape_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per run: identifiers, status and the metrics that apply to this dataset (and the
    input file where a folder's file name had to be changed into a shape name)."""
    metrics = [m for m in (*SURFACE_METRICS, *CURVE_METRICS) if rows[m].notna().any()]
    table = rows[["method", "shape", "seed", "status", *metrics]].copy()
    table["method"] = table["method"].map(method_label)
    files = rows["source"].fillna("").astype(str)
    renamed = (
        (files != "")
        & ~files.str.startswith("generated:")
        & (files.map(lambda s: Path(s).stem) != rows["shape"])
    )
    if renamed.any():
        table.insert(2, "file", files.map(lambda s: Path(s).name))
    return table


CURVE_COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("chamfer", "Chamfer", 1e3), ("hausdorff", "Hausdorff", 1e3), ("corner", "corner", 1e3),
    ("corner_convex", "convex", 1e3), ("corner_concave", "concave", 1e3), ("iou", "IoU", 1.0),
    ("eikonal", "eikonal", 1.0), ("spurious", "spurious", 1.0),
)  # fmt: skip
"""2D layout: metric, heading, factor (distances in 1e-3 units of the shapes' frame)."""


def _mean_std(mean: float, std: float, factor: float) -> str:
    """`mean ± std` as the 2D tables print it (distances scaled by `factor`)."""
    if not math.isfinite(mean):
        return "-"
    digits = 2 if factor != 1.0 or abs(mean) >= 1 else 3
    return f"{mean * factor:.{digits}f} ± {std * factor:.{digits}f}"


def curve_table(summary: pd.DataFrame) -> pd.DataFrame:
    """2D layout of one shape's summary (per method over seeds): `mean ± std` cells."""
    shown = [(m, h, f) for m, h, f in CURVE_COLUMNS if summary[f"{m}_mean"].notna().any()]
    table = pd.DataFrame(
        {"method": summary["method"].map(method_label), "structure": summary["structure"]}
    )
    for metric, heading, factor in shown:
        table[heading] = [
            _mean_std(m, s, factor)
            for m, s in zip(summary[f"{metric}_mean"], summary[f"{metric}_std"], strict=True)
        ]
    table["seeds"] = summary["n_runs"].to_numpy()
    table["failed"] = summary["n_failures"].to_numpy()
    return table


def summarize_snapshots(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Per (method, shape, fraction): iteration, divergence weight, number of runs and
    `<metric>_mean|_median|_std` of the snapshot metrics over seeds."""
    metrics = SNAPSHOT_COLUMNS[SNAPSHOT_COLUMNS.index("seconds") :]
    records = []
    groups = snapshots.groupby(["method", "shape", "fraction"], sort=False)
    for (method, shape, fraction), group in groups:
        record: dict[str, object] = {
            "method": method, "shape": shape, "fraction": float(fraction),
            "iteration": int(group["iteration"].iloc[0]), "w_div": float(group["w_div"].iloc[0]),
            "n_runs": len(group),
        }  # fmt: skip
        for metric in metrics:
            values = group[metric].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            for name, statistic in (("mean", np.mean), ("median", np.median), ("std", np.std)):
                record[f"{metric}_{name}"] = float(statistic(values)) if values.size else math.nan
        records.append(record)
    return pd.DataFrame.from_records(records)


def snapshot_tables(summary: pd.DataFrame, shape: str) -> list[tuple[str, pd.DataFrame]]:
    """For one shape: Chamfer, IoU and corner error at each snapshot fraction, methods as rows."""
    part = summary[summary["shape"] == shape]
    methods = list(dict.fromkeys(part["method"]))
    fractions = sorted(part["fraction"].unique())
    tables = []
    for metric, label, factor in (
        ("chamfer", "Chamfer", 1e3), ("iou", "IoU", 1.0), ("corner", "corner error", 1e3)
    ):  # fmt: skip
        if not part[f"{metric}_mean"].notna().any():
            continue
        table = pd.DataFrame({"method": [method_label(m) for m in methods]})
        for f in fractions:
            at = part[part["fraction"] == f].set_index("method")
            table[f"{label} at t={f:.2f}"] = [
                _mean_std(at.loc[m, f"{metric}_mean"], at.loc[m, f"{metric}_std"], factor)
                if m in at.index
                else "-"
                for m in methods
            ]
        tables.append((label, table))
    return tables


# ------------------------------------------------------------------ rendering


def _fmt(value: object) -> str:
    if isinstance(value, float | np.floating):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _markdown(table: pd.DataFrame) -> str:
    shown = table.map(_fmt)
    if "source" in shown.columns:
        paper = shown["source"] == "paper"
        shown.loc[paper, "method"] = "*" + shown.loc[paper, "method"] + " (paper)*"
    return shown.to_markdown(index=False)


_CSS = (
    "<style>table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "th,td{border:1px solid #bbb;padding:2px 8px;text-align:right}"
    "td:first-child,th:first-child{text-align:left}body{font-family:sans-serif}</style>"
)


def _html(table: pd.DataFrame) -> str:
    def paper_style(row: pd.Series) -> list[str]:
        mark = "color:#666;font-style:italic" if row.get("source") == "paper" else ""
        return [mark] * len(row)

    table = table.copy()
    if "source" in table.columns:
        paper = table["source"] == "paper"
        table.loc[paper, "method"] = table.loc[paper, "method"] + " (paper)"
    styler = table.style.apply(paper_style, axis=1).format(_fmt).hide(axis="index")
    return styler.to_html()


def _ground_truth_note(summary: pd.DataFrame) -> str:
    """For Table 1: which columns are empty for want of the dense ground truth (runs on the scans
    alone have the one-sided distances only), or nothing when every column has values."""
    needed = [m for m in ("chamfer", "hausdorff") if not _present(summary, [m])]
    if not needed or not _present(summary, ["chamfer_scan", "hausdorff_scan"]):
        return ""
    columns = " and ".join(SCAN_COLUMNS[m] for m in needed)
    return (
        f" {columns} need the benchmark's dense ground truth, which only the full archive "
        "(deep_geometric_prior_data.zip, `steik fetch srb`) holds: these runs had the scans "
        "alone, so our rows show d_C-> and d_H-> (scan to reconstruction) only."
    )


def _sections(
    dataset: str,
    rows: pd.DataFrame,
    summary: pd.DataFrame,
    paper: str,
    snapshots: pd.DataFrame | None = None,
    snapshot_shape: str | None = None,
) -> list[tuple[str, str, pd.DataFrame]]:
    """(heading, note, table) of every section shown for this dataset."""
    n = f"{rows['shape'].nunique()} shapes, {rows['method'].nunique()} methods, {len(rows)} runs"
    sections = []
    curves = _present(summary, CURVE_ONLY)
    if curves:
        note = (
            "Distances (Chamfer, Hausdorff, corner) in 1e-3 units of the shapes' original "
            "frame; mean ± std over seeds (population std)."
        )
        by_shape = summarize(rows, ("method", "shape"))
        for shape, part in by_shape.groupby("shape", sort=False):
            sections.append((f"{dataset}: {shape}", note, curve_table(part)))
    if _present(summary, SCAN_COLUMNS) and not curves:
        note = "Means over shapes; distances in the dataset's original units."
        if paper == "srb":
            note += " Rows marked (paper) are SPEC 8 / the StEik paper's Table 1, not ours."
            note += _ground_truth_note(summary)
        sections.append((f"{dataset}: Table 1 layout ({n})", note, scan_table(summary, paper)))
    if _present(summary, SHAPENET_COLUMNS) and not curves:
        note = "Squared Chamfer (no 1/2) and IoU: mean, median and std over shapes."
        if paper == "shapenet":
            note += " Rows marked (paper) are SPEC 8 / the StEik paper's Table 2, not ours."
        sections.append((f"{dataset}: Table 2 layout ({n})", note, shapenet_table(summary, paper)))
    if snapshots is not None and len(snapshots) and snapshot_shape is not None:
        snap = summarize_snapshots(snapshots)
        weights = snap[snap["shape"] == snapshot_shape].drop_duplicates("fraction")
        divergence = snap[(snap["shape"] == snapshot_shape) & (snap["w_div"] != 0)]
        if len(divergence):
            weights = (
                snap[snap["shape"] == snapshot_shape]
                .loc[lambda f: f["method"].isin(divergence["method"])]
                .drop_duplicates("fraction")
            )
        note = (
            f"{snapshot_shape} during training (the snapshots; distances in 1e-3 units, mean ± "
            "std over seeds; 3D snapshots on a coarser grid than the final mesh). Divergence "
            "weight at those points: "
            + ", ".join(f"t={r.fraction:.2f}: {r.w_div:g}" for r in weights.itertuples())
            + "."
        )
        for label, table in snapshot_tables(snap, snapshot_shape):
            sections.append((f"{dataset}: {snapshot_shape} during training, {label}", note, table))
    sections.append(
        (f"{dataset}: other metrics and timings", "Means over shapes; ms / iteration is the "
         "median over runs.", extra_table(summary))
    )  # fmt: skip
    sections.append(
        (f"{dataset}: every run", "status ok, diverged or no_surface.", per_shape_table(rows))
    )
    return sections


def render_markdown(sections: Sequence[tuple[str, str, pd.DataFrame]]) -> str:
    """Sections as Markdown: a heading, a note and a table each."""
    parts = []
    for heading, note, table in sections:
        parts += [f"## {heading}", "", note, "", _markdown(table), ""]
    return "\n".join(parts)


def render_html(title: str, sections: Sequence[tuple[str, str, pd.DataFrame]]) -> str:
    """Sections as one HTML page (paper rows greyed out)."""
    parts = [f"<html><head><meta charset='utf-8'><title>{title}</title>{_CSS}</head><body>"]
    for heading, note, table in sections:
        parts += [f"<h2>{heading}</h2>", f"<p>{note}</p>", _html(table)]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_tables(
    metrics: Sequence[str | Path],
    dataset: str,
    out_dir: str | Path,
    paper: str = "none",
    snapshots: Sequence[str | Path] = (),
    snapshot_shape: str | None = None,
) -> dict[str, Path]:
    """Write `<dataset>.parquet`, `_summary.parquet`, `.md` and `.html` into `out_dir` (and
    `<dataset>_snapshots.parquet` from the `snapshots` rows' files when they are given, empty
    when they hold no rows).

    `paper` (`none`, `srb`, `shapenet`) selects the paper's numbers shown beside ours;
    `snapshot_shape` the shape whose snapshots are tabulated. Returns the written paths by kind.
    """
    if paper not in PAPER_TABLES:
        raise SteikError(f"--paper {paper!r} is not valid; choose one of {', '.join(PAPER_TABLES)}")
    rows = read_metrics(metrics)
    other = sorted(set(rows["dataset"]) - {dataset})
    if other:
        raise SteikError(
            f"metrics rows of dataset(s) {', '.join(other)} given for the {dataset} table; pass "
            f"only results/{dataset}/.../metrics.parquet"
        )
    snapshot_rows = read_rows(snapshots, SNAPSHOT_COLUMNS, "snapshot") if snapshots else None
    if snapshot_rows is not None and len(snapshot_rows):
        taken = list(dict.fromkeys(snapshot_rows["shape"]))
        if snapshot_shape is None:
            snapshot_shape = taken[0]
        elif snapshot_shape not in taken:
            raise SteikError(
                f"--snapshot-shape {snapshot_shape!r} has no snapshot rows; shapes with "
                f"snapshots: {', '.join(taken)}"
            )
    summary = summarize(rows)
    if _present(summary, CURVE_ONLY):
        summary = summarize(rows, ("method", "shape"))
    out = Path(out_dir)
    paths = {
        "rows": out / f"{dataset}.parquet",
        "summary": out / f"{dataset}_summary.parquet",
        "markdown": out / f"{dataset}.md",
        "html": out / f"{dataset}.html",
    }
    sections = _sections(dataset, rows, summarize(rows), paper, snapshot_rows, snapshot_shape)
    if snapshot_rows is not None:
        paths["snapshots"] = out / f"{dataset}_snapshots.parquet"
        with atomic_path(paths["snapshots"]) as tmp:
            snapshot_rows.to_parquet(tmp, index=False)
    with atomic_path(paths["rows"]) as tmp:
        rows.to_parquet(tmp, index=False)
    with atomic_path(paths["summary"]) as tmp:
        summary.to_parquet(tmp, index=False)
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(f"# {dataset}\n\n" + render_markdown(sections))
    with atomic_path(paths["html"]) as tmp:
        tmp.write_text(render_html(dataset, sections))
    return paths


# ------------------------------------------------------------------ runtime (Table 3)


def runtime_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 3 layout from metrics rows: per (method, structure, device, points per iteration,
    shapes trained together), the median ms per iteration over runs (one iteration of the whole
    batch), the median seconds one shape costs from its sample to its mesh (its share of the
    batch's training plus its extraction; screened Poisson: its reconstruction), the parameter
    count, the datasets and run count."""
    keys = ["method", "structure", "n_params", "device", "n_points", "n_shapes_batch"]
    records = []
    for values, group in rows.groupby(keys, sort=False):
        method, structure, n_params, device, n_points, batch = values
        ms = group["ms_per_iter"].to_numpy(dtype=np.float64)
        ms = ms[np.isfinite(ms)]
        per_shape = group["train_seconds"] / group["n_shapes_batch"] + group["extract_seconds"]
        per_shape = per_shape.to_numpy(dtype=np.float64)
        per_shape = per_shape[np.isfinite(per_shape)]
        records.append(
            {
                "method": method,
                "structure": structure,
                "ms_per_iter": float(np.median(ms)) if ms.size else math.nan,
                "seconds_per_shape": float(np.median(per_shape)) if per_shape.size else math.nan,
                "n_params": int(n_params),
                "device": device,
                "n_points": int(n_points),
                "n_shapes_batch": int(batch),
                "datasets": ", ".join(dict.fromkeys(group["dataset"].astype(str))),
                "n_runs": len(group),
            }
        )
    return pd.DataFrame.from_records(records)


def _runtime_display(table: pd.DataFrame) -> pd.DataFrame:
    ours = pd.DataFrame(
        {
            "method": table["method"].map(method_label),
            "source": "ours",
            "structure": table["structure"],
            "ms / iteration": table["ms_per_iter"],
            "s / shape": table["seconds_per_shape"],
            "parameters": table["n_params"].map(lambda n: f"{n / 1e6:.2f}M ({n:,})"),
            "device": table["device"],
            "points": table["n_points"].map(str),
            "shapes per batch": table["n_shapes_batch"].map(str),
            "datasets": table["datasets"],
        }
    )
    paper = pd.DataFrame(
        [
            (label, "paper", s, ms, math.nan, p, "paper's GPU", "30000", "1", "")
            for label, s, ms, p in PAPER_TABLE3
        ],
        columns=ours.columns,
    )
    return pd.concat([ours, paper], ignore_index=True)


def write_runtime(tables: Sequence[str | Path], out: str | Path) -> dict[str, Path]:
    """Runtime table from dataset tables (`<dataset>.parquet`): `out` (Parquet, ours only) and
    `.md` / `.html` beside it with the paper's Table 3 rows marked."""
    if not tables:
        raise SteikError("no dataset tables given; pass --tables results/tables/<dataset>.parquet")
    if Path(out).suffix.lower() != ".parquet":
        raise SteikError(
            f"--out {out}: the runtime table is written as Parquet; give a path ending in "
            ".parquet (its .md and .html go beside it)"
        )
    needed = ("dataset", "method", "structure", "n_params", "device", "n_points",
              "n_shapes_batch", "ms_per_iter", "train_seconds", "extract_seconds")  # fmt: skip
    rows = read_rows(tables, needed, "dataset table")
    table = runtime_table(rows)
    display = _runtime_display(table)
    note = (
        "Median ms per training iteration over this workflow's runs (divergence phase), on this "
        "run's device and points per iteration; one iteration trains every shape of a batch "
        "together. s / shape: median seconds from a shape's sample to its mesh (its share of its "
        "batch's training plus its extraction; screened Poisson: the reconstruction). Rows "
        "marked (paper) are the StEik paper's Table 3 (its GPU, 15,000 + 15,000 points, one "
        "shape)."
    )
    out = Path(out)
    paths = {"table": out, "markdown": out.with_suffix(".md"), "html": out.with_suffix(".html")}
    with atomic_path(paths["table"]) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(f"# Time per iteration (Table 3 layout)\n\n{note}\n\n{_markdown(display)}\n")
    with atomic_path(paths["html"]) as tmp:
        tmp.write_text(
            f"<html><head><meta charset='utf-8'><title>runtime</title>{_CSS}</head><body>"
            f"<h2>Time per iteration (Table 3 layout)</h2><p>{note}</p>{_html(display)}"
            "</body></html>"
        )
    return paths
