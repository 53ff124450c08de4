"""Figures of the report: 2D level sets, snapshots during training, renders of 3D
reconstructions, loss curves.

Everything is drawn offscreen with matplotlib's Agg backend (no display, no OpenGL).

2D level sets are drawn like the paper's snowflake figure: the zero level set bold black, a few
other level sets thin (blue inside, red outside), the exact curve dotted grey (or the ground
truth points for a shape without one), on the method's training domain, in original units. The
snapshot strip shows one shape's level sets at several points of each method's training under
a plot of the divergence-weight schedule, so the divergence term can be seen at work.

The 3D renders are made here rather than by a GL rasteriser: the surface is sampled densely,
projected orthographically, and a depth buffer keeps the nearest sample per pixel, shaded by its
normal (two-sided Lambert). That looks like a shaded surface at figure sizes and runs anywhere.
The first column shows the ground truth where a shape has a ground-truth mesh (its samples and
normals), and otherwise the scan itself as shaded points (SRB, the scene, point-cloud folders):
the scan's own normals, or normals estimated from its nearest neighbours when it has none.

Labels come from the workflow's paths: `.../<run>/<shape>/<file>` with `<run>` the method name
(suffixed `-seed<S>` for seeds other than 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import trimesh
from matplotlib.backend_bases import FigureCanvasBase
from scipy import ndimage
from scipy.spatial import cKDTree

from steik.data import shapes2d
from steik.data.sample import Sample, load_sample
from steik.errors import SteikError
from steik.fileio import atomic_path
from steik.methods import MethodConfig, run_label
from steik.model import check_model_matches_sample, load_model, load_snapshots
from steik.schedule import WeightSchedule

LEVELS: tuple[float, ...] = (-0.15, -0.1, -0.05, 0.05, 0.1, 0.15, 0.2, 0.3)
"""Non-zero level sets drawn thin (original units)."""
PANEL_INCHES = 2.2


def _run_and_shape(path: str | Path) -> tuple[str, str]:
    path = Path(path)
    return path.parent.parent.name, path.parent.name


def _grid(runs_shapes: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Distinct runs and shapes in order of first appearance."""
    runs = list(dict.fromkeys(r for r, _ in runs_shapes))
    shapes = list(dict.fromkeys(s for _, s in runs_shapes))
    return runs, shapes


def _save(fig: plt.Figure, out: str | Path, dpi: int = 100) -> Path:
    """Write `fig` to `out` atomically, in the format its extension names."""
    check_figure_path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    return Path(out)


def check_figure_path(out: str | Path) -> None:
    """Refuse an output path whose extension names no image format matplotlib writes (without
    one, matplotlib would pick PNG and the atomic rename would still fail on the suffix)."""
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise SteikError(
            f"--out {out}: the figure's format comes from its extension; end the path in .png "
            f"(or one of {', '.join('.' + f for f in sorted(formats))})"
        )


# ------------------------------------------------------------------ 2D level sets


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


def draw_panel(ax: plt.Axes, panel: Panel) -> None:
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


