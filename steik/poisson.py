"""Screened Poisson surface reconstruction (Kazhdan & Hoppe 2013): the classical reference row.

What a user without a neural method runs on a point cloud, with PyMeshLab (MeshLab's filters as a
Python library; it installs from its wheel with no system package beyond those of a stock Debian,
unlike Open3D, whose CPU wheel needs libusb-1.0):

1. normals from the k nearest neighbours, oriented consistently over the neighbour graph, with
   MeshLab's "Compute normals for point sets" (`compute_normal_for_point_clouds`: a plane fit to
   each point's k neighbours, the orientation then propagated from neighbour to neighbour); the
   headline setting ignores the sample's own normals (points only, like the neural rows);
2. one global orientation: the point farthest from the centroid lies on the convex hull, where
   the outward normal points away from the centroid; all normals are flipped if that one does not;
3. screened Poisson (`generate_surface_reconstruction_screened_poisson`) at a stated octree
   depth, with MeshLab's defaults for the rest (point weight 4, 1.5 samples per node, a box 1.1
   times the points' bounding cube), one thread so that the result is reproducible;
4. density trimming: MeshLab stores each output vertex's sample density as its quality; the
   vertices below the `trim_quantile` quantile of it go, with their faces (as Open3D's
   documentation trims its Poisson meshes), which removes the surface Poisson invents far from
   the data;
5. the mesh is mapped to original units and written like `steik extract` writes its meshes
   (`mesh.ply` and the `mesh.json` sidecar, `extract_seconds` = steps 1-4).

Its metrics row (`row_run`) says so: no network and no training (no parameters, iterations or
training seconds), the octree depth as its structure, the library's version as its message.
"""

from __future__ import annotations

import importlib.metadata
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pymeshlab

from steik.batching import each_shape
from steik.data.sample import load_sample
from steik.errors import SteikError
from steik.grid import Grid
from steik.mesh import Extraction, write_batch_record, write_surface
from steik.methods import POISSON
from steik.provenance import steik_version
from steik.rows import Run


