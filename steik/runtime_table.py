"""The runtime table (the paper's Table 3 layout) from the dataset tables of a workflow run: time
per training iteration, seconds per shape, structure, parameters and device per method, with the
paper's GPU numbers in marked rows of its Markdown and HTML renderings (never in the Parquet)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from steik.errors import SteikError
from steik.fileio import atomic_path
from steik.methods import method_label
from steik.rendering import CSS, html_table, markdown_table
from steik.rows import read_rows

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
"""SPEC 8, Table 3 (the paper's GPU, 15,000 + 15,000 points): label, structure, ms per
iteration, parameters."""


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
    """The runtime table as shown: labels, readable parameter counts, the paper's rows after."""
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
        heading = "# Time per iteration (Table 3 layout)"
        tmp.write_text(f"{heading}\n\n{note}\n\n{markdown_table(display)}\n")
    with atomic_path(paths["html"]) as tmp:
        tmp.write_text(
            f"<html><head><meta charset='utf-8'><title>runtime</title>{CSS}</head><body>"
            f"<h2>Time per iteration (Table 3 layout)</h2><p>{note}</p>{html_table(display)}"
            "</body></html>"
        )
    return paths
