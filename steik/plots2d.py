"""Figures of the 2D experiment, drawn like the paper's snowflake figure.

`levelset_figure`: rows = methods, columns = shapes; the zero level set bold black, a few other
level sets thin (blue inside, red outside), the exact curve dotted grey. `snapshot_figure`: for
one shape (the snowflake), the level sets of each method at several points of its training,
under a plot of the divergence-weight schedule with those points marked, so the effect of the
divergence term while it is on (and after it decays) can be seen.

Fields are evaluated on a grid in the normalised frame and drawn in the shape's original units.
Only matplotlib, numpy and torch are needed (the figures are also made on GPU machines).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from steik.data import shapes2d
from steik.errors import SteikError
from steik.fileio import atomic_path

LEVELS: tuple[float, ...] = (-0.15, -0.1, -0.05, 0.05, 0.1, 0.15, 0.2, 0.3)
"""Non-zero level sets drawn thin (original units)."""
PANEL_INCHES = 2.2
DPI = 100
METHOD_LABELS = {
    "siren_wo_n": "SIREN wo n", "digs": "DiGS (Lin + L_div)", "lin_lln": "Lin + L_L.n.",
    "qua_ldiv": "Qua + L_div", "steik": "StEik (Qua + L_L.n.)",
}  # fmt: skip


@dataclass
class Panel:
    """One network's field for drawing: `u [R, R]` in original units on `axis [R]` (original
    units, both directions), plus the shape it should match."""

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
    resolution: int = 256,
    extent: float = shapes2d.GRID_EXTENT,
    device: torch.device | str = "cpu",
    truth: np.ndarray | None = None,
) -> Panel:
    """Evaluate a K = 1 network on a `resolution^2` grid over [-extent, extent]^2 (normalised)."""
    points = shapes2d.grid(resolution, extent).astype(np.float32)
    u = network(torch.from_numpy(points).to(device)[None])[0].double().cpu().numpy()
    axis = np.linspace(-extent, extent, resolution)
    return Panel(
        shape=shape,
        axis_x=axis * scale + center[0],
        axis_y=axis * scale + center[1],
        values=u.reshape(resolution, resolution) * scale,
        truth=truth,
    )


def draw_panel(ax: plt.Axes, panel: Panel) -> None:
    """Level sets of one panel and the dotted ground truth, axes off, equal aspect."""
    values = np.where(np.isfinite(panel.values), panel.values, np.nan)
    ax.set_facecolor("white")
    if np.isfinite(values).any():
        negative = [v for v in LEVELS if v < 0]
        positive = [v for v in LEVELS if v > 0]
        ax.contour(
            panel.axis_x,
            panel.axis_y,
            values,
            levels=negative,
            colors="#3b6fb6",
            linewidths=0.5,
            alpha=0.7,
        )
        ax.contour(
            panel.axis_x,
            panel.axis_y,
            values,
            levels=positive,
            colors="#c8553d",
            linewidths=0.5,
            alpha=0.7,
        )
        if np.nanmin(values) < 0 < np.nanmax(values):
            ax.contour(
                panel.axis_x, panel.axis_y, values, levels=[0.0], colors="black", linewidths=1.6
            )
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


def _save(fig: plt.Figure, out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise SteikError(f"figure output {out} must end in .png")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=DPI)
    plt.close(fig)
    return out


def levelset_figure(
    panels: dict[tuple[str, str], Panel],
    out: str | Path,
    label: Callable[[str], str] = lambda method: METHOD_LABELS.get(method, method),
) -> Path:
    """Methods x shapes grid of level-set panels keyed by (method, shape) -> a PNG at `out`.

    Rows follow the order methods first appear in `panels`, columns the shapes'; a missing
    (method, shape) pair is left blank. `label` names a row.
    """
    if not panels:
        raise SteikError("no models to draw; pass --models")
    methods = list(dict.fromkeys(m for m, _ in panels))
    shapes = list(dict.fromkeys(s for _, s in panels))
    fig, axes = plt.subplots(
        len(methods),
        len(shapes),
        squeeze=False,
        figsize=(PANEL_INCHES * len(shapes) + 0.6, PANEL_INCHES * len(methods) + 0.3),
    )
    for i, method in enumerate(methods):
        for j, shape in enumerate(shapes):
            ax = axes[i][j]
            if (method, shape) in panels:
                draw_panel(ax, panels[(method, shape)])
            else:
                ax.axis("off")
            if i == 0:
                ax.set_title(shape, fontsize=10)
            if j == 0:
                ax.set_ylabel(label(method), fontsize=8)
    fig.tight_layout(pad=0.3)
    return _save(fig, out)


@dataclass
class SnapshotRow:
    """One method's snapshots of one shape: panels at training fractions, with the weights."""

    method: str
    fractions: list[float]
    w_div: list[float]
    panels: list[Panel]
    schedule: tuple[np.ndarray, np.ndarray]
    """(fractions `[T]`, divergence weight `[T]`) of the method's schedule, for the plot."""


