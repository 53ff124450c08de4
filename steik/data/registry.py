"""The dataset registry: every dataset the pipeline knows, described as data.

An entry says where the files come from (Google Drive id or URL, archive type, approximate
size, sha256 when published), where each shape's files lie after extraction, which shapes exist
and what ground truth they carry (`mesh`, `points`, `shapenet`, `none`; see `steik.data.sample`).
The workflow names datasets either by registry name (`srb`, `shapenet`, `scene`, `demo3d`,
`demo2d`) or by an inline folder entry `{name, kind: folder, path, pattern}`; `resolve` turns
both into a `Dataset`. `list_shapes` needs no network and no prior fetch, except for ShapeNet,
whose 260 shape ids are only known from its archive (fetch it first; the lock file lists them).

A downloaded dataset with one scan file per shape (srb, scene) can also run from a local copy
of its scans alone (`steik fetch srb --scans DIR`): the lock file then records that folder, the
scans' sha256 are checked against the record's known ones (`scan_sha256`), and its samples carry
no ground truth beyond the scan (`ground_truth` `none`: the metrics that need the dense ground
truth are NaN).

A record also says how the dataset is run and reported: the experiment whose method settings
apply by default (`srb`, `shapenet`, `scene`, `2d`) and which of the paper's tables sits beside
ours. Folder datasets (a user's directory of meshes or point clouds) are records too; each
matching file is a shape named after its file (`folder_files`).

Importing this module is cheap (no torch, no trimesh): the workflow lists shapes with it while
it builds its job graph.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steik.data import io
from steik.data.shapes2d import SHAPES_2D
from steik.errors import SteikError
from steik.fileio import NAME_MAX, longest_name

KINDS = ("download", "generated", "folder")
PAPER_TABLES = ("none", "srb", "shapenet")
"""Which paper table is printed beside a dataset's results: none, Table 1 (srb), Table 2."""
FOLDER_SUFFIXES = tuple(sorted(set(io.POINT_SUFFIXES + io.MESH_SUFFIXES)))
"""File types a folder dataset reads (meshes become ground truth, point clouds scans)."""


@dataclass(frozen=True)
class Source:
    """One archive of a downloaded dataset."""

    filename: str
    """Name of the archive under `<root>/downloads/` (also where a manual download goes)."""
    archive: str
    """`zip`, `tar.gz` or `tar.xz`."""
    gdrive_id: str | None = None
    """Google Drive file id (downloaded with gdown)."""
    url: str | None = None
    """Plain HTTP(S) URL (downloaded with pooch)."""
    size: int | None = None
    """Approximate size in bytes, for the user's information."""
    sha256: str | None = None
    """Published checksum; None when unknown (the lock file then pins the first download)."""


@dataclass(frozen=True)
class Dataset:
    """A dataset: where it comes from, its shapes, and what ground truth each shape has."""

    name: str
    kind: str
    """`download`, `generated` or `folder`."""
    ground_truth: str
    """`mesh`, `points`, `shapenet`, `none`, or `auto` for folders (decided per file)."""
    dim: int = 3
    shapes: tuple[str, ...] = ()
    """Shape names; empty when only the data can tell (folders, ShapeNet)."""
    sources: tuple[Source, ...] = ()
    layout: Mapping[str, str] = field(default_factory=dict)
    """Role -> path template relative to `<root>/<name>/`, e.g. `scan`, `gt`, `occ`."""
    description: str = ""
    path: str | None = None
    """Folder datasets: the directory holding the files."""
    pattern: str | None = None
    """Folder datasets: glob pattern of the files, e.g. `*.ply`."""
    experiment: str = "srb"
    """Experiment whose method settings (weights, lr, schedule, sizes) apply by default."""
    paper_table: str = "none"
    """The paper's table shown beside ours: `srb` (Table 1), `shapenet` (Table 2) or `none`."""
    scan_sha256: Mapping[str, str] = field(default_factory=dict)
    """Known sha256 of each shape's scan file, checked when the scans come from a local folder
    (`steik fetch NAME --scans DIR`); shapes not listed are recorded as found."""


