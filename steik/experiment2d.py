"""The 2D experiment of the paper's figure: level sets of L_div vs L_L.n. on the SPEC 9 shapes.

Five methods (`siren_wo_n`, `digs`, `lin_lln`, `qua_ldiv`, `steik`) are trained on the circle,
the L and the Koch snowflake, several seeds each; every trained network is scored against the
exact curve, and the scores are aggregated over seeds per method x shape.

Per run (`analyse`), everything on one regular grid over [-extent, extent]^2 of the normalised
frame (SPEC 9's off-surface domain), distances in the sample's original units:
- `chamfer`, `hausdorff`: between the zero contour (marching squares) and the exact curve.
  Contour -> curve distances are exact (|exact signed distance| at length-uniform contour
  samples); curve -> contour distances go from dense arc-length curve samples to a densified
  contour (KD-tree). Chamfer = 1/2 (mean + mean), Hausdorff = the larger maximum (SPEC 7).
- `iou`: network inside (u < 0) against the exact inside, at the grid points.
- `eikonal`: mean | |grad u| - 1 | over the grid points (autograd gradients).
- `n_components`: connected pieces of the zero contour; `spurious`: all but one of them (each
  SPEC 9 shape is a single closed curve, so every extra piece is spurious).
- corner sharpness, polygons only (NaN for the circle): for every vertex of the true polygon,
  the distance from the vertex to the zero contour. A corner of interior angle theta rounded
  off with radius rho misses its vertex by rho (1 / sin(theta / 2) - 1), so this distance is
  the rounding a divergence term causes, zero for a perfectly sharp corner. `corner` is the
  mean over all vertices, `corner_convex` / `corner_concave` over the convex (interior angle <
  180 degrees) and concave ones.

Training (`train_run`) trains the shapes of one (method, seed) as one K-batch with the core
trainer and additionally records the network at chosen training fractions (`snapshots.pt`
beside each `model.pt`), so the divergence-weight schedule can be shown at work.

Only torch, numpy, scipy, scikit-image and pandas are needed here (no trimesh or
point-cloud-utils), so the experiment also runs on machines that hold just those.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.spatial import cKDTree
from skimage import measure

from steik.data import shapes2d
from steik.errors import SteikError
from steik.fileio import atomic_path
from steik.methods import METHODS, MethodConfig, preset
from steik.nn import SDFNetwork

EXPERIMENT_METHODS: tuple[str, ...] = ("siren_wo_n", "digs", "lin_lln", "qua_ldiv", "steik")
"""The rows of the 2D experiment (no IGR: the paper's figure compares the divergences)."""

SNAPSHOT_FORMAT = "steik-snapshots/1"
DEFAULT_SNAPSHOT_FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 1.0)
"""Training fractions recorded for the snapshot strip: full divergence weight (0.1, 0.2), half
way down its linear decay (0.3), weight just reached zero (0.4), the end (1.0)."""

RUN_COLUMNS: tuple[str, ...] = (
    "dataset", "shape", "method", "seed", "neuron", "structure", "div", "n_params",
    "iterations", "n_points", "chamfer", "hausdorff", "iou", "eikonal", "n_components",
    "spurious", "corner", "corner_convex", "corner_concave", "train_seconds", "ms_per_iter",
    "device", "config_hash", "status", "message",
)  # fmt: skip
"""Columns of `results/tables/2d.parquet`, one row per (method, shape, seed)."""

