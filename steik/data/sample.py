"""Per-shape sample files: the one place that defines their keys, their reader and writer, and
which arrays each kind of dataset contributes (made by `steik.data.sampling`).

`steik sample DATASET SHAPE --out results/<dataset>/samples/<shape>.npz` turns one shape of a
dataset into everything later stages need: the normalised scan that training reads, and the
ground truth that evaluation compares against. The file is a plain `.npz` (read it with
`np.load(path, allow_pickle=False)` or `load_sample`):

| key | dtype / shape | meaning |
|---|---|---|
| `points` | float32 [N, d] | normalised scan (SPEC 5): minus mean, over largest abs coordinate |
| `normals` | float32 [N, d] | optional: unit normals of the scan points |
| `center` | float64 [d] | original = points * scale + center |
| `scale` | float64 [] | |
| `gt_points` | float64 [M, d] | optional: dense ground-truth surface samples, original units |
| `gt_normals` | float32 [M, d] | optional: unit normals at `gt_points` (mesh or exact curve) |
| `occ_points` | float64 [Q, d] | optional: IoU test points, original units |
| `occ_labels` | bool [Q] | optional: True = inside the ground truth |
| `dataset`, `shape` | str | identifiers |
| `ground_truth` | str | `mesh`, `points`, `shapenet` or `none` (see below) |
| `source` | str | the input file (`generated:<name>` for demo shapes) |
| `source_sha256` | str | its sha256 (demo shapes: of the file `steik fetch` writes) |

Strings are 0-d numpy unicode arrays; `str(data["shape"])` gives the text. The 2D demo shapes
are not normalised: they keep SPEC 9's coordinates (`center` 0, `scale` 1).

`ground_truth` says which metrics apply (SPEC 7):
- `mesh` (demo3d, demo2d, meshes in a folder dataset): a simulated scan of `n_points` surface
  points (optional Gaussian noise, std = `noise` x bounding-box diagonal), `n_gt` dense surface
  samples with normals, and `n_occ` IoU points uniform in the padded bounding box labelled by a
  winding-number inside test of the mesh (2D: a regular grid labelled by the exact SDF sign).
- `points` (SRB): the scan as given; `gt_points` = the dense ground-truth `.xyz`. SRB fetched
  from a local copy of its scans alone (`steik fetch srb --scans DIR`) has no `.xyz`: its
  samples are `none`.
- `shapenet`: the NSP point cloud is both the scan and G (`gt_points`); `occ_points`,
  `occ_labels` = Occupancy Networks `points.npz`, mapped into the point cloud's frame.
- `none` (the scene, point clouds in a folder dataset): the scan alone.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from steik.data import io, registry, shapes2d, shapes3d
from steik.data.registry import Dataset
from steik.data.sampling import SampleConfig, sample_curve, sample_mesh, scan_sample
from steik.errors import SteikError
from steik.fileio import atomic_path, sha256_file

GROUND_TRUTH_KINDS: tuple[str, ...] = ("mesh", "points", "shapenet", "none")
_STRING_KEYS = ("dataset", "shape", "ground_truth", "source", "source_sha256")
_OPTIONAL_ARRAYS = ("normals", "gt_points", "gt_normals", "occ_points", "occ_labels")
_DTYPES = {"gt_points": np.float64, "occ_points": np.float64, "occ_labels": bool}
"""Optional arrays not stored as float32: those in original units stay float64, since a shape
far from the origin (UTM-like coordinates) keeps only about 7 significant digits in float32."""


@dataclass
class Sample:
    """One shape's sample file in memory (keys as in the module docstring; optional ones None)."""

    points: np.ndarray
    """float32 `[N, d]`: normalised scan."""
    center: np.ndarray
    """float64 `[d]`: original = points * scale + center."""
    scale: float
    dataset: str
    shape: str
    ground_truth: str
    source: str
    source_sha256: str
    normals: np.ndarray | None = None
    """float32 `[N, d]`: unit normals of the scan points."""
    gt_points: np.ndarray | None = None
    """float64 `[M, d]`: ground-truth surface samples, original units."""
    gt_normals: np.ndarray | None = None
    """float32 `[M, d]`: unit normals at gt_points."""
    occ_points: np.ndarray | None = None
    """float64 `[Q, d]`: IoU test points, original units."""
    occ_labels: np.ndarray | None = None
    """bool `[Q]`: True = inside."""

    @property
    def dim(self) -> int:
        """Spatial dimension d (2 or 3)."""
        return int(self.points.shape[1])

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map normalised points `[K, d]` back to original units (float64)."""
        return np.asarray(points, dtype=np.float64) * self.scale + self.center

    def to_normalised(self, points: np.ndarray) -> np.ndarray:
        """Map original-unit points `[K, d]` into the training frame (float64)."""
        return (np.asarray(points, dtype=np.float64) - self.center) / self.scale


def write_sample(path: str | Path, sample: Sample) -> Path:
    """Write `sample` to `path` (.npz) atomically, after checking it against the key table."""
    _check(sample, str(path))
    arrays: dict[str, np.ndarray] = {
        "points": np.asarray(sample.points, dtype=np.float32),
        "center": np.asarray(sample.center, dtype=np.float64),
        "scale": np.asarray(sample.scale, dtype=np.float64).reshape(()),
    }
    for key in _STRING_KEYS:
        arrays[key] = np.array(getattr(sample, key), dtype=np.str_)
    for key in _OPTIONAL_ARRAYS:
        value = getattr(sample, key)
        if value is not None:
            arrays[key] = np.asarray(value, dtype=_DTYPES.get(key, np.float32))
    final = Path(path)
    if final.suffix != ".npz":
        raise SteikError(f"sample output {final} must end in .npz")
    with atomic_path(final) as tmp:
        _write_npz(tmp, arrays)
    return final


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed `.npz` that `np.load` reads, with fixed member timestamps so that the same
    arrays always give the same bytes (np.savez stamps the current time into the zip)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)


def load_sample(path: str | Path) -> Sample:
    """Read and check a sample file: the one reader every command uses.

    Files written by `steik sample` hold every key; a hand-made file needs only `points`
    (`center` 0 and `scale` 1 then, the shape named after the file). Anything no stage could use
    (unreadable file, wrong shapes, non-finite values, fewer than two distinct points, a scale
    that is not a positive number) is a SteikError naming the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise SteikError(f"sample file {path} does not exist; create it with `steik sample`")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except PermissionError:
        raise SteikError(f"sample file {path} is not readable (permission denied)") from None
    except Exception as error:  # numpy raises several types for damaged zip members
        raise SteikError(
            f"sample file {path} is unreadable ({error}); run `steik sample` again"
        ) from None
    if "points" not in arrays:
        raise SteikError(
            f"sample file {path} has no `points` array (keys: {', '.join(sorted(arrays))}); "
            "run `steik sample` again"
        )
    names = {f.name for f in fields(Sample)}
    values: dict[str, Any] = {key: value for key, value in arrays.items() if key in names}
    d = np.shape(values["points"])[-1] if np.ndim(values["points"]) == 2 else 0
    values.setdefault("center", np.zeros(d))
    values.setdefault("scale", np.float64(1.0))
    defaults = {"dataset": "", "shape": path.stem, "ground_truth": "none", "source": str(path),
                "source_sha256": ""}  # fmt: skip
    for key in _STRING_KEYS:
        values[key] = str(values[key]) if key in values else defaults[key]
    try:
        values["scale"] = float(np.asarray(values["scale"]).reshape(()))
        values["center"] = np.asarray(values["center"], dtype=np.float64)
    except (TypeError, ValueError):
        raise SteikError(
            f"sample file {path}: `scale` must be one number and `center` numbers; run "
            "`steik sample` again"
        ) from None
    sample = Sample(**values)
    _check(sample, f"sample file {path}")
    return sample


