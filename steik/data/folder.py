"""Folder datasets: a user's directory of meshes or point clouds, one shape per file.

Each file matching the pattern becomes a shape named by its stem. A mesh file becomes ground
truth plus a simulated scan (ground truth `mesh`); a point cloud is a scan without ground truth
(`none`). Two files with the same stem (e.g. `a.ply` and `a.xyz`) would write the same sample file,
so they are refused.
"""

from __future__ import annotations

from pathlib import Path

from steik.data import io
from steik.data.registry import Dataset
from steik.errors import SteikError

_SUFFIXES = sorted(set(io.POINT_SUFFIXES + io.MESH_SUFFIXES))


def folder_files(dataset: Dataset) -> dict[str, Path]:
    """Shape name (file stem) -> file, sorted by name, for a folder dataset."""
    if dataset.kind != "folder" or not dataset.path:
        raise SteikError(f"dataset {dataset.name!r} is not a folder dataset with a path")
    root = Path(dataset.path)
    if not root.is_dir():
        raise SteikError(f"folder dataset {dataset.name!r}: {root} is not a directory")
    pattern = dataset.pattern or "*.ply"
    files: dict[str, Path] = {}
    for path in sorted(p for p in root.glob(pattern) if p.is_file()):
        suffix = path.suffix.lower()
        if suffix not in io.POINT_SUFFIXES + io.MESH_SUFFIXES:
            raise SteikError(
                f"folder dataset {dataset.name!r}: {path} has an unsupported format; narrow the "
                f"pattern {pattern!r} to {', '.join(_SUFFIXES)} files"
            )
        if path.stem in files:
            raise SteikError(
                f"folder dataset {dataset.name!r}: {files[path.stem].name} and {path.name} both "
                "give the shape name "
                f"{path.stem!r}; rename one or narrow the pattern {pattern!r}"
            )
        files[path.stem] = path
    if not files:
        raise SteikError(f"folder dataset {dataset.name!r}: no file in {root} matches {pattern!r}")
    return files


def is_mesh_file(path: Path) -> bool:
    """True when the file has faces (ground truth `mesh`), False for a point cloud (`none`)."""
    return io.is_mesh(path)
