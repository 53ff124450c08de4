"""Surface extraction: the network's zero level set as a triangle mesh (3D) or polylines (2D).

SPEC 6: u is evaluated on a regular grid over the normalised scan's bounding box plus a margin,
`resolution` samples along the shortest axis and the same spacing on the others, with float32
coordinates, in chunks, so a 512^3 grid never exists as float64 points (only the float32 value
grid does). Marching cubes (scikit-image) at level 0 gives the mesh, whose vertices are mapped
back to the original units with the sample file's `center` and `scale`.

The multi-resolution mode (in the spirit of MISE, Occupancy Networks) starts on a coarse grid and
refines, level by level, only the cells whose corners change sign or whose smallest |u| is below
the cell diagonal; for a signed distance function no other cell can hold surface. Values of the
points it skips are filled by multilinear interpolation of the enclosing cell's corners, which
keeps their sign, so marching cubes on the assembled fine grid sees the same crossings as on the
dense grid wherever u behaves like a distance.

The network is any callable `x [K, N, d] -> u [K, N]` (a `steik.nn.SDFNetwork`, or an analytic
SDF in tests); inside is u < 0.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from skimage import measure

from steik.data.sample import load_sample
from steik.errors import SteikError
from steik.fileio import atomic_path, sha256_file, write_json
from steik.model import check_model_matches_sample, load_model

Network = Callable[[torch.Tensor], torch.Tensor]
"""`x [K, N, d] float32 -> u [K, N]`."""

SIDECAR_SUFFIX = ".json"
"""`mesh.ply` -> `mesh.json`: extraction status and timings, read by `steik evaluate`."""


class NonFiniteOutputError(SteikError):
    """The network returned NaN or infinity somewhere on the grid (a corrupt or broken model)."""


MAX_MARGIN = 10.0
"""Largest margin around the normalised scan: ten times the scan's half-width is far beyond any
surface a network fits, and a huge margin (1e30) overflows float32 grid coordinates."""


@dataclass(frozen=True)
class ExtractionConfig:
    """How to build the grid and which extraction algorithm to run."""

    resolution: int = 512
    """Grid samples along the shortest axis of the box (SPEC 6: 512 for the paper tables)."""
    margin: float = 0.1
    """Added to every side of the normalised scan's bounding box (normalised units)."""
    multires: bool = False
    """Coarse-to-fine extraction instead of evaluating every grid point."""
    coarse_resolution: int = 32
    """Multires: about this many samples along the shortest axis on the coarsest level."""
    chunk: int = 131_072
    """Points per network call: bounds the memory of the activations."""

    def __post_init__(self) -> None:
        if self.resolution < 2:
            raise SteikError(f"--resolution must be at least 2, got {self.resolution}")
        if self.chunk < 1:
            raise SteikError(f"--chunk must be positive, got {self.chunk}")
        if self.coarse_resolution < 2:
            raise SteikError(f"coarse_resolution must be at least 2, got {self.coarse_resolution}")
        if not 0 <= self.margin <= MAX_MARGIN:
            raise SteikError(
                f"margin must lie in [0, {MAX_MARGIN:g}] (normalised units: the scan spans "
                f"[-1, 1]), got {self.margin}"
            )


@dataclass(frozen=True)
class Grid:
    """A regular grid in the normalised frame: index `i [d]` is the point `origin + i * spacing`."""

    origin: tuple[float, ...]
    """Lower corner, normalised units."""
    spacing: float
    """Distance between neighbouring samples, normalised units."""
    shape: tuple[int, ...]
    """Samples per axis."""

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def points(self, index: torch.Tensor) -> torch.Tensor:
        """float32 `[n, d]` coordinates of integer indices `[n, d]` (computed in float64 first, so
        every extraction mode evaluates bit-identical coordinates)."""
        origin = torch.tensor(self.origin, dtype=torch.float64, device=index.device)
        return (origin + index.to(torch.float64) * self.spacing).to(torch.float32)


