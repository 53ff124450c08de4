"""Surface extraction: the network's zero level set as a triangle mesh (3D) or polylines (2D), and
the mesh files every reconstruction method writes.

SPEC 6: u is evaluated on a regular grid over the normalised scan's bounding box plus a margin
(`steik.grid`: dense or coarse-to-fine), marching cubes (scikit-image) at level 0 gives the mesh,
whose vertices are mapped back to the original units with the sample file's `center` and
`scale`. A surface is written as a PLY file with a JSON sidecar (`mesh.json`: status, timings,
grid and what it was made from), which `steik evaluate` reads.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from skimage import measure

from steik.batching import each_shape
from steik.data.sample import load_sample
from steik.errors import SteikError
from steik.fileio import atomic_path, sha256_file, write_json
from steik.grid import (
    Grid,
    Network,
    NonFiniteOutputError,
    cube_grid,
    evaluate_grid,
    evaluate_multires,
    grid_for_points,
)
from steik.model import check_model_matches_sample, load_model

SIDECAR_SUFFIX = ".json"
"""`mesh.ply` -> `mesh.json`: extraction status and timings, read by `steik evaluate`."""

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
    """`dense` or `multires` (a method without a network: its name)."""
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
            network, grid, config.coarse_resolution, device, config.chunk, n_shapes, shape_index
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
    network, record = load_model(model_path, device)
    check_model_matches_sample(record, sample, model_path, sample_path)
    domain = None
    if sample.dim == 2:
        domain = record.config.offsurface_extent
    try:
        extraction = extract_surface(
            network, sample.points, sample.center, sample.scale, config, device, domain=domain
        )
    except NonFiniteOutputError as error:
        raise NonFiniteOutputError(f"model {model_path}: {error}") from None
    write_surface(out_path, extraction, _made_from(model_path, sample_path, device))
    return extraction


def _made_from(model_path: Path, sample_path: Path, device: torch.device | str) -> dict[str, str]:
    """What a network's surface was made from, for its sidecar: the device, the model file (with
    its sha256, so evaluation refuses a mesh of an older model) and the sample file."""
    return {
        "device": str(device),
        "model": str(model_path),
        "model_sha256": sha256_file(model_path),
        "sample": str(sample_path),
    }


def extract_files(
    models: Sequence[str | Path],
    samples: Sequence[str | Path],
    outs: Sequence[str | Path],
    config: ExtractionConfig = ExtractionConfig(),
    device: torch.device | str = "cpu",
    record: str | Path | None = None,
) -> list[Extraction]:
    """`extract_file` for several (model, sample, out) triples in one process, then the batch
    `record` (`write_batch_record`), written last."""
    extractions = each_shape(
        {"--model": models, "--sample": samples, "--out": outs},
        lambda model, sample, out: extract_file(model, sample, out, config, device),
    )
    if record is not None:
        write_batch_record(record, outs, "model", models, extractions)
    return extractions


def write_batch_record(
    path: str | Path,
    outs: Sequence[str | Path],
    made_from: str,
    inputs: Sequence[str | Path],
    extractions: Sequence[Extraction],
) -> Path:
    """The batch record (JSON) of a batch's surfaces: each mesh, its input (under the key
    `made_from`: `model` or `sample`), status and seconds. Written after every mesh, so its
    presence means the whole batch is complete."""
    meshes = [
        {"mesh": str(out), made_from: str(source), "status": e.status, "seconds": e.seconds}
        for out, source, e in zip(outs, inputs, extractions, strict=True)
    ]
    return write_json(path, {"meshes": meshes})