def _check(sample: Sample, where: str) -> None:
    """Raise a SteikError if the sample's arrays disagree with the key table or cannot be used."""
    points = np.asarray(sample.points)
    if points.ndim != 2 or points.shape[1] not in (2, 3) or len(points) == 0:
        raise SteikError(
            f"{where}: `points` must be [N, 2] or [N, 3] with N > 0, got {points.shape}"
        )
    d = points.shape[1]
    if not np.isfinite(points).all():
        bad = int((~np.isfinite(points)).any(axis=1).sum())
        raise SteikError(
            f"{where}: {bad} point(s) have non-finite coordinates; clean the scan and re-sample"
        )
    if len(points) < 2 or not (points.max(axis=0) > points.min(axis=0)).any():
        raise SteikError(
            f"{where}: the {len(points)} point(s) are all at one place, so there is no surface to "
            "fit; check the scan"
        )
    if d == 3:
        io.check_volume(points, where)
    center = np.asarray(sample.center)
    if center.shape != (d,) or not np.isfinite(center).all():
        raise SteikError(f"{where}: `center` must be {d} finite numbers, got {center.tolist()}")
    if not (math.isfinite(sample.scale) and sample.scale > 0):
        raise SteikError(f"{where}: `scale` must be a positive number, got {sample.scale}")
    if sample.ground_truth not in GROUND_TRUTH_KINDS:
        raise SteikError(
            f"{where}: ground_truth {sample.ground_truth!r} is not one of "
            f"{', '.join(GROUND_TRUTH_KINDS)}"
        )
    pairs = (("normals", "points"), ("gt_normals", "gt_points"))
    for key in ("normals", "gt_points", "gt_normals", "occ_points"):
        value = getattr(sample, key)
        if value is None:
            continue
        if np.ndim(value) != 2 or np.shape(value)[1] != d:
            raise SteikError(f"{where}: `{key}` must be [M, {d}], got {np.shape(value)}")
        if not np.isfinite(value).all():
            raise SteikError(f"{where}: `{key}` holds NaN or infinite values; re-sample")
    for key, base in pairs:
        value, ref = getattr(sample, key), getattr(sample, base)
        if value is not None and (ref is None or len(value) != len(ref)):
            raise SteikError(f"{where}: `{key}` must have one row per row of `{base}`")
    if sample.normals is not None:
        length = np.linalg.norm(np.asarray(sample.normals, dtype=np.float64), axis=1)
        if not (np.abs(length - 1.0) < 1e-3).all():
            bad = int(np.argmax(~(np.abs(length - 1.0) < 1e-3)))
            raise SteikError(
                f"{where}: `normals` must have unit length, row {bad} has length "
                f"{length[bad]:.3g}; fix the scan's normals and re-sample"
            )
    if (sample.occ_points is None) != (sample.occ_labels is None) or (
        sample.occ_labels is not None and np.shape(sample.occ_labels) != (len(sample.occ_points),)
    ):
        raise SteikError(
            f"{where}: `occ_points` and `occ_labels` must come together, one label per point"
        )