def grid_for_points(points: np.ndarray, resolution: int, margin: float = 0.1) -> Grid:
    """SPEC 6 grid for a normalised scan `points [N, d]`.

    The box is the scan's bounding box plus `margin` on every side; `resolution` samples span the
    shortest side exactly, the other sides get the same spacing and are centred on the box.
    """
    points = np.asarray(points, dtype=np.float64)
    lo = points.min(axis=0) - margin
    hi = points.max(axis=0) + margin
    extent = hi - lo
    spacing = float(extent.min()) / (resolution - 1)
    if not spacing > 0:
        raise SteikError("the scan's bounding box is degenerate (zero size); cannot build a grid")
    counts = np.ceil(extent / spacing - 1e-6).astype(np.int64) + 1
    origin = lo - ((counts - 1) * spacing - extent) / 2
    return Grid(tuple(float(v) for v in origin), spacing, tuple(int(c) for c in counts))


def cube_grid(dim: int, extent: float, resolution: int) -> Grid:
    """`resolution` samples per axis spanning [-extent, extent]^dim (both ends included)."""
    if not (extent > 0 and math.isfinite(extent)):
        raise SteikError(f"the grid's half-width must be a positive number, got {extent}")
    spacing = 2.0 * extent / (resolution - 1)
    return Grid((-float(extent),) * dim, spacing, (int(resolution),) * dim)


def _n_shapes(network: Network, n_shapes: int | None) -> int:
    """K of the network: given, else its `n_shapes` attribute, else 1."""
    return int(n_shapes if n_shapes is not None else getattr(network, "n_shapes", 1))


def _evaluate_chunk(
    network: Network, x: torch.Tensor, n_shapes: int, shape_index: int
) -> np.ndarray:
    """u of shape `shape_index` at `x [n, d]` (float32 on the network's device) -> float32 `[n]`."""
    u = network(x.unsqueeze(0).expand(n_shapes, -1, -1))[shape_index]
    if not bool(torch.isfinite(u).all()):
        bad = int((~torch.isfinite(u)).sum())
        raise NonFiniteOutputError(
            f"the network returned {bad} non-finite values (NaN/inf) out of {x.shape[0]} in one "
            "chunk of points; the model file is corrupt or the network broken - retrain it"
        )
    return u.to(torch.float32).cpu().numpy()


@torch.inference_mode()
def evaluate_points(
    network: Network,
    points: np.ndarray,
    device: torch.device | str = "cpu",
    chunk: int = 131_072,
    n_shapes: int | None = None,
    shape_index: int = 0,
) -> np.ndarray:
    """u of one shape at `points [N, d]` (normalised frame) -> float32 `[N]`, in chunks.

    Every one of the K networks sees the same points; row `shape_index` is kept.
    """
    k = _n_shapes(network, n_shapes)
    data = np.asarray(points, dtype=np.float32)
    out = np.empty(len(data), dtype=np.float32)
    for start in range(0, len(data), chunk):
        x = torch.from_numpy(data[start : start + chunk]).to(device)
        out[start : start + chunk] = _evaluate_chunk(network, x, k, shape_index)
    return out