SRB_SCAN_SHA256: dict[str, str] = {
    "anchor": "ff66b5a4b9b7e529766b242efba8a763380587c7a71798f5b95f1b3a5ce67e7d",
    "daratech": "c0157b21574ea741d77371a500dc9b34c05d64c3c4b28e90f911770abf4b7f9f",
    "dc": "132776608f03edbf097e543f57ec9472b8744fdafd8cf4a23da67a229711a52b",
    "gargoyle": "78bb925be84a1eced067eb21f4020417731b42c6256b21e86711ce54ee2c9b67",
    "lord_quas": "dc9d3be8a27558bb264fc24986838e55f846d2b9e68fb563c627d7281d0bf7d9",
}
"""sha256 of `scans/<shape>.ply` in deep_geometric_prior_data.zip (the five SRB input scans)."""

SHAPENET_CLASSES: dict[str, str] = {
    "02691156": "airplane",
    "02828884": "bench",
    "02933112": "cabinet",
    "02958343": "car",
    "03001627": "chair",
    "03211117": "display",
    "03636649": "lamp",
    "03691459": "loudspeaker",
    "04090263": "rifle",
    "04256520": "sofa",
    "04379243": "table",
    "04401088": "telephone",
    "04530566": "watercraft",
}
"""ShapeNet class id -> the class name used as folder name in the NSP point-cloud archive."""

# fmt: off
# Each record opens with what identifies it: name, kind and ground truth on one line.
REGISTRY: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(name="srb", kind="download", ground_truth="points",
            shapes=("anchor", "daratech", "dc", "gargoyle", "lord_quas"),
            sources=(
                Source(
                    "deep_geometric_prior_data.zip",
                    "zip",
                    gdrive_id="17Elfc1TTRzIQJhaNu5m7SckBH_mdjYSe",
                    size=1_120_000_000,
                ),
            ),
            layout={
                "scan": "deep_geometric_prior_data/scans/{shape}.ply",
                "gt": "deep_geometric_prior_data/ground_truth/{shape}.xyz",
            },
            description="Surface Reconstruction Benchmark (Deep Geometric Prior packaging)",
            paper_table="srb",
            scan_sha256=SRB_SCAN_SHA256,
        ),
        Dataset(name="shapenet", kind="download", ground_truth="shapenet",
            sources=(
                Source(
                    "NSP_data.tar.gz",
                    "tar.gz",
                    gdrive_id="14CW_a0gS3ARJsIonyqPc5eKT3iVcCWZ0",
                    size=371_000_000,
                ),
                Source(
                    "ShapeNetNSP.tar.gz",
                    "tar.gz",
                    gdrive_id="1h6TFHnza0axOZz5AuRkfyLMx_sFcu_Yf",
                    size=413_000_000,
                ),
            ),
            # Shape names are `<class name>_<model id>`, e.g. `lamp_d284b73d...`.
            layout={
                "scan": "NSP_dataset/{class_name}/{model}.ply",
                "occ": "ShapeNetNSP/{class_id}/{model}/points.npz",
            },
            description="ShapeNet subset of Neural Splines (13 classes x 20 test shapes)",
            experiment="shapenet",
            paper_table="shapenet",
        ),
        Dataset(name="scene", kind="download", ground_truth="none",
            shapes=("interior_room",),
            sources=(
                Source(
                    "scene_reconstruction.tar.xz",
                    "tar.xz",
                    gdrive_id="13X1UlMsnbh3dcV4tJysVDgzg6kYyxHhb",
                    size=56_000_000,
                ),
            ),
            layout={"scan": "scene_reconstruction/{shape}.ply"},
            description="SIREN's interior room scan",
            experiment="scene",
        ),
        Dataset(name="demo3d", kind="generated", ground_truth="mesh",
            shapes=("sphere", "torus", "grooved_box", "gear", "csg"),
            layout={"mesh": "{shape}.ply"},
            description="generated watertight meshes (steik.data.shapes3d)",
        ),
        Dataset(name="demo2d", kind="generated", ground_truth="mesh",
            dim=2,
            shapes=SHAPES_2D,
            layout={"curve": "{shape}.npy"},
            description="SPEC 9's 2D shapes with exact signed distances (steik.data.shapes2d)",
            experiment="2d",
        ),
        Dataset(name="folder", kind="folder", ground_truth="auto",
            description="a directory of your own meshes or point clouds (--folder, --pattern)",
        ),
    )
}
# fmt: on


def takes_local_scans(dataset: Dataset) -> bool:
    """Whether a downloaded dataset can run from a local copy of its scans alone: it has a fixed
    shape list and one scan file per shape (srb, scene; not ShapeNet, whose shapes come from its
    archive)."""
    return dataset.kind == "download" and bool(dataset.shapes) and "scan" in dataset.layout


