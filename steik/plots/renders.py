"""Renders of 3D reconstructions next to their ground truth, made without a GL rasteriser.

The surface is sampled densely, projected orthographically, and a depth buffer keeps the nearest
sample per pixel, shaded by its normal (two-sided Lambert). That looks like a shaded surface at
figure sizes and runs anywhere. The first column shows the ground truth where a shape has a
ground-truth mesh (its samples and normals), and otherwise the scan itself as shaded points (SRB,
the scene, point-cloud folders): the scan's own normals, or normals estimated from its nearest
neighbours when it has none.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import trimesh
from matplotlib.figure import Figure
from scipy import ndimage
from scipy.spatial import cKDTree

from steik.data.sample import Sample, load_sample
from steik.errors import SteikError
from steik.methods import run_label
from steik.plots.figure import DPI, Paths, check_figure_path, grid, run_and_shape, save_figure


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


def render_frame(reference: np.ndarray) -> tuple[np.ndarray, float]:
    """Camera centre `[3]` and half-width of a shape's renders: the middle of its reference
    cloud's bounding box, and a square wide enough for that box seen from any direction."""
    lo, hi = reference.min(axis=0), reference.max(axis=0)
    return (lo + hi) / 2, 0.62 * float(np.linalg.norm(hi - lo))


def build_render_figure(
    meshes: Paths, samples: Paths, size: int = 240, n_points: int = 150_000
) -> Figure:
    """Rows = shapes, columns = ground truth (or the scan, `reference_cloud`) then one column per
    run, all from one view (`view_rotation()`) and, per shape, one frame (`render_frame`): each
    panel an image `[size, size]` of `render_points`."""
    if size < MIN_PANEL_SIZE:
        raise SteikError(
            f"--size {size}: a panel needs at least {MIN_PANEL_SIZE} pixels a side to show a "
            "shape; use the default 240"
        )
    by_shape = {Path(p).stem: load_sample(p) for p in samples}
    keys = [run_and_shape(p) for p in meshes]
    runs, shapes = grid(keys)
    missing = [s for s in shapes if s not in by_shape]
    if missing:
        raise SteikError(f"no sample file given for shape(s) {', '.join(missing)}; pass --samples")
    # Each panel shown at its own resolution (`size` pixels at the saved dpi), plus room for
    # titles and labels: a larger `size` gives a larger figure, not a downsampled one.
    inches = size / DPI + 0.35
    fig = Figure(figsize=(inches * (len(runs) + 1), inches * len(shapes)))
    axes = fig.subplots(len(shapes), len(runs) + 1, squeeze=False)
    frames, titles = {}, []
    for i, shape in enumerate(shapes):
        reference, normals, title = reference_cloud(by_shape[shape])
        titles.append(title)
        frames[shape] = render_frame(reference)
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
    return fig


def render_figure(
    meshes: Paths, samples: Paths, out: str | Path, size: int = 240, n_points: int = 150_000
) -> Path:
    """Write `build_render_figure` to `out` (an image path, checked first)."""
    check_figure_path(out)
    return save_figure(build_render_figure(meshes, samples, size, n_points), out)
