"""Readers for every input file the pipeline accepts, and the checks that refuse bad ones.

Point clouds: `.ply` (vertices, with or without normals; a mesh's vertices also count), `.xyz`
(3 columns, or 6 with normals), `.npy` (`[N, 3]` or `[N, 6]`), `.npz` (`points`, optional
`normals`). Meshes: `.ply`, `.off`, `.obj`, `.stl`. Occupancy Networks `points.npz` (points plus
bit-packed occupancies). Parsing is left to trimesh and numpy; this module adds the checks, so that
every refusal is one `SteikError` naming the file and the problem: unreadable or truncated file,
zero points, non-finite coordinates, a degenerate extent (all points equal, or a 3D cloud lying in
a plane), and a mesh without faces where a mesh is required.
"""

from __future__ import annotations

import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from steik.errors import SteikError

if TYPE_CHECKING:
    import trimesh

POINT_SUFFIXES = (".ply", ".xyz", ".npy", ".npz")
MESH_SUFFIXES = (".ply", ".off", ".obj", ".stl")

_FLAT_TOLERANCE = 1e-9
"""A 3D cloud whose thinnest principal extent is below this fraction of its widest is planar."""


@dataclass(frozen=True)
class PointCloud:
    """Points `[N, d]` (float64) with optional unit-or-raw normals `[N, d]`."""

    points: np.ndarray
    normals: np.ndarray | None = None


def check_points(points: np.ndarray, where: str | Path, dim: int | None = 3) -> np.ndarray:
    """Return `points [N, d]` as float64 or raise naming `where`: wrong shape, zero points,
    non-finite coordinates, all points equal, or (3D) all points in one plane."""
    array = np.asarray(points)
    if (
        array.ndim != 2
        or (dim is not None and array.shape[1] != dim)
        or array.shape[1] not in (2, 3)
    ):
        want = f"[N, {dim}]" if dim else "[N, 2] or [N, 3]"
        raise SteikError(f"{where}: expected points of shape {want}, found {array.shape}")
    if len(array) == 0:
        raise SteikError(f"{where}: the file holds zero points")
    if not (np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array)):
        raise SteikError(
            f"{where}: coordinates must be real numbers, found values of type {array.dtype}; "
            "write the points as floats"
        )
    array = array.astype(np.float64)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise SteikError(
            f"{where}: {int(bad.sum())} point(s) have non-finite coordinates (NaN or inf), "
            f"first at row {int(np.argmax(bad))}; fix or remove them"
        )
    centred = array - array.mean(axis=0)
    extent = np.abs(centred).max()
    if extent == 0:
        raise SteikError(f"{where}: all {len(array)} points are equal; a surface needs an extent")
    if array.shape[1] == 3:
        check_volume(centred / extent, where)
    return array