METRICS: tuple[str, ...] = (
    "chamfer", "hausdorff", "iou", "eikonal", "n_components", "spurious", "corner",
    "corner_convex", "corner_concave",
)  # fmt: skip
"""Per-run metrics aggregated over seeds."""


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Scale:
    """Size of the 2D runs: the fields of SPEC 9's reference settings that a CPU must shrink.

    Defaults are SPEC 9's reference (5 x 128 linear, 4 x 128 quadratic, 10,000 iterations,
    15,000 + 15,000 points); `None` keeps the method preset's value.
    """

    iterations: int | None = None
    n_points: int | None = None
    """Manifold and off-surface points per iteration (each)."""
    layers: int | None = None
    hidden_linear: int | None = None
    hidden_quadratic: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Any further MethodConfig fields (e.g. `lr`, `log_every`), for every method."""

    def method_config(self, method: str) -> MethodConfig:
        """`preset(method, "2d")` with this scale applied."""
        base = preset(method, "2d")
        overrides: dict[str, Any] = {}
        if self.iterations is not None:
            overrides["iterations"] = self.iterations
        if self.n_points is not None:
            overrides["n_manifold"] = overrides["n_offsurface"] = self.n_points
        if self.layers is not None:
            overrides["layers"] = self.layers
        hidden = self.hidden_quadratic if base.neuron == "quadratic" else self.hidden_linear
        if hidden is not None:
            overrides["hidden"] = hidden
        overrides.update(self.extra)
        return preset(method, "2d", **overrides)


@dataclass(frozen=True)
class AnalysisConfig:
    """How a trained 2D network is scored."""

    resolution: int = 512
    """Grid samples per axis over [-extent, extent]^2 (normalised frame)."""
    extent: float = shapes2d.GRID_EXTENT
    """Half-width of the analysis square in the normalised frame (SPEC 9: 1.2)."""
    n_curve: int = 20_000
    """Arc-length samples of the exact curve (curve -> contour distances)."""
    chunk: int = 65_536
    """Grid points per network call (bounds the memory of the gradient pass)."""

    def __post_init__(self) -> None:
        if self.resolution < 8:
            raise SteikError(f"analysis resolution must be at least 8, got {self.resolution}")
        if not (self.extent > 0 and math.isfinite(self.extent)):
            raise SteikError(f"analysis extent must be a positive number, got {self.extent}")
        if self.n_curve < 1 or self.chunk < 1:
            raise SteikError("n_curve and chunk must be positive")


# ----------------------------------------------------------------------------- grid fields


def grid_axis(config: AnalysisConfig) -> np.ndarray:
    """Coordinates `[R]` of the analysis grid along either axis (normalised frame)."""
    return np.linspace(-config.extent, config.extent, config.resolution)


def field_on_grid(
    network: SDFNetwork,
    config: AnalysisConfig,
    device: torch.device | str = "cpu",
    with_gradient: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """u and |grad u| of a K = 1 network on the analysis grid -> two float64 `[R, R]` images
    (y along the first axis, x along the second); the gradient is None without
    `with_gradient` (a forward pass only)."""
    points = shapes2d.grid(config.resolution, config.extent).astype(np.float32)
    u = np.empty(len(points))
    gradient = np.empty(len(points)) if with_gradient else None
    for lo in range(0, len(points), config.chunk):
        x = torch.from_numpy(points[lo : lo + config.chunk]).to(device)[None]
        with torch.set_grad_enabled(with_gradient):
            x.requires_grad_(with_gradient)
            value = network(x)
            if gradient is not None:
                (grad,) = torch.autograd.grad(value.sum(), x)
                gradient[lo : lo + x.shape[1]] = grad[0].norm(dim=-1).double().cpu().numpy()
        u[lo : lo + x.shape[1]] = value[0].detach().double().cpu().numpy()
    shape = (config.resolution, config.resolution)
    return u.reshape(shape), None if gradient is None else gradient.reshape(shape)


def zero_contours(values: np.ndarray, axis: np.ndarray) -> list[np.ndarray]:
    """Zero level set of an image `values [R, R]` sampled at `axis [R]` in both directions ->
    one polyline `[n, 2]` (x, y) per connected piece (closed pieces repeat their first point).

    Marching squares (scikit-image). Empty when the values do not change sign.
    """
    if not np.isfinite(values).all() or not (values.min() < 0 < values.max()):
        return []
    spacing = float(axis[1] - axis[0])
    lines = []
    for line in measure.find_contours(values, 0.0):
        if len(line) >= 2:
            lines.append(
                np.stack([axis[0] + line[:, 1] * spacing, axis[0] + line[:, 0] * spacing], 1)
            )
    return lines


# ----------------------------------------------------------------------------- curve metrics


def resample_polylines(lines: Sequence[np.ndarray], spacing: float) -> np.ndarray:
    """Points `[M, 2]` along every polyline at most `spacing` apart (vertices included)."""
    out = []
    for line in lines:
        start, end = line[:-1], line[1:]
        length = np.linalg.norm(end - start, axis=1)
        steps = np.maximum(np.ceil(length / spacing).astype(np.int64), 1)
        t = np.concatenate([np.arange(n) / n for n in steps])
        index = np.repeat(np.arange(len(start)), steps)
        out.append(start[index] + t[:, None] * (end - start)[index])
        out.append(line[-1:])
    return np.concatenate(out) if out else np.zeros((0, 2))


def length_samples(lines: Sequence[np.ndarray], count: int) -> np.ndarray:
    """`count` points `[count, 2]` evenly spaced in arc length over all polylines together
    (deterministic: midpoints of equal steps)."""
    segments = [np.stack([line[:-1], line[1:]], axis=1) for line in lines]
    seg = np.concatenate(segments)  # [E, 2 (ends), 2 (xy)]
    length = np.linalg.norm(seg[:, 1] - seg[:, 0], axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(length)])
    s = (np.arange(count) + 0.5) / count * cumulative[-1]
    index = np.clip(np.searchsorted(cumulative, s, side="right") - 1, 0, len(seg) - 1)
    t = ((s - cumulative[index]) / np.where(length[index] > 0, length[index], 1.0))[:, None]
    return seg[index, 0] + t * (seg[index, 1] - seg[index, 0])


def segment_distance(
    points: np.ndarray, lines: Sequence[np.ndarray], chunk: int = 4096
) -> np.ndarray:
    """Exact distance `[N]` from each of `points [N, 2]` to the nearest segment of `lines`."""
    seg = np.concatenate([np.stack([line[:-1], line[1:]], axis=1) for line in lines])
    start, edge = seg[:, 0], seg[:, 1] - seg[:, 0]
    length2 = np.maximum((edge**2).sum(axis=1), np.finfo(np.float64).tiny)
    out = np.empty(len(points))
    for lo in range(0, len(points), chunk):
        rel = points[lo : lo + chunk, None, :] - start[None]  # [n, E, 2]
        t = np.clip((rel * edge[None]).sum(axis=2) / length2[None], 0.0, 1.0)
        out[lo : lo + chunk] = np.sqrt(
            ((rel - t[..., None] * edge[None]) ** 2).sum(axis=2).min(axis=1)
        )
    return out


def curve_distances(
    lines: Sequence[np.ndarray], shape: str, n_curve: int, spacing: float
) -> dict[str, float]:
    """Chamfer and Hausdorff between polylines (original units) and the exact curve of `shape`.

    `spacing` bounds the gap between contour samples; it should be well below the grid step.
    """
    if not lines:
        return {"chamfer": math.nan, "hausdorff": math.nan}
    dense = resample_polylines(lines, spacing)
    to_curve = np.abs(shapes2d.signed_distance(shape, dense))
    curve, _ = shapes2d.curve_samples(shape, n_curve)
    to_contour, _ = cKDTree(dense).query(curve)
    return {
        "chamfer": float(0.5 * (to_curve.mean() + to_contour.mean())),
        "hausdorff": float(max(to_curve.max(), to_contour.max())),
    }


def interior_angles(vertices: np.ndarray) -> np.ndarray:
    """Interior angle `[V]` (radians, in (0, 2 pi)) at each vertex of a CCW polygon `[V, 2]`."""
    incoming = vertices - np.roll(vertices, 1, axis=0)
    outgoing = np.roll(vertices, -1, axis=0) - vertices
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    dot = (incoming * outgoing).sum(axis=1)
    turn = np.arctan2(cross, dot)  # > 0: left turn = convex corner of a CCW polygon
    return math.pi - turn


def corner_errors(lines: Sequence[np.ndarray], vertices: np.ndarray) -> dict[str, float]:
    """Corner sharpness of polylines against a CCW polygon `vertices [V, 2]` (original units).

    Distance from each true vertex to the nearest contour segment, averaged over all vertices
    (`corner`), the convex ones and the concave ones (NaN where there are none).
    """
    nan = {"corner": math.nan, "corner_convex": math.nan, "corner_concave": math.nan}
    if not lines:
        return nan
    distance = segment_distance(vertices, lines)
    convex = interior_angles(vertices) < math.pi
    out = {"corner": float(distance.mean())}
    out["corner_convex"] = float(distance[convex].mean()) if convex.any() else math.nan
    out["corner_concave"] = float(distance[~convex].mean()) if (~convex).any() else math.nan
    return out


def count_components(lines: Sequence[np.ndarray], expected: int = 1) -> tuple[int, int]:
    """(connected pieces of the zero contour, spurious pieces = those beyond `expected`)."""
    return len(lines), max(0, len(lines) - expected)


@functools.lru_cache(maxsize=8)
def exact_inside(
    shape: str, resolution: int, extent: float, center: tuple[float, ...], scale: float
) -> np.ndarray:
    """bool `[R, R]`: analysis grid points inside the exact curve (cached: every run of a shape
    shares its grid, and the polygon distance is the slow part of the scoring)."""
    points = shapes2d.grid(resolution, extent) * scale + np.asarray(center)
    inside = shapes2d.signed_distance(shape, points).reshape(resolution, resolution) < 0
    inside.flags.writeable = False
    return inside


# ----------------------------------------------------------------------------- one run


@dataclass(frozen=True)
class SampleFrame:
    """What the analysis needs of a sample file: identity, frame and the training points' digest."""

    dataset: str
    shape: str
    center: np.ndarray
    """float64 `[2]`: original = normalised * scale + center."""
    scale: float
    digest: str
    """`array_digest` of the training points (the model file records the same)."""