def _panel_of_model(network: torch.nn.Module, meta: dict, sample, resolution: int) -> Panel:
    """The panel of a trained 2D network over its training domain."""
    exact = shapes2d.exact_curve(sample)
    truth = None
    if exact is None and sample.gt_points is not None:
        truth = sample.gt_points[:: max(1, len(sample.gt_points) // 2000)]
    extent = MethodConfig.from_dict(meta["config"]).offsurface_extent
    return panel_for(network, exact or sample.shape, sample.center, float(sample.scale), extent,
                     resolution, truth)  # fmt: skip


def levelset_figure(
    models: Sequence[str | Path],
    samples: Sequence[str | Path],
    out: str | Path,
    resolution: int = 256,
) -> Path:
    """Rows = runs, columns = shapes: each trained 2D model's level sets against its shape's
    ground truth. A model without a given sample of its shape is an error."""
    by_shape = {}
    for path in samples:
        sample = load_sample(path)
        if sample.dim != 2:
            raise SteikError(f"{path}: plot-levelsets needs 2D samples, this one is {sample.dim}D")
        by_shape[Path(path).stem] = (sample, path)
    keys = [_run_and_shape(p) for p in models]
    missing = sorted({s for _, s in keys} - set(by_shape))
    if missing:
        raise SteikError(f"no sample file given for shape(s) {', '.join(missing)}; pass --samples")
    if not keys:
        raise SteikError("no models to draw; pass --models")
    runs, shapes = _grid(keys)
    fig, axes = plt.subplots(
        len(runs), len(shapes), squeeze=False,
        figsize=(PANEL_INCHES * len(shapes) + 0.6, PANEL_INCHES * len(runs) + 0.3),
    )  # fmt: skip
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
    return _save(fig, out)


def snapshot_figure(
    snapshot_paths: Sequence[str | Path],
    sample_path: str | Path,
    out: str | Path,
    resolution: int = 192,
) -> Path:
    """The snapshot strip of one shape: a plot of the divergence-weight schedule with the
    snapshot points marked, then one row of level-set panels per run (`snapshots.pt` files)."""
    if not snapshot_paths:
        raise SteikError("no snapshot files to draw; pass --snapshots")
    sample = load_sample(sample_path)
    rows = []
    for path in snapshot_paths:
        networks, meta = load_snapshots(path)
        check_model_matches_sample(meta, sample, path, sample_path)
        config = MethodConfig.from_dict(meta["config"])
        panels = [_panel_of_model(n, meta, sample, resolution) for n in networks]
        fractions = [i / config.iterations for i in meta["iterations"]]
        rows.append((_run_and_shape(path)[0], config, fractions, meta["w_div"], panels))
    columns = max(len(r[4]) for r in rows)
    fig = plt.figure(figsize=(PANEL_INCHES * columns + 0.6, PANEL_INCHES * len(rows) + 1.4))
    grid = fig.add_gridspec(len(rows) + 1, columns, height_ratios=[0.45] + [1.0] * len(rows))
    top = fig.add_subplot(grid[0, :])
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
            ax = fig.add_subplot(grid[i + 1, j])
            draw_panel(ax, panel)
            ax.set_title(f"t={fractions[j]:.2f}, w_div={weights[j]:g}", fontsize=7)
            if j == 0:
                ax.set_ylabel(run_label(run), fontsize=8)
    fig.tight_layout(pad=0.3)
    return _save(fig, out)


# ------------------------------------------------------------------ 3D renders


def view_rotation(elevation: float = 25.0, azimuth: float = 35.0) -> np.ndarray:
    """Rotation `[3, 3]` taking world coordinates to camera coordinates (x right, y up, z
    towards the viewer) for a camera at `elevation` / `azimuth` degrees, z up in the world."""
    a, e = math.radians(azimuth), math.radians(elevation)
    rz = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    # World z (up) becomes camera y; world -y (after the azimuth turn) faces the viewer.
    to_camera = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)
    rx = np.array([[1, 0, 0], [0, math.cos(e), -math.sin(e)], [0, math.sin(e), math.cos(e)]])
    return rx @ to_camera @ rz


def render_points(
    points: np.ndarray,
    normals: np.ndarray | None,
    center: np.ndarray,
    radius: float,
    size: int,
    rotation: np.ndarray | None = None,
    splat: int | None = None,
) -> np.ndarray:
    """Shaded depth-buffer image `[size, size]` in [0, 1] (1 = background) of surface samples.

    `points [P, 3]`, `normals [P, 3]` (None: flat grey); the orthographic camera looks at
    `center` and shows a square of half-width `radius`. Each sample covers `splat x splat`
    pixels (None: from the sample density, so sparse clouds still look closed); per pixel the
    sample nearest the camera wins. Pinholes left between samples are then filled from their
    neighbours.
    """
    rotation = view_rotation() if rotation is None else rotation
    image = np.ones((size, size), dtype=np.float64)
    if len(points) == 0:
        return image
    cam = (np.asarray(points, dtype=np.float64) - center) @ rotation.T
    px = np.floor((cam[:, 0] / radius + 1.0) * 0.5 * size).astype(np.int64)
    py = np.floor((1.0 - cam[:, 1] / radius) * 0.5 * size).astype(np.int64)
    if normals is None:
        shade = np.full(len(cam), 0.6)
    else:
        n = np.asarray(normals, dtype=np.float64) @ rotation.T
        n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
        light = np.array([-0.35, 0.5, 0.8])
        light /= np.linalg.norm(light)
        shade = 0.15 + 0.75 * np.abs(n @ light)
    depth = -cam[:, 2]  # smaller = nearer the viewer
    if splat is None:
        # About half the samples face the camera; splat them over ~4x the silhouette (~30% of
        # the image) so that few pixels stay uncovered (e^-4).
        splat = int(min(6, max(2, math.ceil(math.sqrt(1.2 * size * size / max(len(cam) / 2, 1))))))
    offsets = [(dx, dy) for dx in range(splat) for dy in range(splat)]
    all_x = np.concatenate([px + dx for dx, _ in offsets])
    all_y = np.concatenate([py + dy for _, dy in offsets])
    all_depth = np.tile(depth, len(offsets))
    all_shade = np.tile(shade, len(offsets))
    inside = (all_x >= 0) & (all_x < size) & (all_y >= 0) & (all_y < size)
    pixel = all_y[inside] * size + all_x[inside]
    order = np.argsort(all_depth[inside], kind="stable")
    first = np.unique(pixel[order], return_index=True)[1]
    winners = order[first]
    image.ravel()[pixel[winners]] = all_shade[inside][winners]
    return _fill_pinholes(image)


def _fill_pinholes(image: np.ndarray, passes: int = 2) -> np.ndarray:
    """Background pixels with at least 6 of 8 foreground neighbours take their mean shade."""
    kernel = np.ones((3, 3))
    kernel[1, 1] = 0
    for _ in range(passes):
        foreground = image < 1.0
        count = ndimage.convolve(foreground.astype(np.float64), kernel, mode="constant")
        total = ndimage.convolve(np.where(foreground, image, 0.0), kernel, mode="constant")
        holes = ~foreground & (count >= 6)
        if not holes.any():
            break
        image = image.copy()
        image[holes] = total[holes] / count[holes]
    return image


def _mesh_samples(path: str | Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted samples `[P, 3]` of a mesh file and their face normals (empty if no faces)."""
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as error:
        raise SteikError(f"{path}: unreadable mesh ({error}); rerun `steik extract`") from None
    if len(mesh.faces) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3))
    points, faces = trimesh.sample.sample_surface(mesh, count, seed=0)
    return np.asarray(points), np.asarray(mesh.face_normals[faces])


def estimated_normals(points: np.ndarray, k: int = 12) -> np.ndarray:
    """Unit normals `[P, 3]` of a point cloud: per point, the direction of least variance of its
    `k` nearest neighbours (unoriented: the renders' two-sided shading needs no orientation)."""
    points = np.asarray(points, dtype=np.float64)
    k = min(k, len(points))
    _, index = cKDTree(points).query(points, k=k)
    neighbours = points[index.reshape(len(points), k)]
    centred = neighbours - neighbours.mean(axis=1, keepdims=True)
    _, vectors = np.linalg.eigh(np.einsum("pki,pkj->pij", centred, centred))
    return vectors[:, :, 0]  # eigenvalues ascend: the first vector spans the least variance


def reference_cloud(sample: Sample) -> tuple[np.ndarray, np.ndarray, str]:
    """Points, normals and title of a shape's first render column, original units: the ground
    truth's samples where it comes from a mesh or curve (it has normals), else the scan itself
    with its own normals or, lacking those, estimated ones."""
    if sample.gt_points is not None and sample.gt_normals is not None:
        return sample.gt_points, sample.gt_normals, "ground truth"
    points = sample.to_original(sample.points)
    normals = sample.normals if sample.normals is not None else estimated_normals(points)
    return points, normals, "scan"


MIN_PANEL_SIZE = 16
"""Smallest render panel (pixels a side): below it a shape is a few dots, at 0 a blank figure."""


def render_figure(
    meshes: Sequence[str | Path],
    samples: Sequence[str | Path],
    out: str | Path,
    size: int = 240,
    n_points: int = 150_000,
) -> Path:
    """Rows = shapes, columns = ground truth (or the scan, `reference_cloud`) then one column per
    method, all from one view."""
    if size < MIN_PANEL_SIZE:
        raise SteikError(
            f"--size {size}: a panel needs at least {MIN_PANEL_SIZE} pixels a side to show a "
            "shape; use the default 240"
        )
    check_figure_path(out)
    by_shape = {Path(p).stem: load_sample(p) for p in samples}
    keys = [_run_and_shape(p) for p in meshes]
    runs, shapes = _grid(keys)
    missing = [s for s in shapes if s not in by_shape]
    if missing:
        raise SteikError(f"no sample file given for shape(s) {', '.join(missing)}; pass --samples")
    fig, axes = plt.subplots(
        len(shapes),
        len(runs) + 1,
        figsize=(1.9 * (len(runs) + 1), 1.9 * len(shapes)),
        squeeze=False,
    )
    frames, titles = {}, []
    for i, shape in enumerate(shapes):
        reference, normals, title = reference_cloud(by_shape[shape])
        titles.append(title)
        lo, hi = reference.min(axis=0), reference.max(axis=0)
        frames[shape] = ((lo + hi) / 2, 0.62 * float(np.linalg.norm(hi - lo)))
        image = render_points(reference, normals, *frames[shape], size=size)
        axes[i, 0].imshow(image, cmap="gray", vmin=0, vmax=1)
    for path, (run, shape) in zip(meshes, keys, strict=True):
        i = shapes.index(shape)
        points, normals = _mesh_samples(path, n_points)
        ax = axes[i, runs.index(run) + 1]
        ax.imshow(
            render_points(points, normals, *frames[shape], size=size), cmap="gray", vmin=0, vmax=1
        )
        if len(points) == 0:
            ax.text(0.5, 0.5, "no surface", ha="center", va="center", transform=ax.transAxes)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    for i, shape in enumerate(shapes):
        axes[i, 0].set_ylabel(shape)
    axes[0, 0].set_title(" / ".join(dict.fromkeys(titles)))
    for j, run in enumerate(runs):
        axes[0, j + 1].set_title(run_label(run))
    fig.tight_layout()
    return _save(fig, out)


# ------------------------------------------------------------------ loss curves


def _read_logs(logs: Sequence[str | Path]) -> dict[Path, pd.DataFrame]:
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


def loss_curves(logs: Sequence[str | Path], term: str) -> dict[str, pd.DataFrame]:
    """Per run whose logs have `term`: `term` against the iteration aggregated over shapes, a
    frame with columns iteration, median, min, max (shapes logged at different iterations are
    aligned on the iterations they share)."""
    per_run: dict[str, list[pd.Series]] = {}
    for path, frame in _read_logs(logs).items():
        if term not in frame.columns:
            continue
        run, shape = _run_and_shape(path)
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


def loss_figure(logs: Sequence[str | Path], out: str | Path) -> Path:
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
    fig, axes = plt.subplots(1, len(terms), figsize=(3.2 * len(terms), 3.0), squeeze=False)
    axes = axes[0]
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
    return _save(fig, out)
