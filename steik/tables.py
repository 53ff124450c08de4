"""Aggregation of metrics rows into Parquet tables and the paper's table layouts.

`steik evaluate` writes one row per trained model; this module gathers a dataset's rows
(`<dataset>.parquet`), summarises them per method (`<dataset>_summary.parquet`: mean, median
and standard deviation of every metric, shape, run and failure counts) and renders them in the
layouts of the paper (SPEC 8): Table 1 (d_C, d_H, d_C->, d_H->) for scan datasets, Table 2
(squared Chamfer and IoU, mean / median / std) for ShapeNet-like datasets, Table 3 (time per
iteration, structure, parameters) for the runtime table. The paper's numbers are kept apart:
they appear only in the Markdown / HTML renderings, in rows whose `source` is `paper`.

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

from steik.errors import SteikError
from steik.fileio import atomic_path

ROW_COLUMNS: tuple[str, ...] = (
    "dataset", "shape", "method", "seed", "neuron", "structure", "init", "div", "n_params",
    "iterations", "n_points", "chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan",
    "chamfer_sq", "iou", "chamfer_l1", "normal_consistency", "fscore", "train_seconds",
    "ms_per_iter", "extract_seconds", "device", "torch_version", "steik_version", "config_hash",
    "status", "message",
)
"""Columns of a metrics row (DESIGN 2), in order."""

METRICS: tuple[str, ...] = (
    "chamfer", "hausdorff", "chamfer_scan", "hausdorff_scan", "chamfer_sq", "iou",
    "chamfer_l1", "normal_consistency", "fscore", "train_seconds", "ms_per_iter",
    "extract_seconds",
)
"""Numeric columns summarised per method."""

STATISTICS: tuple[str, ...] = ("mean", "median", "std")

METHOD_LABELS: dict[str, str] = {
    "igr_wo_n": "IGR wo n",
    "siren_wo_n": "SIREN wo n",
    "digs": "DiGS",
    "lin_lln": "Lin + L_L.n.",
    "qua_ldiv": "Qua + L_div",
    "steik": "StEik",
}
"""Method name -> its row label in the paper's tables."""

SCAN_COLUMNS: dict[str, str] = {
    "chamfer": "d_C", "hausdorff": "d_H", "chamfer_scan": "d_C->", "hausdorff_scan": "d_H->",
}
"""Table 1: metric -> column heading."""

SHAPENET_COLUMNS: dict[str, str] = {"chamfer_sq": "sq. Chamfer", "iou": "IoU"}
"""Table 2: metric -> column heading (each with mean, median, std)."""