def read_frame(path: str | Path) -> SampleFrame:
    """Read the frame of a 2D sample file with plain numpy (the sample-file contract's keys)."""
    from steik.fileio import array_digest

    path = Path(path)
    if not path.is_file():
        raise SteikError(f"sample file {path} does not exist; create it with `steik sample demo2d`")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("points", "center", "scale", "dataset", "shape")}
    except Exception as error:  # missing keys or a damaged archive
        raise SteikError(
            f"sample file {path} is unreadable ({error}); run `steik sample` again"
        ) from None
    points = np.asarray(arrays["points"])
    if points.ndim != 2 or points.shape[1] != 2:
        raise SteikError(
            f"sample file {path} holds {points.shape} points; the 2D experiment needs [N, 2]"
        )
    return SampleFrame(
        dataset=str(arrays["dataset"]),
        shape=str(arrays["shape"]),
        center=np.asarray(arrays["center"], dtype=np.float64).reshape(2),
        scale=float(arrays["scale"]),
        digest=array_digest(points),
    )


def analyse_field(
    values: np.ndarray,
    gradient_norm: np.ndarray | None,
    shape: str,
    center: np.ndarray,
    scale: float,
    config: AnalysisConfig,
) -> dict[str, float]:
    """Every metric of the module docstring from a field on the analysis grid.

    `values [R, R]` is u (normalised frame), `gradient_norm [R, R]` |grad u| (None: eikonal NaN);
    `center [2]`, `scale` map the normalised frame to the shape's original units.
    """
    axis = grid_axis(config)
    center = np.asarray(center, dtype=np.float64)
    lines = [line * scale + center for line in zero_contours(values, axis)]
    spacing = float(axis[1] - axis[0]) * scale / 16.0  # KD-tree error <= half of it
    out: dict[str, float] = dict(curve_distances(lines, shape, config.n_curve, spacing))
    truth = exact_inside(shape, config.resolution, config.extent, tuple(center), float(scale))
    predicted = values < 0
    union = np.count_nonzero(predicted | truth)
    out["iou"] = float(np.count_nonzero(predicted & truth) / union) if union else math.nan
    out["eikonal"] = (
        float(np.abs(gradient_norm - 1.0).mean()) if gradient_norm is not None else math.nan
    )
    out["n_components"], out["spurious"] = count_components(lines)
    polygon = shapes2d.get_shape(shape)
    if polygon.is_circle:
        out.update(corner=math.nan, corner_convex=math.nan, corner_concave=math.nan)
    else:
        out.update(corner_errors(lines, polygon.vertices))
    return out