def scan_file_name(dataset: Dataset, shape: str) -> str:
    """The file name of a shape's scan (`anchor.ply`), as in its archive and in a scans folder."""
    return Path(dataset.layout["scan"].format(shape=shape)).name


def local_scans(lock: Mapping[str, Any] | None) -> Path | None:
    """The scans folder a lock file records (`steik fetch NAME --scans DIR`), None when the
    dataset was fetched from its archives."""
    folder = (lock or {}).get("scans")
    return Path(folder) if folder else None


def folder_dataset(name: str, path: str | Path, pattern: str = "*.ply") -> Dataset:
    """A folder dataset called `name`: every file in `path` matching `pattern` is a shape."""
    if not name or "/" in name:
        raise SteikError(f"folder dataset name {name!r} must be a non-empty name without '/'")
    if name in REGISTRY and name != "folder":
        raise SteikError(
            f"folder dataset name {name!r} clashes with the registry dataset {name!r}; rename it"
        )
    return Dataset(
        name=name,
        kind="folder",
        ground_truth="auto",
        path=str(Path(path).expanduser()),
        pattern=pattern,
        description=f"files {pattern} in {path}",
    )


def resolve(entry: str | Mapping[str, Any] | Dataset) -> Dataset:
    """A registry name, an inline folder mapping `{name, kind: folder, path, pattern}` or a
    Dataset -> the Dataset."""
    if isinstance(entry, Dataset):
        return entry
    if isinstance(entry, str):
        if entry not in REGISTRY:
            raise SteikError(
                f"unknown dataset {entry!r}; choose one of {', '.join(REGISTRY)}, or make it a "
                "folder dataset (command line: --folder PATH --pattern GLOB; workflow config: "
                "{name, kind: folder, path, pattern})"
            )
        if entry == "folder":
            raise SteikError("the `folder` dataset needs a path: use --folder PATH --pattern GLOB")
        return REGISTRY[entry]
    if isinstance(entry, Mapping):
        unknown = set(entry) - {"name", "kind", "path", "pattern"}
        if entry.get("kind") != "folder" or unknown or "name" not in entry or "path" not in entry:
            raise SteikError(
                f"dataset entry {dict(entry)!r} is not valid: an inline dataset needs exactly "
                "name, kind: folder, path and optionally pattern"
            )
        return folder_dataset(str(entry["name"]), entry["path"], str(entry.get("pattern", "*.ply")))
    raise SteikError(f"dataset entry {entry!r} must be a registry name or a folder mapping")


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def shape_name(stem: str) -> str:
    """The shape name of a folder dataset's file stem: letters, digits and `_ . + -` are kept,
    any other character (a space, a slash, an accent) becomes `_`, so that the name is a safe
    folder and file name in every output path."""
    name = _UNSAFE.sub("_", stem)
    return name if name[:1].isalnum() else f"s{name}"


def folder_files(dataset: Dataset) -> dict[str, Path]:
    """Shape name -> file of a folder dataset, sorted by name.

    Names come from file stems (`shape_name`); two files that would give one name (`a.ply` and
    `a.xyz`, or `my scan.ply` and `my_scan.ply`) are refused, naming both.
    """
    if dataset.kind != "folder" or not dataset.path:
        raise SteikError(f"dataset {dataset.name!r} is not a folder dataset with a path")
    root = Path(dataset.path)
    if not root.is_dir():
        raise SteikError(
            f"folder dataset {dataset.name!r}: {root} is not a directory; fix its `path`"
        )
    pattern = dataset.pattern or "*.ply"
    if Path(pattern).is_absolute() or Path(pattern).anchor:
        raise SteikError(
            f"folder dataset {dataset.name!r}: pattern {pattern!r} is an absolute path; give it "
            f"relative to the folder {root} (for example '*.ply')"
        )
    try:
        matches = sorted(p for p in root.glob(pattern) if p.is_file())
    except (ValueError, NotImplementedError) as error:  # pathlib's refusals of odd patterns
        raise SteikError(
            f"folder dataset {dataset.name!r}: pattern {pattern!r} is not a usable glob "
            f"({error}); give one relative to the folder, such as '*.ply'"
        ) from None
    files: dict[str, Path] = {}
    for path in matches:
        if path.suffix.lower() not in FOLDER_SUFFIXES:
            raise SteikError(
                f"folder dataset {dataset.name!r}: {path} has an unsupported format; narrow the "
                f"pattern {pattern!r} to {', '.join(FOLDER_SUFFIXES)} files"
            )
        name = shape_name(path.stem)
        if longest_name(name) > NAME_MAX:
            allowed = len(name.encode()) - (longest_name(name) - NAME_MAX)
            raise SteikError(
                f"folder dataset {dataset.name!r}: the name of {path.name[:40]}... is "
                f"{len(name.encode())} bytes; outputs named after it (and their temporary "
                f"names) would exceed the file system's {NAME_MAX}-byte limit; rename the file "
                f"to at most {allowed} characters before its extension"
            )
        if name in files:
            raise SteikError(
                f"folder dataset {dataset.name!r}: {files[name].name} and {path.name} both give "
                f"the shape name {name!r}; rename one or narrow the pattern {pattern!r}"
            )
        files[name] = path
    if not files:
        raise SteikError(f"folder dataset {dataset.name!r}: no file in {root} matches {pattern!r}")
    return dict(sorted(files.items()))


