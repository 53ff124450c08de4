"""2D level-set figures: trained networks' fields drawn like the paper's snowflake figure.

The zero level set bold black, a few other level sets thin (blue inside, red outside), the exact
curve dotted grey (or the ground-truth points for a shape without one), on the method's training
domain, in original units. `levelset_figure` puts runs in rows and shapes in columns; the
snapshot strip (`snapshot_figure`) shows one shape's level sets at several points of each run's
training under a plot of the divergence-weight schedule, so the divergence term can be seen at
work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from steik.data import shapes2d
from steik.data.sample import Sample, load_sample
from steik.errors import SteikError
from steik.methods import run_label
from steik.model import RunRecord, check_model_matches_sample, load_model, load_snapshots
from steik.plots.figure import Paths, check_figure_path, grid, run_and_shape, save_figure
from steik.schedule import WeightSchedule

LEVELS: tuple[float, ...] = (-0.15, -0.1, -0.05, 0.05, 0.1, 0.15, 0.2, 0.3)
"""Non-zero level sets drawn thin (original units)."""
PANEL_INCHES = 2.2


@dataclass
class Panel:
    """One network's field for drawing: `values [R, R]` (u in original units, x along the
    first axis) on `axis_x [R]`, `axis_y [R]` (original units), and what it should match."""

    shape: str
    axis_x: np.ndarray
    axis_y: np.ndarray
    values: np.ndarray
    truth: np.ndarray | None = None
    """Ground-truth points `[M, 2]` (original units) drawn dotted; None: the exact SPEC 9 curve
    of `shape`."""


@torch.no_grad()
def panel_for(
    network: torch.nn.Module,
    shape: str,
    center: Sequence[float],
    scale: float,
    extent: float,
    resolution: int = 256,
    truth: np.ndarray | None = None,
) -> Panel:
    """Evaluate a K = 1 network on `resolution^2` points over [-extent, extent]^2 (normalised)."""
    axis = np.linspace(-extent, extent, resolution)
    gx, gy = np.meshgrid(axis, axis, indexing="ij")
    points = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    device = next(network.parameters()).device
    u = network(torch.from_numpy(points).to(device)[None])[0].double().cpu().numpy()
    return Panel(
        shape=shape,
        axis_x=axis * scale + center[0],
        axis_y=axis * scale + center[1],
        values=u.reshape(resolution, resolution) * scale,
        truth=truth,
    )


def draw_panel(ax: Axes, panel: Panel) -> None:
    """Level sets of one panel and the dotted ground truth, axes off, equal aspect."""
    values = np.where(np.isfinite(panel.values), panel.values, np.nan).T  # y along rows
    ax.set_facecolor("white")
    if np.isfinite(values).any():
        for levels, color in (([v for v in LEVELS if v < 0], "#3b6fb6"),
                              ([v for v in LEVELS if v > 0], "#c8553d")):  # fmt: skip
            ax.contour(panel.axis_x, panel.axis_y, values, levels=levels, colors=color,
                       linewidths=0.5, alpha=0.7)  # fmt: skip
        if np.nanmin(values) < 0 < np.nanmax(values):
            ax.contour(panel.axis_x, panel.axis_y, values, levels=[0.0], colors="black",
                       linewidths=1.6)  # fmt: skip
    if panel.truth is None:
        outline = shapes2d.outline(panel.shape)
        closed = np.concatenate([outline, outline[:1]])
        ax.plot(closed[:, 0], closed[:, 1], linestyle=":", color="0.45", linewidth=1.2)
    else:
        ax.scatter(panel.truth[:, 0], panel.truth[:, 1], s=0.8, color="0.45", linewidths=0)
    ax.set_xlim(panel.axis_x[0], panel.axis_x[-1])
    ax.set_ylim(panel.axis_y[0], panel.axis_y[-1])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


def _panel_of_model(
    network: torch.nn.Module, meta: RunRecord, sample: Sample, resolution: int
) -> Panel:
    """The panel of a trained 2D network over its training domain."""
    exact = shapes2d.exact_curve(sample)
    truth = None
    if exact is None and sample.gt_points is not None:
        truth = sample.gt_points[:: max(1, len(sample.gt_points) // 2000)]
    extent = meta.config.offsurface_extent
    return panel_for(network, exact or sample.shape, sample.center, float(sample.scale), extent,
                     resolution, truth)  # fmt: skip


def build_levelset_figure(models: Paths, samples: Paths, resolution: int = 256) -> Figure:
    """Rows = runs, columns = shapes: each trained 2D model's level sets against its shape's
    ground truth. A model without a given sample of its shape is an error."""
    by_shape = {}
    for path in samples:
        sample = load_sample(path)
        if sample.dim != 2:
            raise SteikError(f"{path}: plot-levelsets needs 2D samples, this one is {sample.dim}D")
        by_shape[Path(path).stem] = (sample, path)
    keys = [run_and_shape(p) for p in models]
    missing = sorted({s for _, s in keys} - set(by_shape))
    if missing:
        raise SteikError(f"no sample file given for shape(s) {', '.join(missing)}; pass --samples")
    if not keys:
        raise SteikError("no models to draw; pass --models")
    runs, shapes = grid(keys)
    fig = Figure(figsize=(PANEL_INCHES * len(shapes) + 0.6, PANEL_INCHES * len(runs) + 0.3))
    axes = fig.subplots(len(runs), len(shapes), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for path, (run, shape) in zip(models, keys, strict=True):
        sample, sample_path = by_shape[shape]
        network, meta = load_model(path)
        check_model_matches_sample(meta, sample, path, sample_path)
        ax = axes[runs.index(run)][shapes.index(shape)]
        ax.axis("on")
        draw_panel(ax, _panel_of_model(network, meta, sample, resolution))
    for j, shape in enumerate(shapes):
        axes[0][j].set_title(shape, fontsize=10)
    for i, run in enumerate(runs):
        axes[i][0].axis("on")
        axes[i][0].set_ylabel(run_label(run), fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def levelset_figure(models: Paths, samples: Paths, out: str | Path, resolution: int = 256) -> Path:
    """Write `build_levelset_figure` to `out` (an image path, checked first)."""
    check_figure_path(out)
    return save_figure(build_levelset_figure(models, samples, resolution), out)


def build_snapshot_figure(
    snapshot_paths: Paths, sample_path: str | Path, resolution: int = 192
) -> Figure:
    """The snapshot strip of one shape: a plot of the divergence-weight schedule with the
    snapshot points marked, then one row of level-set panels per run (`snapshots.pt` files)."""
    if not snapshot_paths:
        raise SteikError("no snapshot files to draw; pass --snapshots")
    sample = load_sample(sample_path)
    rows = []
    for path in snapshot_paths:
        networks, meta = load_snapshots(path)
        check_model_matches_sample(meta, sample, path, sample_path)
        config = meta.config
        panels = [_panel_of_model(n, meta, sample, resolution) for n in networks]
        fractions = [i / config.iterations for i in meta.iterations]
        rows.append((run_and_shape(path)[0], config, fractions, meta.w_div, panels))
    columns = max(len(r[4]) for r in rows)
    fig = Figure(figsize=(PANEL_INCHES * columns + 0.6, PANEL_INCHES * len(rows) + 1.4))
    layout = fig.add_gridspec(len(rows) + 1, columns, height_ratios=[0.45] + [1.0] * len(rows))
    top = fig.add_subplot(layout[0, :])
    t = np.linspace(0.0, 1.0, 201)
    for _, config, *_ in rows:
        if config.div != "none":
            schedule = WeightSchedule.from_knots(config.schedule, config.schedule_knots)
            top.plot(t, [schedule(v) for v in t], color="black", linewidth=1.2)
            break
    for f in rows[0][2]:
        top.axvline(f, color="0.6", linewidth=0.8, linestyle="--")
    top.set_xlim(0, 1)
    top.set_xlabel("training fraction", fontsize=8)
    top.set_ylabel("div weight", fontsize=8)
    top.tick_params(labelsize=7)
    for i, (run, _, fractions, weights, panels) in enumerate(rows):
        for j, panel in enumerate(panels):
            ax = fig.add_subplot(layout[i + 1, j])
            draw_panel(ax, panel)
            ax.set_title(f"t={fractions[j]:.2f}, w_div={weights[j]:g}", fontsize=7)
            if j == 0:
                ax.set_ylabel(run_label(run), fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def snapshot_figure(
    snapshot_paths: Paths, sample_path: str | Path, out: str | Path, resolution: int = 192
) -> Path:
    """Write `build_snapshot_figure` to `out` (an image path, checked first)."""
    check_figure_path(out)
    return save_figure(build_snapshot_figure(snapshot_paths, sample_path, resolution), out)