@dataclass(frozen=True)
class PoissonConfig:
    """Settings of the screened Poisson reconstruction (names follow MeshLab's filters)."""

    depth: int = 8
    """Octree depth: the finest cells are 1 / 2^depth of the reconstruction box (8: 256 cells)."""
    trim_quantile: float = 0.01
    """Vertices whose density is below this quantile of all densities are removed (0: none)."""
    k_neighbours: int = 10
    """Neighbours of each point in the normal estimation (MeshLab's default 10)."""
    smooth_iterations: int = 0
    """Smoothing iterations of the estimated normals (MeshLab's default 0)."""
    point_weight: float = 4.0
    """Screening weight: how strongly the surface is pulled to the points (Kazhdan's 4)."""
    samples_per_node: float = 1.5
    """Minimum number of points per octree node (MeshLab's default 1.5)."""
    box_scale: float = 1.1
    """Reconstruction box = this times the points' bounding cube (MeshLab's default 1.1)."""
    use_sample_normals: bool = False
    """Use the sample file's normals instead of estimating them (the headline setting: no)."""
    threads: int = 1
    """Threads of the Poisson solver; 1 gives the same mesh on every run."""

    def __post_init__(self) -> None:
        def integer(name: str, low: int, high: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise SteikError(
                    f"poisson {name} must be an integer in [{low}, {high}], got {value!r}"
                )

        def number(name: str, low: float, high: float) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SteikError(f"poisson {name} must be a number, got {value!r}")
            if not (math.isfinite(value) and low <= value <= high):
                raise SteikError(f"poisson {name} must lie in [{low}, {high}], got {value!r}")

        integer("depth", 2, 14)
        integer("k_neighbours", 3, 1000)
        integer("smooth_iterations", 0, 100)
        integer("threads", 1, 256)
        number("trim_quantile", 0.0, 0.99)
        number("point_weight", 0.0, 1e6)
        number("samples_per_node", 1.0, 1e3)
        number("box_scale", 1.0, 10.0)
        if not isinstance(self.use_sample_normals, bool):
            raise SteikError(
                f"poisson use_sample_normals must be true or false, got {self.use_sample_normals!r}"
            )


def library_version() -> str:
    """`pymeshlab <version>`, recorded in the sidecar."""
    return f"pymeshlab {importlib.metadata.version('pymeshlab')}"


def orient_outward(points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """`normals [N, 3]`, consistently oriented among themselves, turned outward as a whole: the
    point farthest from the centroid is on the convex hull, so its outward normal has a positive
    component along (point - centroid)."""
    offsets = points - points.mean(axis=0)
    far = int(np.argmax(np.einsum("ij,ij->i", offsets, offsets)))
    return -normals if float(normals[far] @ offsets[far]) < 0 else normals


def estimate_normals(points: np.ndarray, k: int, smooth_iterations: int = 0) -> np.ndarray:
    """Unit normals `[N, 3]` of `points [N, 3]`: MeshLab's k-nearest-neighbour estimate with its
    consistent orientation, then `orient_outward`."""
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(pymeshlab.Mesh(vertex_matrix=np.asarray(points, dtype=np.float64)))
    meshes.compute_normal_for_point_clouds(k=k, smoothiter=smooth_iterations, flipflag=False)
    normals = np.asarray(meshes.current_mesh().vertex_normal_matrix(), dtype=np.float64)
    return orient_outward(np.asarray(points, dtype=np.float64), normals)


def screened_poisson(
    points: np.ndarray, normals: np.ndarray, config: PoissonConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Screened Poisson surface of oriented points: vertices `[V, 3]`, faces `[F, 3]` and each
    vertex's sample density `[V]` (MeshLab's vertex quality)."""
    meshes = pymeshlab.MeshSet()
    meshes.add_mesh(
        pymeshlab.Mesh(
            vertex_matrix=np.asarray(points, dtype=np.float64),
            v_normals_matrix=np.asarray(normals, dtype=np.float64),
        )
    )
    try:
        meshes.generate_surface_reconstruction_screened_poisson(
            depth=config.depth,
            scale=config.box_scale,
            samplespernode=config.samples_per_node,
            pointweight=config.point_weight,
            preclean=False,
            threads=config.threads,
        )
    except pymeshlab.PyMeshLabException as error:
        raise SteikError(f"screened Poisson failed on this point cloud ({error})") from None
    mesh = meshes.current_mesh()
    return (
        np.asarray(mesh.vertex_matrix(), dtype=np.float64),
        np.asarray(mesh.face_matrix(), dtype=np.int64),
        np.asarray(mesh.vertex_scalar_array(), dtype=np.float64),
    )


def trim_by_density(
    vertices: np.ndarray, faces: np.ndarray, density: np.ndarray, quantile: float
) -> tuple[np.ndarray, np.ndarray]:
    """Remove the vertices whose density is below its `quantile` quantile, every face that uses
    one, and vertices no face uses any more: (vertices `[V', 3]`, faces `[F', 3]`)."""
    if len(faces) == 0:
        return vertices[:0], faces
    keep = np.ones(len(vertices), dtype=bool)
    if quantile > 0:
        keep = density >= np.quantile(density, quantile)
    faces = faces[keep[faces].all(axis=1)]
    used = np.zeros(len(vertices), dtype=bool)
    used[faces.ravel()] = True
    new_index = np.cumsum(used) - 1
    return vertices[used], new_index[faces]


def reconstruct(
    points: np.ndarray, config: PoissonConfig = PoissonConfig(), normals: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Steps 1-4 on `points [N, 3]` (any frame): (vertices `[V, 3]`, faces `[F, 3]`, info).

    `normals [N, 3]`, when given and `config.use_sample_normals` is set, replace the estimate.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise SteikError(
            f"screened Poisson reconstructs 3D point clouds; got points of shape {points.shape}"
        )
    if len(points) <= config.k_neighbours:
        raise SteikError(
            f"screened Poisson needs more than k_neighbours = {config.k_neighbours} points, got "
            f"{len(points)}; lower k_neighbours or sample more points"
        )
    if not np.isfinite(points).all():
        raise SteikError("points hold non-finite coordinates; clean the scan and re-sample")
    if config.use_sample_normals:
        if normals is None:
            raise SteikError("use_sample_normals is set but the sample has no normals; unset it")
        normals = np.asarray(normals, dtype=np.float64)
        source = "sample"
    else:
        normals = estimate_normals(points, config.k_neighbours, config.smooth_iterations)
        source = f"estimated (k = {config.k_neighbours}, oriented by MeshLab, outward)"
    vertices, faces, density = screened_poisson(points, normals, config)
    kept_vertices, kept_faces = trim_by_density(vertices, faces, density, config.trim_quantile)
    info = {
        "normals": source,
        "poisson_vertices": len(vertices),
        "trimmed_vertices": len(vertices) - len(kept_vertices),
    }
    return kept_vertices, kept_faces, info


def _octree_grid(points: np.ndarray, config: PoissonConfig) -> Grid:
    """The finest octree level as a regular grid (normalised frame), for the sidecar: the box is
    `box_scale` times the bounding cube of the points, 2^depth cells a side."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    side = float((hi - lo).max()) * config.box_scale
    cells = 2**config.depth
    origin = (lo + hi) / 2 - side / 2
    return Grid(tuple(float(v) for v in origin), side / cells, (cells + 1,) * 3)


def reconstruct_file(
    sample_path: str | Path, out_path: str | Path, config: PoissonConfig = PoissonConfig()
) -> Extraction:
    """`steik reconstruct`: read the sample, reconstruct, write `out_path` (.ply) and its `.json`
    sidecar in original units, as `steik extract` does. Nothing is written on error."""
    sample_path, out_path = Path(sample_path), Path(out_path)
    if out_path.suffix.lower() != ".ply":
        raise SteikError(f"mesh output {out_path} must end in .ply")
    sample = load_sample(sample_path)
    if sample.dim != 3:
        raise SteikError(
            f"sample {sample_path} is {sample.dim}D; screened Poisson reconstructs 3D point clouds"
        )
    started = time.perf_counter()
    vertices, faces, info = reconstruct(sample.points, config, sample.normals)
    seconds = time.perf_counter() - started
    status, message = "ok", ""
    if len(faces) == 0:
        status, message = "no_surface", "screened Poisson returned no triangles"
    extraction = Extraction(
        vertices=sample.to_original(vertices) if len(vertices) else np.zeros((0, 3)),
        cells=faces if len(faces) else np.zeros((0, 3), dtype=np.int64),
        status=status,
        points_evaluated=0,
        grid=_octree_grid(np.asarray(sample.points, dtype=np.float64), config),
        mode=POISSON,
        seconds=seconds,
        message=message,
    )
    record = {
        "method": POISSON,
        "sample": str(sample_path),
        "library": library_version(),
        "poisson": asdict(config),
        **info,
    }
    write_surface(out_path, extraction, record)
    return extraction


def reconstruct_files(
    samples: Sequence[str | Path],
    outs: Sequence[str | Path],
    config: PoissonConfig = PoissonConfig(),
    record: str | Path | None = None,
) -> list[Extraction]:
    """`reconstruct_file` for several (sample, out) pairs in one process (a batch of shapes),
    then the batch `record` (as `steik extract` writes it, each mesh's input its sample)."""
    extractions = each_shape(
        {"--sample": samples, "--out": outs},
        lambda sample, out: reconstruct_file(sample, out, config),
    )
    if record is not None:
        write_batch_record(record, outs, "sample", samples, extractions)
    return extractions


def row_run(sidecar: Mapping[str, Any]) -> Run:
    """What a screened Poisson mesh's metrics row says of its making, from the mesh's sidecar:
    no network, no training (zero parameters, iterations and training seconds, no time per
    iteration), the octree depth as its structure, the CPU, and the library in the message."""
    settings = sidecar.get(POISSON, {})
    columns = {
        "method": str(sidecar["method"]),
        "seed": 0,
        "neuron": "",
        "structure": f"depth {settings['depth']}" if "depth" in settings else "",
        "init": "",
        "div": "",
        "n_params": 0,
        "iterations": 0,
        "n_points": 0,
        "train_seconds": 0.0,
        "ms_per_iter": math.nan,
        "n_shapes_batch": 1,
        "device": "cpu",
        "torch_version": "",
        "steik_version": steik_version(),
        "config_hash": "",
        "step": None,
    }
    return Run(columns, diverged=False, message=str(sidecar.get("library", "")))