def build_sample(
    entry: str | Mapping[str, Any] | Dataset,
    shape: str,
    root: str | Path = "resources",
    config: SampleConfig | None = None,
) -> Sample:
    """Make the sample of one shape of a dataset (see the module docstring for what each kind
    of dataset contributes)."""
    config = config or SampleConfig()
    dataset = registry.resolve(entry)
    root = Path(root)
    registry.check_shape(dataset, shape, root)
    ident = {"dataset": dataset.name, "shape": shape}
    if dataset.kind == "generated":
        if dataset.name == "demo3d":
            mesh = shapes3d.make_mesh(shape)
            arrays, data = sample_mesh(mesh, config), shapes3d.mesh_bytes(mesh)
        else:
            arrays, data = sample_curve(shape, config), shapes2d.curve_bytes(shape)
        return Sample(**_unpack(arrays), **ident, ground_truth="mesh", source=f"generated:{shape}",
                      source_sha256=hashlib.sha256(data).hexdigest())  # fmt: skip
    if dataset.kind == "folder":
        path = registry.folder_files(dataset)[shape]
        digest = _verified_digest(dataset, shape, path, root)
        if io.is_mesh(path):
            arrays, kind = sample_mesh(io.read_mesh(path), config), "mesh"
        else:
            cloud = io.read_points(path)
            arrays, kind = scan_sample(cloud.points, cloud.normals), "none"
        return Sample(
            **_unpack(arrays), **ident, ground_truth=kind, source=str(path), source_sha256=digest
        )
    return _downloaded_sample(dataset, shape, root, ident)


