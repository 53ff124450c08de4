"""Whether a run reached a good surface, and what quality each method buys per training second.

A training loss that has levelled off says nothing about the surface: a network can settle into
a field whose zero level set is noise. These checks read the metrics rows instead: a run is good
when its IoU reaches a threshold (IoU of u < 0 against the true inside, so an inside-out network
fails it too) and its zero level set has the expected number of pieces (no spurious component).

The quality figure plots Chamfer and IoU of the networks kept during training (`snapshots.pt`,
scored by `steik evaluate --snapshot-table`) against the training seconds per shape spent to reach
them, one line per method (mean over shapes and seeds), and methods without training (screened
Poisson) as a point at their reconstruction time: the table a user needs to choose by cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from steik.errors import SteikError
from steik.methods import method_label
from steik.plots.figure import check_figure_path, save_figure

CHECK_COLUMNS: tuple[str, ...] = (
    "dataset", "method", "shape", "seed", "iou", "n_components", "chamfer", "good", "why",
)  # fmt: skip
"""Columns of `surface_checks`: one line per run, `good` with the reason when it is not."""
CHECKED_COLUMNS: tuple[str, ...] = (
    "dataset", "method", "shape", "seed", "status", "iou", "n_components", "chamfer",
)  # fmt: skip
"""The metrics-row columns `surface_checks` reads."""


def surface_checks(
    rows: pd.DataFrame,
    min_iou: float = 0.9,
    components: int = 1,
    methods: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Judge every run of `rows` (metrics rows, `steik.tables.ROW_COLUMNS`): good when its status
    is ok, IoU >= `min_iou` and its zero level set has exactly `components` pieces. Runs of
    `methods` only, when given."""
    missing = set(CHECKED_COLUMNS) - set(rows.columns)
    if missing:
        raise SteikError(f"metrics rows lack {sorted(missing)}; evaluate the runs again")
    if methods is not None:
        rows = rows[rows["method"].isin(list(methods))]
    records = []
    for row in rows.itertuples(index=False):
        reasons = []
        if row.status != "ok":
            reasons.append(f"status {row.status}")
        if not row.iou >= min_iou:  # NaN fails too: no IoU, no evidence
            reasons.append(f"IoU {row.iou:.3f} < {min_iou:g}")
        if row.n_components != components:
            reasons.append(f"{row.n_components:g} pieces, not {components}")
        records.append({
            "dataset": row.dataset, "method": row.method, "shape": row.shape, "seed": row.seed,
            "iou": row.iou, "n_components": row.n_components, "chamfer": row.chamfer,
            "good": not reasons, "why": "; ".join(reasons),
        })  # fmt: skip
    return pd.DataFrame.from_records(records, columns=list(CHECK_COLUMNS))


def quality_curves(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Per (method, fraction): mean training seconds per shape, mean Chamfer and IoU over the
    shapes and seeds of the snapshot rows (`steik.tables.SNAPSHOT_COLUMNS`)."""
    if snapshots.empty:
        return pd.DataFrame(columns=["method", "fraction", "seconds", "chamfer", "iou"])
    grouped = snapshots.groupby(["method", "fraction"], sort=False)[["seconds", "chamfer", "iou"]]
    return grouped.mean().reset_index().sort_values(["method", "fraction"], kind="stable")


def build_quality_figure(rows: pd.DataFrame, snapshots: pd.DataFrame, title: str = "") -> Figure:
    """Chamfer (log scale) and, where defined, IoU against training seconds per shape: a line per
    neural method through its snapshots (`quality_curves`), a star per method without training
    (the mean of its final rows, at their mean reconstruction time)."""
    curves = quality_curves(snapshots)
    untrained = rows[(rows["iterations"] == 0) & (rows["status"] == "ok")]
    if curves.empty and untrained.empty:
        raise SteikError(
            "no snapshot rows and no untrained method's rows to plot; train with snapshots "
            "(train.snapshots in the config, `steik train --snapshots`) and evaluate with "
            "--snapshot-table"
        )
    panels = [("chamfer", "Chamfer (original units)")]
    if curves["iou"].notna().any() or untrained["iou"].notna().any():
        panels.append(("iou", "IoU"))
    fig = Figure(figsize=(4.2 * len(panels), 3.4))
    axes = fig.subplots(1, len(panels), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels, strict=True):
        for method, curve in curves.groupby("method", sort=False):
            ax.plot(curve["seconds"], curve[metric], marker="o", ms=3, lw=1.3,
                    label=method_label(str(method)))  # fmt: skip
        for method, part in untrained.groupby("method", sort=False):
            ax.plot(part["extract_seconds"].mean(), part[metric].mean(), marker="*", ms=11,
                    ls="none", color="black", label=method_label(str(method)))  # fmt: skip
        if metric == "chamfer":
            ax.set_yscale("log", nonpositive="mask")
        else:
            ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("training seconds per shape")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def quality_figure(
    rows: pd.DataFrame, snapshots: pd.DataFrame, out: str | Path, title: str = ""
) -> Path:
    """Write `build_quality_figure` to `out` (an image path, checked first)."""
    check_figure_path(out)
    return save_figure(build_quality_figure(rows, snapshots, title), out)