def snapshot_figure(rows: Sequence[SnapshotRow], out: str | Path) -> Path:
    """The snapshot strip: a schedule plot on top, then one row of panels per method."""
    if not rows:
        raise SteikError("no snapshot files to draw; pass --snapshots")
    columns = max(len(r.panels) for r in rows)
    fig = plt.figure(figsize=(PANEL_INCHES * columns + 0.6, PANEL_INCHES * len(rows) + 1.4))
    grid = fig.add_gridspec(len(rows) + 1, columns, height_ratios=[0.45] + [1.0] * len(rows))
    top = fig.add_subplot(grid[0, :])
    for row in rows:
        if np.any(row.schedule[1] != 0):
            top.plot(row.schedule[0], row.schedule[1], color="black", linewidth=1.2)
            break
    marks = rows[0].fractions
    for f in marks:
        top.axvline(f, color="0.6", linewidth=0.8, linestyle="--")
    top.set_xlim(0, 1)
    top.set_xlabel("training fraction", fontsize=8)
    top.set_ylabel("div weight", fontsize=8)
    top.tick_params(labelsize=7)
    for i, row in enumerate(rows):
        for j, panel in enumerate(row.panels):
            ax = fig.add_subplot(grid[i + 1, j])
            draw_panel(ax, panel)
            ax.set_title(f"t={row.fractions[j]:.2f}, w_div={row.w_div[j]:g}", fontsize=7)
            if j == 0:
                ax.set_ylabel(METHOD_LABELS.get(row.method, row.method), fontsize=8)
    fig.tight_layout(pad=0.3)
    return _save(fig, out)


# ----------------------------------------------------------------------------- from files


def levelsets_from_models(
    model_paths: Sequence[str | Path],
    sample_paths: Sequence[str | Path],
    out: str | Path,
    resolution: int = 256,
    device: torch.device | str = "cpu",
) -> Path:
    """`steik experiment2d figure`: one panel per model (rows = methods, columns = shapes)."""
    from steik.experiment2d import match_samples, read_frame
    from steik.train import load_model

    panels: dict[tuple[str, str], Panel] = {}
    for model, sample in match_samples(model_paths, sample_paths):
        frame = read_frame(sample)
        network, meta = load_model(model, device)
        key = (str(meta["config"]["name"]), frame.shape)
        if key in panels:
            raise SteikError(f"two models of method {key[0]} on shape {key[1]}; pass one seed")
        panels[key] = panel_for(
            network, frame.shape, frame.center, frame.scale, resolution, device=device
        )
    return levelset_figure(panels, out)


def snapshots_from_files(
    snapshot_paths: Sequence[str | Path],
    out: str | Path,
    resolution: int = 192,
    device: torch.device | str = "cpu",
) -> Path:
    """`steik experiment2d snapshots`: the strip from `snapshots.pt` files (one per method)."""
    from steik.experiment2d import load_snapshots
    from steik.losses import WeightSchedule

    rows = []
    for path in snapshot_paths:
        networks, meta = load_snapshots(path)
        config = meta["config"]
        shape = str(meta["shape"])
        if shape not in shapes2d.SHAPES_2D:
            raise SteikError(f"{path}: shape {shape!r} has no exact curve to draw")
        schedule = WeightSchedule.from_knots(config["schedule"], config["schedule_knots"])
        t = np.linspace(0.0, 1.0, 201)
        weights = np.array([schedule(v) if config["div"] != "none" else 0.0 for v in t])
        iterations = int(config["iterations"])
        rows.append(
            SnapshotRow(
                method=str(config["name"]),
                fractions=[i / iterations for i in meta["iterations"]],
                w_div=[float(w) for w in meta["w_div"]],
                panels=[
                    panel_for(
                        n.to(device),
                        shape,
                        meta["center"],
                        float(meta["scale"]),
                        resolution,
                        device=device,
                    )
                    for n in networks
                ],
                schedule=(t, weights),
            )
        )
    return snapshot_figure(rows, out)