def _downloaded_sample(dataset: Dataset, shape: str, root: Path, ident: dict[str, str]) -> Sample:
    """Samples of SRB, ShapeNet and the scene: the scan as given plus their ground truth."""
    lock = registry.read_lock(dataset.name, root)
    scans = registry.local_scans(lock)
    if scans is not None:
        return _local_scan_sample(dataset, shape, root, scans, lock or {}, ident)
    if lock is None or not (root / dataset.name).is_dir():
        raise SteikError(
            f"dataset {dataset.name!r} is not fetched under {root}: run "
            f"`steik fetch {dataset.name} --root {root}` first"
        )
    folder = root / dataset.name
    names = {"shape": shape}
    if dataset.name == "shapenet":
        class_name, class_id, model = registry.split_shapenet_shape(shape)
        names = {"class_name": class_name, "class_id": class_id, "model": model}
    scan_path = folder / dataset.layout["scan"].format(**names)
    cloud = io.read_points(scan_path)
    arrays = scan_sample(cloud.points, cloud.normals)
    if dataset.ground_truth == "points":
        arrays["gt_points"] = io.read_points(folder / dataset.layout["gt"].format(**names)).points
    elif dataset.ground_truth == "shapenet":
        # G is the input cloud itself; ONet's points.npz shares the NSP cloud's unit-cube frame.
        arrays["gt_points"] = cloud.points
        arrays["occ_points"], arrays["occ_labels"] = io.read_occupancy(
            folder / dataset.layout["occ"].format(**names)
        )
    return Sample(
        **_unpack(arrays),
        **ident,
        ground_truth=dataset.ground_truth,
        source=str(scan_path),
        source_sha256=sha256_file(scan_path),
    )


def _local_scan_sample(
    dataset: Dataset,
    shape: str,
    root: Path,
    scans: Path,
    lock: Mapping[str, Any],
    ident: dict[str, str],
) -> Sample:
    """The sample of a dataset fetched from a local scans folder: the scan alone (ground truth
    `none`), its sha256 checked against the lock file."""
    path = scans / registry.scan_file_name(dataset, shape)
    recorded = {f["name"]: f["sha256"] for f in lock.get("files", [])}
    digest = sha256_file(path) if path.is_file() else None
    if digest is None or recorded.get(shape) != digest:
        raise SteikError(
            f"{path} is missing or changed since `steik fetch` recorded it; run `steik fetch "
            f"{dataset.name} --scans {scans} --root {root}` again"
        )
    cloud = io.read_points(path)
    arrays = scan_sample(cloud.points, cloud.normals)
    return Sample(
        **_unpack(arrays), **ident, ground_truth="none", source=str(path), source_sha256=digest
    )


def _verified_digest(dataset: Dataset, shape: str, path: Path, root: Path) -> str:
    """sha256 of a folder dataset's file, checked against the lock file when there is one."""
    digest = sha256_file(path)
    lock = registry.read_lock(dataset.name, root)
    if lock is not None:
        recorded = {f["name"]: f["sha256"] for f in lock.get("files", [])}
        if shape in recorded and recorded[shape] != digest:
            raise SteikError(
                f"{path} changed since `steik fetch` recorded it (sha256 {recorded[shape][:12]}... "
                f"now {digest[:12]}...); run `steik fetch {dataset.name} --folder "
                f"{dataset.path} --pattern '{dataset.pattern}' --root {root}` again"
            )
    return digest


def _unpack(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Sample-file arrays -> Sample keyword arguments (scale as a float)."""
    out: dict[str, Any] = dict(arrays)
    out["scale"] = float(out["scale"])
    return out
