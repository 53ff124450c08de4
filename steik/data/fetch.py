"""`steik fetch`: put a dataset under `<root>/<name>/` and pin what was fetched in a lock file.

Downloaded datasets: each archive goes to `<root>/downloads/<archive name>` (also the place for an
archive downloaded by hand, which is then used without network), Google Drive ids through gdown
and plain URLs through pooch. The sha256 of every archive is written to `<root>/<name>.lock.json`
on the first fetch and checked on every later one; a mismatch is an error, never a silent
re-download. Downloads land in a temporary file and archives are extracted into a temporary
folder that replaces `<root>/<name>/` only when complete, so an interrupted fetch leaves nothing
that looks usable. Generated datasets (demo3d, demo2d) write their meshes/curves, folder datasets
record the sha256 of each of the user's files; both get a lock file too, so every dataset has the
same `<root>/<name>.lock.json` for the workflow to depend on.

A downloaded dataset with one scan per shape (srb, scene) can instead come from a local copy of
its scans alone (`scans`: a folder of `<shape>.ply`, or its parent holding `scans/`): every
shape's file must be there and match the registry's known sha256 (`scan_sha256`); the files stay
where they are and the lock file records the folder and their sha256. A missing shape or a
checksum mismatch is one SteikError, and no lock file is written.

`STEIK_MIRROR=<base URL>` fetches every archive from `<base URL>/<archive name>` instead (a proxy
or a local copy; the tests use it with a server on 127.0.0.1).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gdown
import pooch

from steik.data import shapes2d, shapes3d
from steik.data.registry import (
    REGISTRY,
    SHAPENET_CLASSES,
    Dataset,
    Source,
    folder_files,
    local_scans,
    lock_path,
    read_lock,
    resolve,
    scan_file_name,
    takes_local_scans,
)
from steik.errors import SteikError
from steik.fileio import atomic_path, sha256_file

MIRROR_ENV = "STEIK_MIRROR"
LOCK_FORMAT = "steik-lock/1"
_UNPACK_FORMATS = {"zip": "zip", "tar.gz": "gztar", "tar.xz": "xztar"}


@dataclass(frozen=True)
class FetchConfig:
    """How downloads behave."""

    retries: int = 2
    """Extra attempts after a failed download (pooch and gdown both retry)."""
    timeout: float = 60.0
    """Seconds without data before a connection counts as failed."""
    progress: bool = True
    """Show a progress bar while downloading."""


def gdrive_url(file_id: str) -> str:
    """The download URL of a Google Drive file id (the tests patch this to a local server)."""
    return f"https://drive.google.com/uc?id={file_id}"


def source_url(source: Source) -> tuple[str, str]:
    """(URL, method) for an archive: the mirror if `STEIK_MIRROR` is set, else its own source.

    method is `gdown` for Google Drive and `http` for a plain URL.
    """
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return f"{mirror.rstrip('/')}/{source.filename}", "http"
    if source.gdrive_id:
        return gdrive_url(source.gdrive_id), "gdown"
    if source.url:
        return source.url, "http"
    raise SteikError(f"archive {source.filename} has neither a URL nor a Google Drive id")


def manual_path(source: Source, root: str | Path = "resources") -> Path:
    """Where the archive is kept, and where a manually downloaded copy must be placed."""
    return Path(root) / "downloads" / source.filename


def _retry_command(dataset: Dataset, root: str | Path) -> str:
    return f"steik fetch {dataset.name} --root {root}"


def _download(
    source: Source,
    target: Path,
    dataset: Dataset,
    root: Path,
    config: FetchConfig,
    expected: str | None,
) -> None:
    """Download one archive to `target` atomically, refusing it if its sha256 is not `expected`;
    any failure is one SteikError saying what to do instead (retry, or put the archive at `target`
    by hand)."""
    url, method = source_url(source)
    size = f" (about {source.size / 1e6:.0f} MB)" if source.size else ""
    if config.progress:
        print(f"downloading {source.filename}{size} from {url}", file=sys.stderr)
    try:
        with atomic_path(target) as tmp:
            if method == "gdown":
                _gdown(url, tmp, config)
            else:
                _pooch(url, tmp, config)
            if not tmp.is_file() or tmp.stat().st_size == 0:
                raise OSError("the server sent no data")
            _verify(tmp, expected, source, dataset, root, shown=target)
    except SteikError:
        raise
    except Exception as error:  # network libraries raise many types; all mean "not downloaded"
        raise SteikError(
            f"could not download {source.filename}{size} from {url}: {error}. "
            f"Download it by hand to {target} (it is then used without network), or retry with "
            f"`{_retry_command(dataset, root)}`"
        ) from error


def _verify(
    path: Path, expected: str | None, source: Source, dataset: Dataset, root: Path, shown: Path
) -> str:
    """sha256 of `path`; a SteikError if it is not the `expected` one (registry or lock file)."""
    digest = sha256_file(path)
    if expected is not None and digest != expected:
        where = "in the registry" if source.sha256 else f"in {lock_path(dataset.name, root)}"
        raise SteikError(
            f"{shown} has sha256 {digest}, but {expected} was recorded ({where}). "
            "The archive changed: put the original back, or delete the archive and the lock "
            f"file to accept a new one, then run `{_retry_command(dataset, root)}`"
        )
    return digest


def _pooch(url: str, out: Path, config: FetchConfig) -> None:
    """Plain HTTP(S) download through pooch: retries, progress bar, temporary file."""
    # pooch would announce the temporary file name; _download has already said what is fetched.
    pooch.get_logger().setLevel("WARNING")
    fetcher = pooch.create(
        path=out.parent,
        base_url="",
        registry={out.name: None},
        urls={out.name: url},
        retry_if_failed=config.retries,
    )
    fetcher.fetch(
        out.name,
        downloader=pooch.HTTPDownloader(progressbar=config.progress, timeout=config.timeout),
    )


def _gdown(url: str, out: Path, config: FetchConfig) -> None:
    """Google Drive download through gdown (handles the large-file confirmation page)."""
    # gdown keeps its own partial files beside its output: give it a private folder to drop.
    workdir = Path(tempfile.mkdtemp(prefix=".gdown-", dir=out.parent))
    partial = workdir / out.name
    try:
        for attempt in range(config.retries + 1):
            try:
                result = gdown.download(
                    url=url, output=str(partial), quiet=not config.progress, timeout=config.timeout
                )
                if result is None:
                    raise OSError("gdown could not retrieve the file (is it shared publicly?)")
                break
            except Exception:
                partial.unlink(missing_ok=True)
                if attempt == config.retries:
                    raise
                time.sleep(attempt + 1)
        os.replace(partial, out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _extract(archives: list[tuple[Source, Path]], dataset: Dataset, root: Path) -> Path:
    """Unpack the archives into a temporary folder and put it at `<root>/<name>/` when complete."""
    final = root / dataset.name
    scratch = Path(tempfile.mkdtemp(prefix=f".{dataset.name}.extract-", dir=root))
    try:
        for source, path in archives:
            try:
                # tar members are filtered against absolute paths, links out and devices; zipfile
                # sanitises member names itself.
                safety = {} if source.archive == "zip" else {"filter": "data"}
                shutil.unpack_archive(
                    path, scratch, format=_UNPACK_FORMATS[source.archive], **safety
                )
            except Exception as error:  # zipfile, tarfile, lzma, gzip all have their own errors
                raise SteikError(
                    f"{path} could not be extracted as a {source.archive} archive ({error}); "
                    f"delete it and run `{_retry_command(dataset, root)}` again"
                ) from error
        _check_layout(dataset, scratch)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dataset.name}.old-", dir=root))
            os.replace(final, old / "data")
            os.replace(scratch, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(scratch, final)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
    return final


def _check_layout(dataset: Dataset, folder: Path) -> None:
    """Refuse an extraction that lacks a file the registry promises for one of its shapes."""
    for shape in dataset.shapes:
        for role, template in dataset.layout.items():
            if not (folder / template.format(shape=shape)).is_file():
                raise SteikError(
                    f"the archives of {dataset.name!r} lack the {role} file "
                    f"{template.format(shape=shape)} of shape {shape!r}; they may be incomplete"
                )


def shapenet_shapes(folder: Path) -> list[str]:
    """`<class name>_<model id>` of every NSP point cloud that has its Occupancy Networks file."""
    shapes = []
    for class_id, class_name in SHAPENET_CLASSES.items():
        for scan in sorted((folder / "NSP_dataset" / class_name).glob("*.ply")):
            if (folder / "ShapeNetNSP" / class_id / scan.stem / "points.npz").is_file():
                shapes.append(f"{class_name}_{scan.stem}")
    return shapes


def _write_lock(
    dataset: Dataset, root: Path, files: list[dict[str, Any]], shapes: list[str], **extra: Any
) -> Path:
    """Write `<root>/<name>.lock.json` atomically."""
    content = {
        "format": LOCK_FORMAT,
        "dataset": dataset.name,
        "kind": dataset.kind,
        "ground_truth": dataset.ground_truth,
        "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
        "shapes": shapes,
        **extra,
    }
    path = lock_path(dataset.name, root)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=2) + "\n")
    return path


def _fetch_download(dataset: Dataset, root: Path, config: FetchConfig) -> Path:
    """Download (or take the manual copy of) every archive, verify, extract, lock."""
    lock = read_lock(dataset.name, root)
    if local_scans(lock) is not None:
        lock = None  # the last fetch took local scans: this one starts over from the archives
    pinned = {f["name"]: f["sha256"] for f in (lock or {}).get("files", [])}
    extracted = (root / dataset.name).is_dir()
    records, archives, fresh = [], [], False
    for source in dataset.sources:
        path = manual_path(source, root)
        expected = source.sha256 or pinned.get(source.filename)
        if not path.is_file():
            if lock is not None and extracted and source.filename in pinned:
                # Archive removed after a complete fetch: the extraction stands, nothing to verify.
                records.append(next(f for f in lock["files"] if f["name"] == source.filename))
                continue
            _download(source, path, dataset, root, config, expected)
            fresh = True
        digest = _verify(path, expected, source, dataset, root, shown=path)
        url, _ = source_url(source)
        records.append(
            {"name": source.filename, "sha256": digest, "size": path.stat().st_size, "source": url}
        )
        archives.append((source, path))
    if lock is not None and extracted and not fresh:
        return lock_path(dataset.name, root)
    folder = _extract(archives, dataset, root)
    shapes = list(dataset.shapes) or shapenet_shapes(folder)
    if not shapes:
        raise SteikError(f"the archives of {dataset.name!r} hold no shapes; they may be incomplete")
    return _write_lock(dataset, root, records, shapes)


def generated_files(dataset: Dataset) -> dict[str, bytes]:
    """File name -> bytes of every file a generated dataset writes (deterministic)."""
    if dataset.name == "demo3d":
        return {f"{s}.ply": shapes3d.mesh_bytes(shapes3d.make_mesh(s)) for s in dataset.shapes}
    if dataset.name == "demo2d":
        return {f"{s}.npy": shapes2d.curve_bytes(s) for s in dataset.shapes}
    raise SteikError(f"dataset {dataset.name!r} is not a generated dataset")


def _fetch_generated(dataset: Dataset, root: Path) -> Path:
    """Write the generated shapes to `<root>/<name>/` and lock their sha256."""
    files = generated_files(dataset)
    records = [
        {
            "name": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
            "source": "generated",
        }
        for name, data in files.items()
    ]
    lock = read_lock(dataset.name, root)
    folder = root / dataset.name
    if (
        lock is not None
        and lock.get("files") == records
        and all(
            (folder / r["name"]).is_file() and sha256_file(folder / r["name"]) == r["sha256"]
            for r in records
        )
    ):
        return lock_path(dataset.name, root)
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        if folder.exists():
            shutil.rmtree(folder)
    return _write_lock(dataset, root, records, list(dataset.shapes))


def _fetch_folder(dataset: Dataset, root: Path) -> Path:
    """Record the sha256 of every file of a folder dataset (the files stay where they are)."""
    files = folder_files(dataset)
    records = [
        {
            "name": shape,
            "path": str(path.resolve()),
            "sha256": sha256_file(path),
            "size": path.stat().st_size,
        }
        for shape, path in files.items()
    ]
    lock = read_lock(dataset.name, root)
    if lock is not None and lock.get("files") == records and lock.get("pattern") == dataset.pattern:
        return lock_path(dataset.name, root)
    return _write_lock(
        dataset,
        root,
        records,
        list(files),
        path=str(Path(dataset.path).resolve()),
        pattern=dataset.pattern,
    )


def scans_folder(path: str | Path) -> Path:
    """The folder holding the scan files: `path` itself, or `path/scans` where that exists (the
    layout of the archive and of a copy of it)."""
    folder = Path(path).expanduser()
    return folder / "scans" if (folder / "scans").is_dir() else folder


def _fetch_scans(dataset: Dataset, root: Path, scans: str | Path) -> Path:
    """Record a local copy of a dataset's scans (checked against the known sha256) in its lock
    file; the scans stay where they are and nothing else is written."""
    if not takes_local_scans(dataset):
        usable = ", ".join(d.name for d in REGISTRY.values() if takes_local_scans(d))
        raise SteikError(
            f"--scans applies to datasets with one scan file per shape ({usable}), not to "
            f"{dataset.name!r}; fetch it without --scans"
        )
    folder = scans_folder(scans)
    if not folder.is_dir():
        raise SteikError(
            f"scans folder {scans} is not a directory; give the folder holding the "
            f"{dataset.name} scans (<shape>.ply) or its parent with scans/"
        )
    files = {shape: folder / scan_file_name(dataset, shape) for shape in dataset.shapes}
    missing = [path.name for path in files.values() if not path.is_file()]
    if missing:
        raise SteikError(
            f"scans folder {folder} lacks {', '.join(missing)} of {dataset.name}'s shapes "
            f"({', '.join(dataset.shapes)}); copy the missing scans there (every shape is "
            "checked, whichever shapes a run uses)"
        )
    records = []
    for shape, path in files.items():
        digest = sha256_file(path)
        known = dataset.scan_sha256.get(shape)
        if known is not None and digest != known:
            raise SteikError(
                f"{path} has sha256 {digest}, but {dataset.name}'s {shape} scan is {known}; it is "
                f"not the benchmark's file: put the original scan there and fetch again"
            )
        records.append(
            {"name": shape, "path": str(path.resolve()), "sha256": digest,
             "size": path.stat().st_size, "verified": known is not None}
        )  # fmt: skip
    lock = read_lock(dataset.name, root)
    if lock is not None and lock.get("files") == records and local_scans(lock) == folder.resolve():
        return lock_path(dataset.name, root)
    return _write_lock(
        dataset, root, records, list(files), ground_truth="none", scans=str(folder.resolve())
    )


def fetch(
    entry: str | Mapping[str, Any] | Dataset,
    root: str | Path = "resources",
    config: FetchConfig | None = None,
    scans: str | Path | None = None,
) -> Path:
    """Make dataset `entry` available under `<root>/<name>/`; return its lock file's path.

    `scans`: take a downloaded dataset's scans from this local folder instead of its archives
    (`_fetch_scans`). A second call with everything in place makes no network request and leaves
    the lock file untouched (so workflow timestamps stay put).
    """
    dataset = resolve(entry)
    root = Path(root)
    if scans is not None:
        return _fetch_scans(dataset, root, scans)
    root.mkdir(parents=True, exist_ok=True)
    if dataset.kind == "download":
        return _fetch_download(dataset, root, config or FetchConfig())
    if dataset.kind == "generated":
        return _fetch_generated(dataset, root)
    return _fetch_folder(dataset, root)