def check_volume(points: np.ndarray, where: str | Path) -> None:
    """Raise naming `where` when 3D `points [N, 3]` (not all equal) lie in one plane or line.

    Shared by the readers and the sample-file check, so that a cloud `steik sample` refuses is
    refused by every command that reads a sample file too.
    """
    data = np.asarray(points, dtype=np.float64)
    centred = data - data.mean(axis=0)
    centred = centred / max(float(np.abs(centred).max()), np.finfo(float).tiny)
    singular = np.linalg.svd(centred[:: max(1, len(data) // 200_000)], compute_uv=False)
    if len(singular) < 3 or singular[2] <= _FLAT_TOLERANCE * singular[0]:
        raise SteikError(
            f"{where}: all points lie in one plane (or line); a 3D surface needs volume"
        )


def _check_normals(normals: np.ndarray | None, count: int, where: str | Path) -> np.ndarray | None:
    """Validate optional normals against the number of points."""
    if normals is None:
        return None
    if not np.issubdtype(np.asarray(normals).dtype, np.number):
        kind = np.asarray(normals).dtype
        raise SteikError(f"{where}: normals must be real numbers, found values of type {kind}")
    normals = np.asarray(normals, dtype=np.float64)
    if normals.shape[0] != count or normals.ndim != 2:
        raise SteikError(f"{where}: {normals.shape} normals for {count} points")
    if not np.isfinite(normals).all():
        raise SteikError(f"{where}: the normals contain NaN or inf")
    check_normal_lengths(normals, where)
    return normals


def check_normal_lengths(normals: np.ndarray, where: str | Path) -> None:
    """Raise naming `where` when some normals have (almost) zero length: they give no direction,
    and scaling them to unit length is impossible (Poisson and normal-supervised training would
    read them as data)."""
    length = np.linalg.norm(np.asarray(normals, dtype=np.float64), axis=1)
    zero = ~(length > 1e-12)
    if zero.any():
        raise SteikError(
            f"{where}: {int(zero.sum())} normal(s) have zero length, first at row "
            f"{int(np.argmax(zero))}; fix them or leave the normals out of the file"
        )


def _load_trimesh(path: Path) -> trimesh.Trimesh | trimesh.PointCloud:
    """Load a PLY/OFF/OBJ/STL file with trimesh, turning every failure into a SteikError."""
    if not path.is_file():
        raise SteikError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise SteikError(f"{path}: the file is empty")
    import trimesh  # here, not above: listing a folder dataset's files must stay light

    try:
        loaded = trimesh.load(path, process=False)
    except Exception as error:  # trimesh raises many types on damaged input
        raise SteikError(f"{path}: unreadable or truncated {path.suffix} file ({error})") from error
    if isinstance(loaded, trimesh.Scene):
        geometries = list(loaded.geometry.values())
        if not geometries:
            raise SteikError(f"{path}: the file holds zero points (no geometry)")
        meshes = [g for g in geometries if isinstance(g, trimesh.Trimesh)]
        loaded = trimesh.util.concatenate(meshes) if meshes else geometries[0]
    return loaded


def _ply_vertex_count(path: Path) -> int | None:
    """The vertex count a PLY header declares (None if there is no readable header)."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
    for line in head.split(b"\n"):
        parts = line.split()
        if parts[:2] == [b"element", b"vertex"] and len(parts) == 3:
            return int(parts[2])
        if line.strip() == b"end_header":
            break
    return None


def read_points(path: str | Path, dim: int | None = 3) -> PointCloud:
    """Read a point cloud (`.ply`, `.xyz`, `.npy`, `.npz`) with normals when the file has them."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in POINT_SUFFIXES + MESH_SUFFIXES:
        raise SteikError(
            f"{path}: unsupported point-cloud format {suffix!r}; "
            f"use one of {', '.join(POINT_SUFFIXES)}"
        )
    if not path.is_file():
        raise SteikError(f"{path}: file not found")
    normals = None
    if suffix == ".xyz":
        try:
            with warnings.catch_warnings():  # an empty file is reported below, not as a warning
                warnings.simplefilter("ignore", UserWarning)
                table = np.loadtxt(path, dtype=np.float64, ndmin=2)
        except ValueError as error:
            raise SteikError(f"{path}: unreadable .xyz file ({error})") from error
        if table.size == 0:
            raise SteikError(f"{path}: the file holds zero points")
        if table.shape[1] not in (3, 6):
            raise SteikError(
                f"{path}: .xyz needs 3 columns (x y z) or 6 (x y z nx ny nz), "
                f"found {table.shape[1]}"
            )
        points, normals = table[:, :3], (table[:, 3:] if table.shape[1] == 6 else None)
    elif suffix in (".npy", ".npz"):
        points, normals = _read_numpy(path)
    else:
        loaded = _load_trimesh(path)
        points = np.asarray(loaded.vertices)
        if suffix == ".ply":
            declared = _ply_vertex_count(path)
            if declared is not None and declared != len(points):
                raise SteikError(f"{path}: truncated PLY ({len(points)} of {declared} vertices)")
            normals = _ply_normals(loaded)
    points = check_points(points, path, dim)
    return PointCloud(points, _check_normals(normals, len(points), path))


def _ply_normals(loaded: trimesh.Trimesh | trimesh.PointCloud) -> np.ndarray | None:
    """Per-vertex normals stored in a PLY file (nx, ny, nz), or None."""
    raw = loaded.metadata.get("_ply_raw", {}).get("vertex", {}).get("data")
    # trimesh keeps binary PLY vertices as a structured array and ASCII ones as a dict of columns.
    names = raw.dtype.names if isinstance(raw, np.ndarray) else (raw.keys() if raw else None)
    if not names or not {"nx", "ny", "nz"} <= set(names):
        return None
    columns = [np.asarray(raw[k], dtype=np.float64).reshape(-1) for k in ("nx", "ny", "nz")]
    return np.stack(columns, axis=1)


def _read_numpy(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Points (and normals) from `.npy` (`[N, 3|6]`) or `.npz` (`points`, `normals` keys)."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
            if array.ndim == 2 and array.shape[1] == 6:
                return array[:, :3], array[:, 3:]
            return array, None
        with np.load(path, allow_pickle=False) as data:
            if "points" not in data.files:
                raise SteikError(
                    f"{path}: .npz has no `points` array (keys: {', '.join(data.files)})"
                )
            return data["points"], (data["normals"] if "normals" in data.files else None)
    except SteikError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise SteikError(f"{path}: unreadable or truncated {path.suffix} file ({error})") from error


def read_mesh(path: str | Path) -> trimesh.Trimesh:
    """Read a triangle mesh (`.ply`, `.off`, `.obj`, `.stl`); a file without faces is refused."""
    import trimesh

    path = Path(path)
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise SteikError(f"{path}: unsupported mesh format; use one of {', '.join(MESH_SUFFIXES)}")
    loaded = _load_trimesh(path)
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise SteikError(f"{path}: a mesh is required here but the file has no faces")
    if path.suffix.lower() == ".ply":
        declared = _ply_vertex_count(path)
        if declared is not None and declared != len(loaded.vertices):
            raise SteikError(
                f"{path}: truncated PLY ({len(loaded.vertices)} of {declared} vertices)"
            )
    check_points(loaded.vertices, path, 3)
    if len(loaded.faces) and (loaded.faces.max() >= len(loaded.vertices) or loaded.faces.min() < 0):
        raise SteikError(f"{path}: faces refer to vertices that do not exist (truncated file?)")
    mesh = trimesh.Trimesh(vertices=loaded.vertices, faces=loaded.faces, process=True)
    if len(mesh.faces) == 0 or not mesh.area > 0:
        raise SteikError(
            f"{path}: every face of the mesh has zero area, so it has no surface to sample; "
            "export the mesh again (or use the file as a point cloud: a .xyz of its points)"
        )
    return mesh


def is_mesh(path: str | Path) -> bool:
    """True if the file holds triangles (a mesh), False for a point cloud."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".off", ".obj", ".stl"):
        return True
    if suffix != ".ply":
        return False
    loaded = _load_trimesh(path)
    return len(getattr(loaded, "faces", ())) > 0


def read_occupancy(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Occupancy Networks `points.npz` -> (points float32 `[Q, 3]`, inside labels bool `[Q]`).

    The occupancies are stored with `np.packbits`; unpacking gives a multiple of 8 bits, of which
    the first Q belong to the points.
    """
    path = Path(path)
    if not path.is_file():
        raise SteikError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"points", "occupancies"} - set(data.files)
            if missing:
                raise SteikError(
                    f"{path}: not an Occupancy Networks points.npz "
                    f"(lacks {', '.join(sorted(missing))})"
                )
            points = np.asarray(data["points"], dtype=np.float32)
            packed = np.asarray(data["occupancies"])
    except SteikError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise SteikError(f"{path}: unreadable or truncated .npz file ({error})") from error
    check_points(points, path, 3)
    bits = np.unpackbits(packed.astype(np.uint8))
    if len(bits) < len(points) or len(bits) - len(points) >= 8:
        raise SteikError(f"{path}: {len(bits)} occupancy bits do not match {len(points)} points")
    return points, bits[: len(points)].astype(bool)