def _index_chunks(
    shape: tuple[int, ...], chunk: int, device: torch.device | str
) -> Iterator[torch.Tensor]:
    """All indices of a grid of `shape`, C order, as int64 `[n, d]` tensors of <= `chunk` rows."""
    strides = [math.prod(shape[a + 1 :]) for a in range(len(shape))]
    total = math.prod(shape)
    for start in range(0, total, chunk):
        flat = torch.arange(start, min(start + chunk, total), device=device, dtype=torch.int64)
        yield torch.stack([(flat // s) % n for s, n in zip(strides, shape, strict=True)], dim=1)


@torch.inference_mode()
def evaluate_grid(
    network: Network,
    grid: Grid,
    device: torch.device | str = "cpu",
    chunk: int = 131_072,
    n_shapes: int | None = None,
    shape_index: int = 0,
) -> np.ndarray:
    """Dense evaluation: float32 values `grid.shape` of shape `shape_index`, chunk by chunk."""
    k = _n_shapes(network, n_shapes)
    values = np.empty(grid.size, dtype=np.float32)
    position = 0
    for index in _index_chunks(grid.shape, chunk, device):
        u = _evaluate_chunk(network, grid.points(index), k, shape_index)
        values[position : position + len(u)] = u
        position += len(u)
    return values.reshape(grid.shape)


def evaluate_with_gradient(
    network: Network,
    points: np.ndarray,
    device: torch.device | str = "cpu",
    chunk: int = 65_536,
) -> tuple[np.ndarray, np.ndarray]:
    """u and |grad u| of a K = 1 network at `points [N, d]` -> two float64 `[N]` arrays."""
    data = np.asarray(points, dtype=np.float32)
    u, gradient = np.empty(len(data)), np.empty(len(data))
    for start in range(0, len(data), chunk):
        x = torch.from_numpy(data[start : start + chunk]).to(device)[None].requires_grad_(True)
        value = network(x)
        (grad,) = torch.autograd.grad(value.sum(), x)
        u[start : start + x.shape[1]] = value[0].detach().double().cpu().numpy()
        gradient[start : start + x.shape[1]] = grad[0].norm(dim=-1).double().cpu().numpy()
    return u, gradient


def _cell_extrema(view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max over the 2^d corners of every cell of a grid of values (cells: shape - 1)."""
    d = view.ndim
    lo = hi = None
    for offset in itertools.product((0, 1), repeat=d):
        corner = view[tuple(slice(o, n - 1 + o) for o, n in zip(offset, view.shape, strict=True))]
        lo = corner.copy() if lo is None else np.minimum(lo, corner, out=lo)
        hi = corner.copy() if hi is None else np.maximum(hi, corner, out=hi)
    assert lo is not None and hi is not None
    return lo, hi


def _fill_by_interpolation(view: np.ndarray) -> None:
    """Fill the NaN entries of a grid whose even-index points are all known, in place.

    One axis at a time, a point with an odd index along that axis gets the mean of its two
    neighbours along it; done for every axis in turn this is multilinear interpolation of the
    coarse cell, so a cell whose known values share a sign keeps that sign inside. Known
    (evaluated) values are never overwritten.
    """
    d = view.ndim
    for axis in range(d):

        def along(part: slice, axis: int = axis) -> tuple[slice, ...]:
            return tuple(part if a == axis else slice(None) for a in range(d))

        target = view[along(slice(1, None, 2))]
        mean = view[along(slice(0, -1, 2))] + view[along(slice(2, None, 2))]
        mean *= 0.5
        np.copyto(target, mean, where=np.isnan(target))


@torch.inference_mode()
def evaluate_multires(
    network: Network,
    grid: Grid,
    device: torch.device | str = "cpu",
    chunk: int = 131_072,
    coarse_resolution: int = 32,
    n_shapes: int | None = None,
    shape_index: int = 0,
) -> tuple[np.ndarray, int]:
    """Coarse-to-fine values on `grid` -> (float32 values `grid.shape`, points evaluated).

    The coarsest level has a stride of 2^L fine cells with about `coarse_resolution` samples on
    the shortest axis. A cell is refined when its corners change sign or its smallest |u| is
    below its diagonal; refined cells get all their half-stride points evaluated, the others are
    interpolated. The grid is padded to a multiple of the coarse stride (those extra points lie
    just outside the box) and cropped at the end.
    """
    k = _n_shapes(network, n_shapes)
    d = grid.dim
    n_min = min(grid.shape)
    levels = max(0, math.floor(math.log2(max(n_min - 1, 1) / max(coarse_resolution - 1, 1))))
    stride = 2**levels
    cells = tuple(max(1, math.ceil((n - 1) / stride)) for n in grid.shape)
    values = np.full(tuple(c * stride + 1 for c in cells), np.nan, dtype=np.float32)
    evaluated = 0

    def evaluate_indices(index: tuple[np.ndarray, ...], step: int) -> np.ndarray:
        """u at the fine-grid points `step * index` (index: d int arrays of equal length)."""
        out = np.empty(len(index[0]), dtype=np.float32)
        for start in range(0, len(out), chunk):
            part = np.stack([a[start : start + chunk] for a in index], axis=1) * step
            x = grid.points(torch.from_numpy(part).to(device))
            out[start : start + chunk] = _evaluate_chunk(network, x, k, shape_index)
        return out

    coarse = values[(slice(None, None, stride),) * d]
    everything = np.ones(coarse.shape, dtype=bool)
    coarse[everything] = evaluate_indices(np.nonzero(everything), stride)
    evaluated += coarse.size
    del everything
    active = np.ones(cells, dtype=bool)
    step = stride
    while step > 1:
        view = values[(slice(None, None, step),) * d]
        lo, hi = _cell_extrema(view)
        nearest = np.where(lo > 0, lo, np.where(hi < 0, -hi, 0.0))
        del lo, hi
        refine = active & (nearest < step * grid.spacing * math.sqrt(d))
        del nearest, active
        half = step // 2
        finer = values[(slice(None, None, half),) * d]
        needed = np.zeros(finer.shape, dtype=bool)
        for offset in itertools.product((0, 1, 2), repeat=d):
            window = tuple(
                slice(o, o + 2 * c, 2) for o, c in zip(offset, refine.shape, strict=True)
            )
            needed[window] |= refine
        needed &= np.isnan(finer)
        index = np.nonzero(needed)
        finer[needed] = evaluate_indices(index, half)
        evaluated += len(index[0])
        del index, needed
        _fill_by_interpolation(finer)
        active = refine
        for axis in range(d):
            active = np.repeat(active, 2, axis=axis)
        step = half
    return np.ascontiguousarray(values[tuple(slice(0, n) for n in grid.shape)]), evaluated


def marching_cubes(
    values: np.ndarray, grid: Grid, center: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Zero level set of float32 `values [n0, n1, n2]` on `grid` -> (vertices `[V, 3]` float64 in
    original units, faces `[F, 3]` int64, oriented outward: inside is u < 0).

    Empty arrays when u does not change sign on the grid.
    """
    if not (values.min() < 0 < values.max()):
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    vertices, faces, _, _ = measure.marching_cubes(
        values, level=0.0, spacing=(grid.spacing,) * 3, gradient_direction="descent"
    )
    normalised = vertices.astype(np.float64) + np.asarray(grid.origin)
    return normalised * scale + np.asarray(center, dtype=np.float64), faces.astype(np.int64)


def contour_2d(
    values: np.ndarray, grid: Grid, center: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Zero level set of `values [n0, n1]` on a 2D `grid` -> (vertices `[V, 2]` float64 in original
    units, edges `[E, 2]` int64 joining consecutive vertices of each polyline)."""
    vertices: list[np.ndarray] = []
    edges: list[np.ndarray] = []
    offset = 0
    if values.min() < 0 < values.max():
        for line in measure.find_contours(values, 0.0):
            count = len(line)
            if count < 2:
                continue
            vertices.append(line * grid.spacing + np.asarray(grid.origin))
            start = np.arange(offset, offset + count - 1)
            edges.append(np.stack([start, start + 1], axis=1))
            offset += count
    if not vertices:
        return np.zeros((0, 2)), np.zeros((0, 2), dtype=np.int64)
    normalised = np.concatenate(vertices)
    return normalised * scale + np.asarray(center, dtype=np.float64), np.concatenate(edges)


@dataclass
class Extraction:
    """A reconstructed surface in original units and how it was obtained."""

    vertices: np.ndarray
    """float64 `[V, d]`, original units."""
    cells: np.ndarray
    """int64 `[F, 3]` triangles (3D) or `[E, 2]` polyline edges (2D)."""
    status: str
    """`ok`, or `no_surface` when u has no zero crossing in the box."""
    points_evaluated: int
    grid: Grid
    mode: str
    """`dense` or `multires`."""
    seconds: float
    message: str = ""


def _physical_memory() -> int:
    """Bytes of memory this machine has (the most any grid could ever use)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_grid_memory(grid: Grid, resolution: int) -> None:
    """Refuse a grid whose float32 values alone exceed the machine's memory, saying what it would
    need (both modes assemble the full value grid for marching cubes)."""
    need = 4 * grid.size
    have = _physical_memory()
    if need > have:
        raise SteikError(
            f"--resolution {resolution} gives a {'x'.join(map(str, grid.shape))} grid whose "
            f"values alone need {need / 2**30:.3g} GiB, more than this machine's "
            f"{have / 2**30:.3g} GiB of memory; lower --resolution"
        )


def extract_surface(
    network: Network,
    points: np.ndarray,
    center: np.ndarray,
    scale: float,
    config: ExtractionConfig = ExtractionConfig(),
    device: torch.device | str = "cpu",
    n_shapes: int | None = None,
    shape_index: int = 0,
    domain: float | None = None,
) -> Extraction:
    """Grid values (dense or multires) and their zero level set for one shape.

    `points [N, d]` is the normalised scan that defines the box (or, with `domain`, the box is
    the cube [-domain, domain]^d); `center [d]`, `scale` map the result back to original units.
    d = 3 gives a triangle mesh, d = 2 polylines.
    """
    started = time.perf_counter()
    if domain is None:
        grid = grid_for_points(points, config.resolution, config.margin)
    else:
        grid = cube_grid(np.asarray(points).shape[1], domain, config.resolution)
    check_grid_memory(grid, config.resolution)
    if config.multires:
        values, evaluated = evaluate_multires(
            network, grid, device, config.chunk, config.coarse_resolution, n_shapes, shape_index
        )
    else:
        values = evaluate_grid(network, grid, device, config.chunk, n_shapes, shape_index)
        evaluated = grid.size
    surface = marching_cubes if grid.dim == 3 else contour_2d
    vertices, cells = surface(values, grid, center, scale)
    status, message = "ok", ""
    if len(cells) == 0:
        status = "no_surface"
        message = (
            f"u has no zero crossing on the grid (min {float(values.min()):.4g}, "
            f"max {float(values.max()):.4g})"
        )
    return Extraction(
        vertices=vertices,
        cells=cells,
        status=status,
        points_evaluated=evaluated,
        grid=grid,
        mode="multires" if config.multires else "dense",
        seconds=time.perf_counter() - started,
        message=message,
    )


# -- files --------------------------------------------------------------------------------------


def sidecar_path(mesh_path: str | Path) -> Path:
    """`.../mesh.ply` -> `.../mesh.json`."""
    return Path(mesh_path).with_suffix(SIDECAR_SUFFIX)


def write_surface(
    path: str | Path, extraction: Extraction, extra: dict[str, Any] | None = None
) -> None:
    """Write the surface (PLY) and its JSON sidecar, each atomically.

    3D: a triangle mesh. 2D: a PLY of vertices (z = 0) and `edge` elements (the polylines);
    trimesh reads it back as a path. No surface: a valid PLY with zero vertices.
    """
    path = Path(path)
    if path.suffix.lower() != ".ply":
        raise SteikError(f"mesh output {path} must end in .ply")
    vertices, cells = extraction.vertices, extraction.cells
    if vertices.shape[1] == 2:
        vertices = np.concatenate([vertices, np.zeros((len(vertices), 1))], axis=1)
    with atomic_path(path) as tmp:
        if extraction.grid.dim == 2 and len(cells):
            lines = [trimesh.path.entities.Line(edge) for edge in _polylines(cells)]
            trimesh.path.Path3D(entities=lines, vertices=vertices, process=False).export(
                str(tmp), file_type="ply"
            )
        else:
            faces = cells if extraction.grid.dim == 3 else np.zeros((0, 3), dtype=np.int64)
            write_mesh_ply(tmp, vertices, faces)
    info = {
        "status": extraction.status,
        "message": extraction.message,
        "extract_seconds": extraction.seconds,
        "points_evaluated": extraction.points_evaluated,
        "points_total": extraction.grid.size,
        "resolution": min(extraction.grid.shape),
        "mode": extraction.mode,
        "dim": extraction.grid.dim,
        "grid": asdict(extraction.grid),
        "n_vertices": len(extraction.vertices),
        "n_cells": len(extraction.cells),
        **(extra or {}),
    }
    write_json(sidecar_path(path), info)


def write_mesh_ply(path: str | Path, vertices: np.ndarray, faces: np.ndarray) -> None:
    """A binary PLY of a triangle mesh with float64 (`double`) vertices.

    Meshes are stored in original units, which may lie far from the origin (UTM-like
    coordinates); trimesh's exporter always writes float32 vertices, which keeps only about 7
    significant digits (a 10 m sphere at y = 5e6 would keep a few dozen distinct y values).
    trimesh reads this file back as float64.
    """
    vertices = np.ascontiguousarray(vertices, dtype="<f8").reshape(-1, 3)
    faces = np.asarray(faces, dtype="<i4").reshape(-1, 3)
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(vertices)}\n"
        "property double x\nproperty double y\nproperty double z\n"
        f"element face {len(faces)}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    packed = np.zeros(len(faces), dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    packed["count"], packed["indices"] = 3, faces
    with open(path, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(vertices.tobytes())
        handle.write(packed.tobytes())


def _polylines(edges: np.ndarray) -> list[np.ndarray]:
    """Split edges `[E, 2]` that join consecutive vertices into vertex runs (one per polyline)."""
    breaks = np.nonzero(edges[1:, 0] != edges[:-1, 1])[0] + 1
    return [np.append(run[:, 0], run[-1, 1]) for run in np.split(edges, breaks)]


def read_surface(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a surface written by `write_surface` -> (vertices `[V, 3]` float64, cells).

    Cells are triangles `[F, 3]` for a mesh, edges `[E, 2]` for a 2D polyline file; an empty
    file gives zero rows. An unreadable file is a SteikError.
    """
    path = Path(path)
    if not path.is_file():
        raise SteikError(f"mesh file {path} does not exist; run `steik extract` first")
    try:
        loaded = trimesh.load(path, process=False, force=None)
    except Exception as error:
        raise SteikError(
            f"mesh file {path} is unreadable ({error}); run `steik extract` again"
        ) from None
    if isinstance(loaded, trimesh.Scene) and not loaded.geometry:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    if isinstance(loaded, trimesh.Trimesh):
        return np.asarray(loaded.vertices, dtype=np.float64), np.asarray(
            loaded.faces, dtype=np.int64
        )
    if isinstance(loaded, trimesh.path.Path3D):
        edges = [
            np.stack([e.points[:-1], e.points[1:]], axis=1)
            for e in loaded.entities
            if len(e.points) > 1
        ]
        cells = np.concatenate(edges) if edges else np.zeros((0, 2), dtype=np.int64)
        return np.asarray(loaded.vertices, dtype=np.float64), cells.astype(np.int64)
    raise SteikError(f"mesh file {path} holds a {type(loaded).__name__}, not a mesh or polylines")


def read_sidecar(mesh_path: str | Path) -> dict[str, Any]:
    """The JSON written beside a mesh by `write_surface`; a SteikError if missing or broken."""
    path = sidecar_path(mesh_path)
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SteikError(
            f"extraction record {path} is missing or unreadable ({error}); "
            "run `steik extract` again"
        ) from None
    if not isinstance(info, dict) or "status" not in info or "extract_seconds" not in info:
        raise SteikError(
            f"extraction record {path} lacks status/extract_seconds; run `steik extract` again"
        )
    return info


def extract_file(
    model_path: str | Path,
    sample_path: str | Path,
    out_path: str | Path,
    config: ExtractionConfig = ExtractionConfig(),
    device: torch.device | str = "cpu",
) -> Extraction:
    """`steik extract`: load model and sample, check they belong together, extract, write
    `out_path` (.ply) and its `.json` sidecar. Nothing is written on error.

    3D: SPEC 6's grid over the scan's bounding box. 2D: a square grid over the training domain
    [-e, e]^2 (e = the method's off-surface extent, SPEC 9), where a spurious zero crossing
    anywhere the network was trained shows up as an extra contour.
    """
    model_path, sample_path, out_path = Path(model_path), Path(sample_path), Path(out_path)
    if out_path.suffix.lower() != ".ply":
        raise SteikError(f"mesh output {out_path} must end in .ply")
    sample = load_sample(sample_path)
    network, meta = load_model(model_path, device)
    check_model_matches_sample(meta, sample, model_path, sample_path)
    domain = None
    if sample.dim == 2:
        domain = float(meta["config"].get("offsurface_extent", 1.2))
    try:
        extraction = extract_surface(
            network, sample.points, sample.center, sample.scale, config, device, domain=domain
        )
    except NonFiniteOutputError as error:
        raise NonFiniteOutputError(f"model {model_path}: {error}") from None
    record = {
        "device": str(device),
        "model": str(model_path),
        "model_sha256": sha256_file(model_path),
        "sample": str(sample_path),
    }
    write_surface(out_path, extraction, record)
    return extraction


def extract_files(
    models: Sequence[str | Path],
    samples: Sequence[str | Path],
    outs: Sequence[str | Path],
    config: ExtractionConfig = ExtractionConfig(),
    device: torch.device | str = "cpu",
    record: str | Path | None = None,
) -> list[Extraction]:
    """`extract_file` for several (model, sample, out) triples in one process, then the batch
    `record` (JSON listing each mesh and its status), written last."""
    if not len(models) == len(samples) == len(outs):
        raise SteikError(
            f"--model, --sample and --out need one entry per shape each; got {len(models)}, "
            f"{len(samples)}, {len(outs)}"
        )
    extractions = [
        extract_file(m, s, o, config, device) for m, s, o in zip(models, samples, outs, strict=True)
    ]
    if record is not None:
        write_json(record, {"meshes": [
            {"mesh": str(o), "model": str(m), "status": e.status, "seconds": e.seconds}
            for m, o, e in zip(models, outs, extractions, strict=True)
        ]})  # fmt: skip
    return extractions
