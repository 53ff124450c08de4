"""Arrays of a shape's sample file from its geometry: simulated scans of meshes and exact 2D
curves with their ground truth, and the normalisation of real scans (SPEC 5).

`steik.data.sample` defines the file and its keys and picks, per kind of dataset, which of these
makes a shape's arrays. Every random draw comes from its own generator seeded from
`SampleConfig.seed`, so the same seed gives the same arrays, and changing one size (say
`n_gt`) leaves the other draws alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh

from steik import metrics
from steik.data import shapes2d
from steik.errors import SteikError


@dataclass(frozen=True)
class SampleConfig:
    """How to sample a shape with a ground-truth mesh or curve (real scans are used as given)."""

    n_points: int = 15_000
    """Points in the simulated scan (SPEC 9 uses 15,000 for 2D)."""
    noise: float = 0.0
    """Std of Gaussian scan noise, as a fraction of the ground truth's bounding-box diagonal."""
    n_gt: int = 100_000
    """Dense ground-truth surface samples for the metrics."""
    n_occ: int | None = None
    """IoU test points; None = 100,000 in 3D and a 256 x 256 grid in 2D (2D rounds to a square)."""
    seed: int = 0
    """Seed of every random draw: the same seed gives the same file."""
    occ_padding: float = 0.05
    """The IoU box is the ground truth's bounding box grown by this fraction of its largest side
    on every side."""
    near_fraction: float = 0.0
    """Share of the 3D IoU points drawn near the surface (surface samples + Gaussian offsets)."""
    near_sigma: float = 0.01
    """Std of the near-surface offsets, as a fraction of the bounding-box diagonal."""

    def __post_init__(self) -> None:
        for name in ("n_points", "n_gt"):
            if getattr(self, name) < 1:
                raise SteikError(
                    f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}"
                )
        if self.n_occ is not None and self.n_occ < 0:
            raise SteikError(f"--n-occ must be >= 0, got {self.n_occ}")
        if not (self.noise >= 0 and math.isfinite(self.noise)):
            raise SteikError(f"--noise must be a finite number >= 0, got {self.noise}")
        if self.seed < 0:
            raise SteikError(f"--seed must be 0 or more, got {self.seed}")
        if not 0.0 <= self.near_fraction <= 1.0:
            raise SteikError(f"near_fraction must lie in [0, 1], got {self.near_fraction}")
        for name in ("occ_padding", "near_sigma"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SteikError(f"{name} must be a finite number >= 0, got {value}")


def normalise(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """SPEC 5: `points [N, d]` -> (float32 `[N, d]` in [-1, 1]^d, center float64 `[d]`, scale).

    Computed in float64 so that the largest absolute coordinate is exactly 1 after rounding.
    """
    data = np.asarray(points, dtype=np.float64)
    center = data.mean(axis=0)
    centred = data - center
    scale = float(np.abs(centred).max())
    if not scale > 0:
        raise SteikError("cannot normalise a point cloud whose points are all equal")
    return (centred / scale).astype(np.float32), center, scale


def _streams(seed: int, count: int) -> list[np.random.Generator]:
    """Independent generators for the separate draws, so changing one size leaves others alone."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]


def _padded_box(points: np.ndarray, padding: float) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box `([d], [d])` of `points` grown by `padding` x its largest side on every side."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    margin = padding * float((hi - lo).max())
    return lo - margin, hi + margin


def _surface(
    mesh: trimesh.Trimesh, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`count` area-uniform surface samples `[count, 3]` and their face normals `[count, 3]`."""
    points, face_index = trimesh.sample.sample_surface(mesh, count, seed=rng)
    return np.asarray(points), np.asarray(mesh.face_normals[face_index])


def outward(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """A copy of `mesh` with consistent winding and outward normals (per connected piece).

    The IoU labels come from the winding number and the ground-truth normals from the faces, so
    a mesh exported inside out (flipped winding) would label every point outside and point
    every normal inward; trimesh re-orients it so that such a file gives the same sample as the
    correctly wound one."""
    oriented = mesh.copy()
    trimesh.repair.fix_normals(oriented, multibody=True)
    return oriented


def sample_mesh(mesh: trimesh.Trimesh, config: SampleConfig) -> dict[str, np.ndarray]:
    """Scan, ground truth and IoU arrays (see module docstring) of a watertight mesh.

    Returns `points`, `normals`, `center`, `scale`, `gt_points`, `gt_normals`, `occ_points`,
    `occ_labels` with the dtypes of the sample file.
    """
    if len(mesh.faces) == 0:
        raise SteikError("a mesh ground truth needs faces; this mesh has none")
    mesh = outward(mesh)
    scan_rng, noise_rng, gt_rng, occ_rng, near_rng = _streams(config.seed, 5)
    diagonal = float(np.linalg.norm(mesh.extents))
    scan, scan_normals = _surface(mesh, config.n_points, scan_rng)
    if config.noise > 0:
        scan = scan + noise_rng.normal(0.0, config.noise * diagonal, scan.shape)
    points, center, scale = normalise(scan)
    gt, gt_normals = _surface(mesh, config.n_gt, gt_rng)
    n_occ = 100_000 if config.n_occ is None else config.n_occ
    n_near = round(n_occ * config.near_fraction)
    lo, hi = _padded_box(np.asarray(mesh.vertices), config.occ_padding)
    occ = occ_rng.uniform(lo, hi, size=(n_occ - n_near, 3))
    if n_near:
        near, _ = _surface(mesh, n_near, near_rng)
        near = near + near_rng.normal(0.0, config.near_sigma * diagonal, near.shape)
        occ = np.concatenate([occ, near])
    arrays = _arrays(points, scan_normals, center, scale, gt, gt_normals)
    if n_occ > 0:  # --n-occ 0: no IoU points at all
        arrays["occ_points"] = occ
        arrays["occ_labels"] = metrics.inside_mesh(mesh.vertices, mesh.faces, occ)
    return arrays


def _arrays(
    points: np.ndarray,
    normals: np.ndarray,
    center: np.ndarray,
    scale: float,
    gt: np.ndarray,
    gt_normals: np.ndarray,
) -> dict[str, np.ndarray]:
    """The sample-file arrays of a shape with ground truth, in the file's dtypes."""
    return {
        "points": np.asarray(points, dtype=np.float32),
        "normals": normals.astype(np.float32),
        "center": center,
        "scale": np.float64(scale),
        "gt_points": gt.astype(np.float64),
        "gt_normals": gt_normals.astype(np.float32),
    }


def sample_curve(name: str, config: SampleConfig) -> dict[str, np.ndarray]:
    """The arrays of a 2D demo shape: SPEC 9 surface points (+ noise), exact curve samples, grid.

    The IoU grid is square, `round(sqrt(n_occ))` points a side (default 256), over the curve's
    padded bounding box, labelled by the exact signed distance's sign.
    """
    (noise_rng,) = _streams(config.seed, 1)
    scan, scan_normals = shapes2d.surface_points(name, config.n_points)
    gt, gt_normals = shapes2d.curve_samples(name, config.n_gt)
    diagonal = float(np.linalg.norm(gt.max(axis=0) - gt.min(axis=0)))
    if config.noise > 0:
        scan = scan + noise_rng.normal(0.0, config.noise * diagonal, scan.shape)
    # SPEC 9 defines the shapes, the off-surface square [-1.2, 1.2]^2 and the initial circle in
    # one frame (the shapes span about [-0.6, 0.6]); rescaling them to fill [-1, 1] as SPEC 5
    # does for scans would change their size relative to that square, to the sphere init and to
    # the sine frequencies, so the 2D shapes keep their own coordinates.
    points = scan.astype(np.float32)
    center, scale = np.zeros(2), 1.0
    side = 256 if config.n_occ is None else round(math.sqrt(config.n_occ))
    lo, hi = _padded_box(shapes2d.outline(name), config.occ_padding)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], side), np.linspace(lo[1], hi[1], side))
    occ = np.stack([gx.ravel(), gy.ravel()], axis=1)
    arrays = _arrays(points, scan_normals, center, scale, gt, gt_normals)
    if side > 0:  # --n-occ 0: no IoU grid
        arrays["occ_points"] = occ.astype(np.float32)
        arrays["occ_labels"] = shapes2d.signed_distance(name, arrays["occ_points"]) < 0
    return arrays


def scan_sample(points: np.ndarray, normals: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The arrays of a real scan used as given: normalised `points`, unit `normals` if known."""
    out: dict[str, np.ndarray] = {}
    out["points"], out["center"], scale = normalise(points)
    out["scale"] = np.float64(scale)
    if normals is not None:
        # the readers refuse zero-length normals, so every row can be scaled to unit length
        length = np.linalg.norm(normals, axis=1, keepdims=True)
        out["normals"] = (normals / length).astype(np.float32)
    return out