def dataset_name(entry: str | Mapping[str, Any] | Dataset) -> str:
    """The dataset's name as used in `resources/<name>` and `results/<name>`."""
    return resolve(entry).name


def lock_path(name: str, root: str | Path = "resources") -> Path:
    """Where `steik fetch` records what it fetched: `<root>/<name>.lock.json`."""
    return Path(root) / f"{name}.lock.json"


def read_lock(name: str, root: str | Path = "resources") -> dict[str, Any] | None:
    """The lock file's content, or None if the dataset has not been fetched."""
    path = lock_path(name, root)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise SteikError(
            f"lock file {path} is unreadable ({error}); delete it and fetch again"
        ) from error


def list_shapes(
    entry: str | Mapping[str, Any] | Dataset, root: str | Path = "resources"
) -> list[str]:
    """Shape names of a dataset, without network: registry data, a folder's file stems, or (for
    ShapeNet) the shape list recorded by `steik fetch`."""
    dataset = resolve(entry)
    if dataset.kind == "folder":
        return sorted(folder_files(dataset))
    if dataset.shapes:
        return list(dataset.shapes)
    lock = read_lock(dataset.name, root)
    if lock is None or not lock.get("shapes"):
        raise SteikError(
            f"the shapes of {dataset.name!r} are only known from its archive: run "
            f"`steik fetch {dataset.name} --root {root}` first"
        )
    return list(lock["shapes"])


def ground_truth(
    entry: str | Mapping[str, Any] | Dataset,
    shape: str | None = None,
    root: str | Path = "resources",
) -> str:
    """The ground-truth kind of a dataset (`mesh`, `points`, `shapenet`, `none`; `auto` for a
    folder when no shape is given; with a shape, a folder's file decides: mesh or point cloud;
    `none` for a dataset fetched from its scans alone)."""
    dataset = resolve(entry)
    if dataset.kind == "folder" and shape is not None:
        path = folder_files(dataset)[check_shape(dataset, shape, root)]
        return "mesh" if io.is_mesh(path) else "none"
    if shape is not None:
        check_shape(dataset, shape, root)
    if dataset.kind == "download" and local_scans(read_lock(dataset.name, root)) is not None:
        return "none"
    return dataset.ground_truth


def check_shape(dataset: Dataset, shape: str, root: str | Path = "resources") -> str:
    """Return `shape` if the dataset has it, else raise naming the valid shapes."""
    shapes = list_shapes(dataset, root)
    if shape not in shapes:
        listed = ", ".join(shapes[:12]) + (", ..." if len(shapes) > 12 else "")
        raise SteikError(f"dataset {dataset.name!r} has no shape {shape!r}; its shapes: {listed}")
    return shape


def split_shapenet_shape(shape: str) -> tuple[str, str, str]:
    """`<class name>_<model id>` -> (class name, class id, model id)."""
    class_name, _, model = shape.partition("_")
    ids = {v: k for k, v in SHAPENET_CLASSES.items()}
    if class_name not in ids or not model:
        raise SteikError(
            f"ShapeNet shape {shape!r} must be `<class>_<model id>` with class one of "
            f"{', '.join(sorted(ids))}"
        )
    return class_name, ids[class_name], model
