"""Training curves: each loss term and the divergence weight against the iteration, one line
per method (median over shapes, band from minimum to maximum), read from the training logs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from steik.errors import SteikError
from steik.methods import run_label
from steik.plots.figure import Paths, check_figure_path, run_and_shape, save_figure


def _read_logs(logs: Paths) -> dict[Path, pd.DataFrame]:
    """Every training log, read once; an unreadable one or one without iterations is refused."""
    frames = {}
    for path in map(Path, logs):
        if not path.is_file():
            raise SteikError(f"{path}: no such training log; train first (`steik train`)")
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise SteikError(f"{path}: unreadable training log ({error}); retrain") from None
        if "iteration" not in frame.columns or "loss" not in frame.columns:
            raise SteikError(f"{path}: training log lacks 'iteration' or 'loss'; retrain")
        frames[path] = frame
    return frames


def loss_curves(logs: Paths, term: str) -> dict[str, pd.DataFrame]:
    """Per run whose logs have `term`: `term` against the iteration aggregated over shapes, a
    frame with columns iteration, median, min, max (shapes logged at different iterations are
    aligned on the iterations they share)."""
    per_run: dict[str, list[pd.Series]] = {}
    for path, frame in _read_logs(logs).items():
        if term not in frame.columns:
            continue
        run, shape = run_and_shape(path)
        series = frame.set_index("iteration")[term].astype("float64").rename(shape)
        per_run.setdefault(run, []).append(series)
    curves = {}
    for run, series in per_run.items():
        table = pd.concat(series, axis=1, join="inner")
        curves[run] = pd.DataFrame(
            {
                "iteration": table.index.to_numpy(),
                "median": table.median(axis=1).to_numpy(),
                "min": table.min(axis=1).to_numpy(),
                "max": table.max(axis=1).to_numpy(),
            }
        )
    return curves


def build_loss_figure(logs: Paths) -> Figure:
    """One panel per loss term the logs hold (the total first, the divergence weight last), one
    line per method (median over shapes, band from min to max); methods of other loss families
    (IGR, SAL, PHASE) add their own terms' panels. Log scale for the losses."""
    if not logs:
        raise SteikError("no training logs given; pass --logs FILE [FILE ...]")
    frames = _read_logs(logs).values()
    columns: dict[str, None] = {}
    for frame in frames:
        columns.update(dict.fromkeys(frame.columns))

    def drawn(term: str) -> bool:  # a term that is never positive (unused) gets no panel
        return any(term in f.columns and (f[term] > 0).any() for f in frames)

    skipped = {"iteration", "lr", "seconds"}
    terms = [c for c in columns if c not in skipped and not c.startswith("w_") and drawn(c)]
    terms += ["w_div"] if "w_div" in columns else []
    fig = Figure(figsize=(3.2 * len(terms), 3.0))
    axes = fig.subplots(1, len(terms), squeeze=False)[0]
    for ax, term in zip(axes, terms, strict=True):
        for run, curve in loss_curves(logs, term).items():
            line = ax.plot(curve["iteration"], curve["median"], label=run_label(run), lw=1.2)[0]
            ax.fill_between(
                curve["iteration"],
                curve["min"],
                curve["max"],
                alpha=0.15,
                color=line.get_color(),
                linewidth=0,
            )
        if term != "w_div":
            ax.set_yscale("log", nonpositive="mask")
        ax.set_title("divergence weight" if term == "w_div" else term)
        ax.set_xlabel("iteration")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def loss_figure(logs: Paths, out: str | Path) -> Path:
    """Write `build_loss_figure` to `out` (an image path, checked first)."""
    check_figure_path(out)
    return save_figure(build_loss_figure(logs), out)