EXTRA_COLUMNS: dict[str, str] = {
    "chamfer_l1": "Chamfer-L1", "normal_consistency": "normal consistency", "fscore": "F-score",
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

PAPER_TABLES = ("none", "srb", "shapenet")
"""Which paper table's numbers are shown beside ours (`srb` -> Table 1, `shapenet` -> Table 2)."""


# ------------------------------------------------------------------ reading and aggregating


def read_metrics(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Every metrics row of `paths` in one frame, columns in DESIGN 2 order.

    Each file must hold exactly one row with every column of `ROW_COLUMNS`; rows are sorted
    by method (first appearance), shape and seed so the table does not depend on file order.
    """
    if not paths:
        raise SteikError("no metrics files given; pass --metrics FILE [FILE ...]")
    frames = []
    for path in paths:
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise SteikError(
                f"{path}: unreadable metrics file ({error}); rerun `steik evaluate`"
            ) from None
        missing = [c for c in ROW_COLUMNS if c not in frame.columns]
        if missing:
            raise SteikError(
                f"{path}: metrics row lacks column(s) {', '.join(missing)}; rerun `steik evaluate`"
            )
        if len(frame) != 1:
            raise SteikError(f"{path}: expected exactly one metrics row, found {len(frame)}")
        frames.append(frame[list(ROW_COLUMNS)])
    rows = pd.concat(frames, ignore_index=True)
    duplicated = rows.duplicated(["dataset", "method", "shape", "seed"])
    if duplicated.any():
        first = rows[duplicated].iloc[0]
        raise SteikError(
            f"two metrics rows for dataset {first.dataset}, method {first.method}, shape "
            f"{first.shape}, seed {first.seed}; pass each run's metrics.parquet once"
        )
    order = {m: i for i, m in enumerate(dict.fromkeys(rows["method"]))}
    rows = rows.sort_values(
        ["method", "shape", "seed"], key=lambda c: c.map(order) if c.name == "method" else c
    )
    for column in METRICS:
        rows[column] = pd.to_numeric(rows[column], errors="coerce").astype("float64")
    return rows.reset_index(drop=True)


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method (in row order): n_shapes, n_runs, n_failures, structure, n_params, and
    `<metric>_mean|_median|_std` of every metric in `METRICS` (NaN skipped, std with ddof 0)."""
    records = []
    for method, group in rows.groupby("method", sort=False):
        record: dict[str, object] = {
            "method": method,
            "n_shapes": int(group["shape"].nunique()),
            "n_runs": len(group),
            "n_failures": int((group["status"] != "ok").sum()),
            "structure": ", ".join(dict.fromkeys(group["structure"].astype(str))),
            "n_params": int(group["n_params"].iloc[0]),
        }
        for metric in METRICS:
            values = group[metric].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            empty = values.size == 0
            record[f"{metric}_mean"] = math.nan if empty else float(np.mean(values))
            record[f"{metric}_median"] = math.nan if empty else float(np.median(values))
            record[f"{metric}_std"] = math.nan if empty else float(np.std(values))
        records.append(record)
    return pd.DataFrame.from_records(records)


def _label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _present(summary: pd.DataFrame, metrics: Sequence[str]) -> bool:
    """Whether any of `metrics` has a finite mean in `summary`."""
    return any(summary[f"{m}_mean"].notna().any() for m in metrics)


def scan_table(summary: pd.DataFrame, paper: str) -> pd.DataFrame:
    """Table 1 layout: method, source, d_C, d_H, d_C->, d_H-> (means), paper rows after ours."""
    table = pd.DataFrame({"method": summary["method"].map(_label), "source": "ours"})
    for metric, heading in SCAN_COLUMNS.items():
        table[heading] = summary[f"{metric}_mean"].to_numpy()
    table["failures"] = summary["n_failures"].to_numpy()
    if paper == "srb":
        reference = pd.DataFrame(
            [(label, "paper", *values, np.nan) for label, values in PAPER_TABLE1.items()],
            columns=table.columns,
        )
        table = pd.concat([table, reference], ignore_index=True)
    return table


def shapenet_table(summary: pd.DataFrame, paper: str) -> pd.DataFrame:
    """Table 2 layout: method, source, then mean / median / std of squared Chamfer and IoU."""
    table = pd.DataFrame({"method": summary["method"].map(_label), "source": "ours"})
    for metric, heading in SHAPENET_COLUMNS.items():
        for statistic in STATISTICS:
            table[f"{heading} {statistic}"] = summary[f"{metric}_{statistic}"].to_numpy()
    table["failures"] = summary["n_failures"].to_numpy()
    if paper == "shapenet":
        reference = pd.DataFrame(
            [(label, "paper", *values, np.nan) for label, values in PAPER_TABLE2.items()],
            columns=table.columns,
        )
        table = pd.concat([table, reference], ignore_index=True)
    return table


def extra_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Metrics beyond the paper (means) plus timings and parameter counts, ours only."""
    table = pd.DataFrame({"method": summary["method"].map(_label)})
    for metric, heading in EXTRA_COLUMNS.items():
        table[heading] = summary[f"{metric}_mean"].to_numpy()
    table["IoU"] = summary["iou_mean"].to_numpy()
    table["structure"] = summary["structure"].to_numpy()
    table["parameters"] = summary["n_params"].to_numpy()
    table["train s"] = summary["train_seconds_mean"].to_numpy()
    table["ms / iteration"] = summary["ms_per_iter_median"].to_numpy()
    table["shapes"] = summary["n_shapes"].to_numpy()
    table["runs"] = summary["n_runs"].to_numpy()
    table["failures"] = summary["n_failures"].to_numpy()
    return table


def per_shape_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per run: identifiers, status and the metrics that apply to this dataset."""
    metrics = [m for m in METRICS[:9] if rows[m].notna().any()]
    table = rows[["method", "shape", "seed", "status", *metrics]].copy()
    table["method"] = table["method"].map(_label)
    return table


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


def _sections(dataset: str, rows: pd.DataFrame, summary: pd.DataFrame, paper: str):
    """(heading, note, table) of every section shown for this dataset."""
    n = f"{rows['shape'].nunique()} shapes, {rows['method'].nunique()} methods, {len(rows)} runs"
    sections = []
    if _present(summary, SCAN_COLUMNS):
        note = "Means over shapes; distances in the dataset's original units."
        if paper == "srb":
            note += " Rows marked (paper) are SPEC 8 / the StEik paper's Table 1, not ours."
        sections.append((f"{dataset}: Table 1 layout ({n})", note, scan_table(summary, paper)))
    if _present(summary, SHAPENET_COLUMNS):
        note = "Squared Chamfer (no 1/2) and IoU: mean, median and std over shapes."
        if paper == "shapenet":
            note += " Rows marked (paper) are SPEC 8 / the StEik paper's Table 2, not ours."
        sections.append((f"{dataset}: Table 2 layout ({n})", note, shapenet_table(summary, paper)))
    sections.append(
        (f"{dataset}: other metrics and timings", "Means over shapes; ms / iteration is the "
         "median over runs.", extra_table(summary))
    )
    sections.append((f"{dataset}: every run", "status ok, diverged or no_surface.",
                     per_shape_table(rows)))
    return sections


def render_markdown(dataset: str, rows: pd.DataFrame, summary: pd.DataFrame, paper: str) -> str:
    parts = []
    for heading, note, table in _sections(dataset, rows, summary, paper):
        parts += [f"## {heading}", "", note, "", _markdown(table), ""]
    return "\n".join(parts)


def render_html(dataset: str, rows: pd.DataFrame, summary: pd.DataFrame, paper: str) -> str:
    parts = [f"<html><head><meta charset='utf-8'><title>{dataset}</title>{_CSS}</head><body>"]
    for heading, note, table in _sections(dataset, rows, summary, paper):
        parts += [f"<h2>{heading}</h2>", f"<p>{note}</p>", _html(table)]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_tables(
    metrics: Sequence[str | Path], dataset: str, out_dir: str | Path, paper: str = "none"
) -> dict[str, Path]:
    """Write `<dataset>.parquet`, `_summary.parquet`, `.md` and `.html` into `out_dir`.

    `paper` (`none`, `srb`, `shapenet`) selects the paper's numbers shown beside ours.
    Returns the written paths by kind.
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
    summary = summarize(rows)
    out = Path(out_dir)
    paths = {
        "rows": out / f"{dataset}.parquet",
        "summary": out / f"{dataset}_summary.parquet",
        "markdown": out / f"{dataset}.md",
        "html": out / f"{dataset}.html",
    }
    with atomic_path(paths["rows"]) as tmp:
        rows.to_parquet(tmp, index=False)
    with atomic_path(paths["summary"]) as tmp:
        summary.to_parquet(tmp, index=False)
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(f"# {dataset}\n\n" + render_markdown(dataset, rows, summary, paper))
    with atomic_path(paths["html"]) as tmp:
        tmp.write_text(render_html(dataset, rows, summary, paper))
    return paths


# ------------------------------------------------------------------ runtime (Table 3)


def runtime_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Table 3 layout from metrics rows: per (method, structure, device, points per iteration),
    the median ms per iteration over runs, the parameter count, the datasets and run count."""
    keys = ["method", "structure", "n_params", "device", "n_points"]
    records = []
    for (method, structure, n_params, device, n_points), group in rows.groupby(keys, sort=False):
        ms = group["ms_per_iter"].to_numpy(dtype=np.float64)
        ms = ms[np.isfinite(ms)]
        records.append({
            "method": method,
            "structure": structure,
            "ms_per_iter": float(np.median(ms)) if ms.size else math.nan,
            "n_params": int(n_params),
            "device": device,
            "n_points": int(n_points),
            "datasets": ", ".join(dict.fromkeys(group["dataset"].astype(str))),
            "n_runs": len(group),
        })
    return pd.DataFrame.from_records(records)


def _runtime_display(table: pd.DataFrame) -> pd.DataFrame:
    ours = pd.DataFrame({
        "method": table["method"].map(_label),
        "source": "ours",
        "structure": table["structure"],
        "ms / iteration": table["ms_per_iter"],
        "parameters": table["n_params"].map(lambda n: f"{n / 1e6:.2f}M ({n:,})"),
        "device": table["device"],
        "points": table["n_points"].map(str),
        "datasets": table["datasets"],
    })
    paper = pd.DataFrame(
        [(label, "paper", s, ms, p, "paper's GPU", "30000", "")
         for label, s, ms, p in PAPER_TABLE3],
        columns=ours.columns,
    )
    return pd.concat([ours, paper], ignore_index=True)


def write_runtime(tables: Sequence[str | Path], out: str | Path) -> dict[str, Path]:
    """Runtime table from dataset tables (`<dataset>.parquet`): `out` (Parquet, ours only) and
    `.md` / `.html` beside it with the paper's Table 3 rows marked."""
    if not tables:
        raise SteikError("no dataset tables given; pass --tables results/tables/<dataset>.parquet")
    frames = []
    for path in tables:
        try:
            frames.append(pd.read_parquet(path))
        except (OSError, ValueError) as error:
            raise SteikError(f"{path}: unreadable table ({error}); rerun `steik tables`") from None
    rows = pd.concat(frames, ignore_index=True)
    missing = [c for c in ("method", "structure", "n_params", "device", "n_points", "ms_per_iter")
               if c not in rows.columns]
    if missing:
        raise SteikError(
            f"dataset tables lack column(s) {', '.join(missing)}; rerun `steik tables`"
        )
    table = runtime_table(rows)
    display = _runtime_display(table)
    note = (
        "Median ms per training iteration over this workflow's runs (divergence phase), on this "
        "run's device and points per iteration; rows marked (paper) are the StEik paper's Table 3 "
        "(its GPU, 15,000 + 15,000 points)."
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