def analyse(
    model_path: str | Path,
    sample_path: str | Path,
    config: AnalysisConfig = AnalysisConfig(),
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """The row (`RUN_COLUMNS`) of one trained 2D model, scored against its exact curve."""
    from steik.train import load_model

    frame = read_frame(sample_path)
    network, meta = load_model(model_path, device)
    if int(meta.get("dim", 0)) != 2:
        raise SteikError(f"{model_path}: a {meta.get('dim')}D model; the 2D experiment needs 2D")
    if frame.shape not in shapes2d.SHAPES_2D:
        raise SteikError(
            f"{sample_path}: shape {frame.shape!r} has no exact curve; the 2D experiment scores "
            f"only {', '.join(shapes2d.SHAPES_2D)} (make them with `steik sample demo2d SHAPE`)"
        )
    if meta.get("points_digest") != frame.digest:
        raise SteikError(
            f"model {model_path} was not trained on the points of {sample_path}; pass the sample "
            "file it was trained on"
        )
    values, gradient_norm = field_on_grid(network, config, device)
    status, message = str(meta.get("status", "ok")), str(meta.get("message") or "")
    if not (np.isfinite(values).all() and np.isfinite(gradient_norm).all()):
        status = "diverged"
        message = (message + "; " if message else "") + "non-finite network output on the grid"
        metrics = dict.fromkeys(METRICS, math.nan)
    else:
        metrics = analyse_field(
            values, gradient_norm, frame.shape, frame.center, frame.scale, config
        )
        if status == "ok" and metrics["n_components"] == 0:
            status, message = "no_surface", "u has no zero crossing on the analysis grid"
    cfg = dict(meta.get("config", {}))
    row = {
        "dataset": frame.dataset,
        "shape": frame.shape,
        "method": str(cfg.get("name", "")),
        "seed": int(meta.get("seed", 0)),
        "neuron": str(cfg.get("neuron", "")),
        "structure": f"{cfg.get('layers')} x {cfg.get('hidden')}",
        "div": str(cfg.get("div", "")),
        "n_params": int(meta.get("n_params", 0)),
        "iterations": int(meta.get("iterations", 0)),
        "n_points": int(cfg.get("n_manifold", 0)) + int(cfg.get("n_offsurface", 0)),
        **metrics,
        "train_seconds": float(meta.get("train_seconds", math.nan)),
        "ms_per_iter": float(meta.get("ms_per_iter", math.nan)),
        "device": str(meta.get("device", "")),
        "config_hash": str(meta.get("config_hash", "")),
        "status": status,
        "message": message,
    }
    return {column: row[column] for column in RUN_COLUMNS}


SNAPSHOT_COLUMNS: tuple[str, ...] = (
    "shape", "method", "seed", "fraction", "iteration", "w_div", "chamfer", "hausdorff", "iou",
    "n_components", "spurious", "corner", "corner_convex", "corner_concave",
)  # fmt: skip
"""Columns of `results/tables/2d_snapshots.parquet`, one row per (method, shape, seed, snapshot)."""


def analyse_snapshots(
    snapshot_path: str | Path,
    sample_path: str | Path,
    config: AnalysisConfig = AnalysisConfig(),
    device: torch.device | str = "cpu",
) -> list[dict[str, Any]]:
    """Rows (`SNAPSHOT_COLUMNS`) scoring every snapshot of a run (the eikonal residual, which
    needs gradients, is left out: the snapshots show how the shape forms)."""
    frame = read_frame(sample_path)
    networks, meta = load_snapshots(snapshot_path)
    if meta.get("points_digest") != frame.digest:
        raise SteikError(
            f"snapshots {snapshot_path} were not trained on the points of {sample_path}; pass the "
            "sample file they were trained on"
        )
    iterations = int(meta["config"]["iterations"])
    rows = []
    for network, iteration, weight in zip(networks, meta["iterations"], meta["w_div"], strict=True):
        values, _ = field_on_grid(network.to(device), config, device, with_gradient=False)
        if np.isfinite(values).all():
            metrics = analyse_field(values, None, frame.shape, frame.center, frame.scale, config)
        else:
            metrics = dict.fromkeys(METRICS, math.nan)
        row = {
            "shape": frame.shape,
            "method": str(meta["config"]["name"]),
            "seed": int(meta["seed"]),
            "fraction": iteration / iterations,
            "iteration": int(iteration),
            "w_div": float(weight),
            **metrics,
        }
        rows.append({column: row[column] for column in SNAPSHOT_COLUMNS})
    return rows


# ----------------------------------------------------------------------------- training


def snapshot_iterations(iterations: int, fractions: Sequence[float]) -> list[int]:
    """Iteration counts `[S]` (sorted, unique, in [0, iterations]) at the given fractions."""
    for f in fractions:
        if not 0.0 <= float(f) <= 1.0:
            raise SteikError(f"snapshot fractions must lie in [0, 1], got {f}")
    return sorted({round(float(f) * iterations) for f in fractions})


def _snapshot_trainer(fractions: Sequence[float]):
    """A `steik.train.Trainer` that also keeps each shape's weights at the snapshot iterations.

    Built lazily so that importing this module does not import the trainer. The weights are
    taken before step i runs, i.e. after i optimisation steps; the file is rewritten at each
    snapshot so a resumed run keeps the earlier ones.
    """
    from steik.train import Trainer

    class SnapshotTrainer(Trainer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.snapshot_at = snapshot_iterations(self.config.iterations, fractions)
            self.snapshots: list[dict[str, Any]] = [
                {"iterations": [], "w_div": [], "states": []} for _ in self.shapes
            ]

        def snapshot_path(self, k: int) -> Path:
            return self.shape_dir(k) / "snapshots.pt"

        def load_snapshots(self) -> None:
            """Earlier snapshots of a resumed run (those before the checkpoint's iteration)."""
            for k in range(self.K):
                path = self.snapshot_path(k)
                if path.is_file():
                    payload = torch.load(path, map_location="cpu", weights_only=True)
                    if payload.get("config_hash") == self.config.digest():
                        self.snapshots[k] = {
                            key: list(payload[key]) for key in ("iterations", "w_div", "states")
                        }

        def take_snapshot(self) -> None:
            weight = self.weights(min(self.iteration, self.config.iterations - 1))["div"]
            for k, shape in enumerate(self.shapes):
                record = self.snapshots[k]
                if self.iteration in record["iterations"]:
                    continue
                record["iterations"].append(self.iteration)
                record["w_div"].append(float(weight))
                record["states"].append(
                    {
                        n: t.detach().to("cpu", torch.float32)
                        for n, t in self.net.shape_state(k).items()
                    }
                )
                payload = {
                    "format": SNAPSHOT_FORMAT,
                    "config": self.config.as_dict(),
                    "config_hash": self.config.digest(),
                    "shape": shape.name,
                    "dim": self.dim,
                    "seed": self.seed,
                    "center": shape.center,
                    "scale": shape.scale,
                    "points_digest": shape.digest,
                    **record,
                }
                with atomic_path(self.snapshot_path(k)) as tmp:
                    torch.save(payload, tmp)

        def step(self):
            if self.iteration in self.snapshot_at:
                self.take_snapshot()
            return super().step()

        def save_models(self) -> list[dict[str, Any]]:
            if self.iteration in self.snapshot_at:
                self.take_snapshot()
            return super().save_models()

    return SnapshotTrainer


def train_run(
    sample_paths: Sequence[str | Path],
    config: MethodConfig,
    out_dir: str | Path,
    seed: int = 0,
    device: torch.device | str = "cpu",
    fractions: Sequence[float] = DEFAULT_SNAPSHOT_FRACTIONS,
    resume: bool = False,
    quiet: bool = True,
) -> list[dict[str, Any]]:
    """Train the shapes of one (method, seed) together (one K-batch) with snapshots.

    Writes `<out_dir>/<stem>/model.pt`, `train_log.parquet` (as `steik train`) and
    `snapshots.pt` (the network at each of `fractions` of the training) per sample file.
    """
    from steik.train import read_shape

    shapes = [read_shape(p) for p in sample_paths]
    trainer = _snapshot_trainer(fractions)(
        shapes, config, Path(out_dir), seed, device, torch.float32, quiet
    )
    if resume:
        trainer.resume()
        trainer.load_snapshots()
    return trainer.run()


def load_snapshots(path: str | Path) -> tuple[list[SDFNetwork], dict[str, Any]]:
    """The networks (K = 1, eval mode) of a `snapshots.pt` and its metadata (iterations, w_div)."""
    from steik.train import build_network

    path = Path(path)
    if not path.is_file():
        raise SteikError(f"{path}: no snapshot file; train with `steik experiment2d train` first")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise SteikError(f"{path}: unreadable snapshot file ({error}); retrain the run") from None
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        raise SteikError(f"{path}: not a snapshot file ({SNAPSHOT_FORMAT}); retrain the run")
    config = _config_from_dict(payload["config"])
    networks = []
    for state in payload.pop("states"):
        net = build_network(config, int(payload["dim"]), 1)
        net.load_state_dict(state)
        networks.append(net.eval())
    return networks, payload


def _config_from_dict(fields: Mapping[str, Any]) -> MethodConfig:
    """A MethodConfig from the dict stored in model and snapshot files."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(MethodConfig)}
    values = {k: v for k, v in fields.items() if k in names}
    values["schedule_knots"] = tuple(values.get("schedule_knots", ()))
    values["notes"] = tuple(values.get("notes", ()))
    return MethodConfig(**values)


# ----------------------------------------------------------------------------- tables


def rows_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per-run rows as a frame with `RUN_COLUMNS`, metrics as float64, sorted by method order
    (EXPERIMENT_METHODS first), shape (SHAPES_2D order) and seed."""
    if not rows:
        raise SteikError("no runs to tabulate; pass at least one --models file")
    frame = pd.DataFrame(list(rows), columns=list(RUN_COLUMNS))
    for column in METRICS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    duplicated = frame.duplicated(["method", "shape", "seed"])
    if duplicated.any():
        first = frame[duplicated].iloc[0]
        raise SteikError(
            f"two runs of method {first.method}, shape {first['shape']}, seed {first.seed}; "
            "pass each model once"
        )
    method_order = {m: i for i, m in enumerate((*EXPERIMENT_METHODS, *METHODS))}
    shape_order = {s: i for i, s in enumerate(shapes2d.SHAPES_2D)}
    frame = frame.sort_values(
        ["method", "shape", "seed"],
        key=lambda c: (
            c.map(method_order)
            if c.name == "method"
            else c.map(shape_order)
            if c.name == "shape"
            else c
        ),
    )
    return frame.reset_index(drop=True)


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (method, shape): `n_seeds`, `n_failures` and `<metric>_mean` / `<metric>_std` over
    seeds (NaN skipped; population std, ddof = 0, as `steik.tables`)."""
    records = []
    for (method, shape), group in rows.groupby(["method", "shape"], sort=False):
        record: dict[str, Any] = {
            "method": method,
            "shape": shape,
            "structure": str(group["structure"].iloc[0]),
            "n_params": int(group["n_params"].iloc[0]),
            "iterations": int(group["iterations"].iloc[0]),
            "n_points": int(group["n_points"].iloc[0]),
            "n_seeds": len(group),
            "n_failures": int((group["status"] != "ok").sum()),
        }
        for metric in METRICS:
            values = group[metric].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            record[f"{metric}_mean"] = float(values.mean()) if values.size else math.nan
            record[f"{metric}_std"] = float(values.std()) if values.size else math.nan
        record["ms_per_iter_mean"] = float(group["ms_per_iter"].mean())
        records.append(record)
    return pd.DataFrame.from_records(records)


_SHOWN = (
    ("chamfer", "Chamfer", 1e3), ("hausdorff", "Hausdorff", 1e3), ("corner", "corner", 1e3),
    ("corner_convex", "convex", 1e3), ("corner_concave", "concave", 1e3), ("iou", "IoU", 1.0),
    ("eikonal", "eikonal", 1.0), ("spurious", "spurious", 1.0),
)  # fmt: skip
"""Markdown columns: metric, header, factor (distances in 1e-3 original units)."""


def _cell(mean: float, std: float, factor: float) -> str:
    if not math.isfinite(mean):
        return "-"
    digits = 2 if factor != 1.0 or abs(mean) >= 1 else 3
    return f"{mean * factor:.{digits}f} ± {std * factor:.{digits}f}"


def render_markdown(summary: pd.DataFrame) -> str:
    """One Markdown table per shape: methods as rows, `mean ± std` over seeds per metric."""
    parts = [
        "Distances (Chamfer, Hausdorff, corner) in 1e-3 units of the shapes' original frame; "
        "mean ± std over seeds (population std).",
        "",
    ]
    for shape, group in summary.groupby("shape", sort=False):
        shown = [(m, h, f) for m, h, f in _SHOWN if np.isfinite(group[f"{m}_mean"]).any()]
        header = ["method", "structure", *[h for _, h, _ in shown], "seeds", "failed"]
        parts.append(f"### {shape}")
        parts.append("")
        parts.append("| " + " | ".join(header) + " |")
        parts.append("|" + "---|" * len(header))
        for _, rec in group.iterrows():
            cells = [str(rec["method"]), str(rec["structure"])]
            cells += [_cell(rec[f"{m}_mean"], rec[f"{m}_std"], f) for m, _, f in shown]
            cells += [str(rec["n_seeds"]), str(rec["n_failures"])]
            parts.append("| " + " | ".join(cells) + " |")
        parts.append("")
    return "\n".join(parts)


def summarize_snapshots(snapshots: pd.DataFrame) -> pd.DataFrame:
    """Per (method, shape, fraction): `w_div`, `n_seeds` and `<metric>_mean` / `_std` over seeds."""
    records = []
    keys = ["method", "shape", "fraction"]
    for (method, shape, fraction), group in snapshots.groupby(keys, sort=False):
        record: dict[str, Any] = {
            "method": method, "shape": shape, "fraction": float(fraction),
            "iteration": int(group["iteration"].iloc[0]), "w_div": float(group["w_div"].iloc[0]),
            "n_seeds": len(group),
        }  # fmt: skip
        for metric in ("chamfer", "hausdorff", "iou", "spurious", "corner"):
            values = group[metric].to_numpy(dtype=np.float64)
            values = values[np.isfinite(values)]
            record[f"{metric}_mean"] = float(values.mean()) if values.size else math.nan
            record[f"{metric}_std"] = float(values.std()) if values.size else math.nan
        records.append(record)
    return pd.DataFrame.from_records(records)


def render_snapshot_markdown(summary: pd.DataFrame, shape: str = "snowflake") -> str:
    """Chamfer and corner error of `shape` at each snapshot fraction, methods as rows."""
    part = summary[summary["shape"] == shape]
    if part.empty:
        return ""
    fractions = sorted(part["fraction"].unique())
    lines = [f"### {shape} during training (snapshots; 1e-3 units, mean ± std over seeds)", ""]
    for metric, label in (("chamfer", "Chamfer"), ("corner", "corner error")):
        header = ["method", *[f"{label} at t={f:.2f}" for f in fractions]]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method, group in part.groupby("method", sort=False):
            by_fraction = {float(r["fraction"]): r for _, r in group.iterrows()}
            cells = [str(method)]
            for f in fractions:
                rec = by_fraction.get(float(f))
                cells.append(
                    "-" if rec is None else _cell(rec[f"{metric}_mean"], rec[f"{metric}_std"], 1e3)
                )
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    weights = part.drop_duplicates("fraction").sort_values("fraction")
    divergence = [r for _, r in part.iterrows() if r["method"] != "siren_wo_n"]
    if divergence:
        first = pd.DataFrame(divergence).drop_duplicates("fraction").sort_values("fraction")
        weights = first
    lines.append(
        "Divergence weight at those points: "
        + ", ".join(f"t={r['fraction']:.2f}: {r['w_div']:g}" for _, r in weights.iterrows())
        + " (SIREN wo n has none)."
    )
    return "\n".join(lines)


def write_tables(
    rows: pd.DataFrame, out: str | Path, snapshot_rows: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Path]:
    """Write `out` (per-run rows, .parquet), `<stem>_summary.parquet` and `<stem>.md`, plus
    `<stem>_snapshots.parquet` (one row per snapshot) when snapshot rows are given."""
    out = Path(out)
    if out.suffix != ".parquet":
        raise SteikError(f"table output {out} must end in .parquet")
    summary = summarize(rows)
    paths = {
        "rows": out,
        "summary": out.with_name(f"{out.stem}_summary.parquet"),
        "markdown": out.with_suffix(".md"),
    }
    markdown = render_markdown(summary)
    snapshots = pd.DataFrame(list(snapshot_rows), columns=list(SNAPSHOT_COLUMNS))
    if len(snapshots):
        paths["snapshots"] = out.with_name(f"{out.stem}_snapshots.parquet")
        with atomic_path(paths["snapshots"]) as tmp:
            snapshots.to_parquet(tmp, index=False)
        markdown += "\n" + render_snapshot_markdown(summarize_snapshots(snapshots))
    with atomic_path(paths["rows"]) as tmp:
        rows.to_parquet(tmp, index=False)
    with atomic_path(paths["summary"]) as tmp:
        summary.to_parquet(tmp, index=False)
    with atomic_path(paths["markdown"]) as tmp:
        tmp.write_text(markdown + "\n")
    return paths


def match_samples(
    model_paths: Sequence[str | Path], sample_paths: Sequence[str | Path]
) -> list[tuple[Path, Path]]:
    """Pair each model with the sample file of its shape (the shape folder's name = file stem)."""
    by_stem: dict[str, Path] = {}
    for path in map(Path, sample_paths):
        if path.stem in by_stem:
            raise SteikError(
                f"two sample files for shape {path.stem!r}: {by_stem[path.stem]}, {path}"
            )
        by_stem[path.stem] = path
    pairs = []
    for model in map(Path, model_paths):
        shape = model.parent.name
        if shape not in by_stem:
            raise SteikError(
                f"{model}: no sample file for shape {shape!r} among --samples "
                f"({', '.join(sorted(by_stem))}); pass results/<dataset>/samples/{shape}.npz"
            )
        pairs.append((model, by_stem[shape]))
    return pairs


def table(
    model_paths: Sequence[str | Path],
    sample_paths: Sequence[str | Path],
    out: str | Path,
    config: AnalysisConfig = AnalysisConfig(),
    device: torch.device | str = "cpu",
) -> dict[str, Path]:
    """Score every model (and the snapshots beside it, when there are any) against its shape's
    exact curve and write the tables (`write_tables`)."""
    rows, snapshot_rows = [], []
    for model, sample in match_samples(model_paths, sample_paths):
        rows.append(analyse(model, sample, config, device))
        snapshots = Path(model).with_name("snapshots.pt")
        if snapshots.is_file():
            snapshot_rows += analyse_snapshots(snapshots, sample, config, device)
    return write_tables(rows_frame(rows), out, snapshot_rows)


# ----------------------------------------------------------------------------- whole experiment


def run_name(method: str, seed: int) -> str:
    """Run folder of (method, seed), as the workflow names it: `<method>` or `<method>-seed<S>`."""
    return method if seed == 0 else f"{method}-seed{seed}"


def _train_and_analyse(task: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Worker: train one (method, seed) on every shape as one batch, then score each shape.

    Returns no rows, without training, when the task starts after its deadline.
    """
    import time

    if task["deadline"] is not None and time.time() > task["deadline"]:
        return [], []
    if task["threads"]:
        torch.set_num_threads(task["threads"])
    folder = Path(task["out"]) / run_name(task["config"].name, task["seed"])
    resume = all((folder / Path(p).stem / "checkpoint.pt").is_file() for p in task["samples"])
    done = all((folder / Path(p).stem / "model.pt").is_file() for p in task["samples"])
    if not done:
        train_run(
            task["samples"],
            task["config"],
            folder,
            task["seed"],
            task["device"],
            task["fractions"],
            resume=resume,
        )
    rows, snapshot_rows = [], []
    for sample in task["samples"]:
        shape_dir = folder / Path(sample).stem
        rows.append(analyse(shape_dir / "model.pt", sample, task["analysis"], task["device"]))
        if Path(sample).stem in task["snapshot_shapes"]:
            snapshot_rows += analyse_snapshots(
                shape_dir / "snapshots.pt", sample, task["analysis"], task["device"]
            )
    return rows, snapshot_rows


def run_experiment(
    sample_paths: Sequence[str | Path],
    out_dir: str | Path,
    methods: Sequence[str] = EXPERIMENT_METHODS,
    seeds: Sequence[int] = (0, 1, 2),
    scale: Scale = Scale(),
    analysis: AnalysisConfig = AnalysisConfig(),
    fractions: Sequence[float] = DEFAULT_SNAPSHOT_FRACTIONS,
    device: str = "cpu",
    jobs: int = 1,
    threads: int = 1,
    snapshot_shape: str = "snowflake",
    deadline: float | None = None,
    results_dir: str | Path | None = None,
) -> dict[str, Path]:
    """Train every (method, seed) on all shapes (one K-batch each, `jobs` in parallel), score
    them, and write `<out>/tables/2d{.parquet,_summary.parquet,.md}`, the level-set figure of
    the first seed and the snapshot strip of `snapshot_shape` under `<out>/figures/`.

    Runs whose `model.pt` files exist are not retrained (an interrupted experiment continues).
    Runs are started seed by seed; with a `deadline` (seconds since the epoch), runs not started
    by then are skipped and the tables and figures show the runs that finished. The tables and
    figures go to `results_dir/{tables,figures}/` when given (default: under `out_dir`).
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    from steik import plots2d

    out_dir = Path(out_dir)
    samples = [str(p) for p in sample_paths]
    configs = {m: scale.method_config(m) for m in methods}
    cost = {"qua_ldiv": 0, "digs": 1, "steik": 2, "lin_lln": 3, "siren_wo_n": 4}
    tasks = [
        {"config": configs[m], "seed": int(s), "samples": samples, "out": str(out_dir),
         "device": device, "fractions": tuple(fractions), "analysis": analysis,
         "threads": threads, "deadline": deadline, "snapshot_shapes": (snapshot_shape,)}
        for s in seeds for m in sorted(methods, key=lambda m: cost.get(m, 5))
    ]  # fmt: skip
    rows: list[dict[str, Any]] = []
    snapshot_rows: list[dict[str, Any]] = []
    results = Path(results_dir) if results_dir is not None else out_dir
    table_path = results / "tables" / "2d.parquet"

    def collect(result: tuple[list[dict], list[dict]]) -> None:
        # The tables are rewritten after every run, so an experiment stopped from outside
        # (a wall-clock limit) still leaves the tables of the runs that finished.
        rows.extend(result[0])
        snapshot_rows.extend(result[1])
        if rows:
            write_tables(rows_frame(rows), table_path, snapshot_rows)

    if jobs > 1:
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            for result in pool.map(_train_and_analyse, tasks):
                collect(result)
    else:
        for task in tasks:
            collect(_train_and_analyse(task))
    paths = write_tables(rows_frame(rows), table_path, snapshot_rows)
    first = int(seeds[0])
    models = [
        out_dir / run_name(m, first) / Path(p).stem / "model.pt" for m in methods for p in samples
    ]
    models = [m for m in models if m.is_file()]
    paths["levelsets"] = plots2d.levelsets_from_models(
        models, samples, results / "figures" / "2d_levelsets.png", device=device
    )
    strip = [out_dir / run_name(m, first) / snapshot_shape / "snapshots.pt" for m in methods]
    strip = [p for p in strip if p.is_file()]
    if strip:
        paths["strip"] = plots2d.snapshots_from_files(
            strip, results / "figures" / "2d_snapshots.png", device=device
        )
    return paths
