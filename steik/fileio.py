"""Atomic file writes, file-system errors users can act on, and content digests.

Every output is written under a temporary name in its final folder and renamed into place only
when complete, so a crash never leaves a file that looks finished. A write that fails for want
of space or permission ends as one `SteikError` naming the file (libraries report a full disk
in their own words, torch as a C++ `iostream error`).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from steik.errors import SteikError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling path of `path` (same suffix); rename it to `path` on success.

    On an exception the temporary file (or folder) is removed and `path` is left untouched.
    The suffix is kept so that libraries choosing a format by extension still work. Temporaries
    of `path` that a killed process left behind (kill -9 runs no cleanup) are removed first, so
    every stage clears its own leftovers when it writes again.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(final)
        prefix, suffix = _temporary_affixes(final)
        fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=final.parent)
    except OSError as error:
        raise SteikError(write_error(final, error)) from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        os.replace(tmp, final)
    except (OSError, RuntimeError) as error:
        # Only a failure of the file system itself is reworded; other errors of the writing
        # code (a download's HTTP error is an OSError too) keep their own message.
        if getattr(error, "errno", None) in _WRITE_ERRNOS or _disk_full(final.parent):
            raise SteikError(write_error(final, error)) from None
        raise
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink(missing_ok=True)


_WRITE_ERRNOS = (28, 122, 13, 1, 30)
"""ENOSPC, EDQUOT, EACCES, EPERM, EROFS: the file system refused the write."""


def _disk_full(folder: Path) -> bool:
    """Whether the file system of `folder` has (almost) no space left."""
    try:
        return shutil.disk_usage(folder).free < 1 << 16
    except OSError:
        return False


def write_error(path: Path, error: BaseException) -> str:
    """One line saying why `path` could not be written and what to do about it."""
    errno = getattr(error, "errno", None)
    if errno in (28, 122) or (errno is None and _disk_full(path.parent)):  # ENOSPC, EDQUOT
        return f"cannot write {path}: no space left on its device; free some space and rerun"
    if errno in (13, 1, 30):  # EACCES, EPERM, EROFS
        return (
            f"cannot write {path}: {getattr(error, 'strerror', None) or error}; check the "
            "folder's permissions (or choose another output folder)"
        )
    reason = getattr(error, "strerror", None) or error
    return f"cannot write {path}: {reason}; choose another output folder"


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write `data` as indented JSON to `path`, atomically (records and sidecars)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    return Path(path)


def _temporary_affixes(final: Path) -> tuple[str, str]:
    """Prefix and suffix of `atomic_path`'s temporary names for `final`."""
    return f".{final.stem}.", f".tmp{''.join(final.suffixes)}"


NAME_MAX = 255
"""Longest file name (bytes) of the common file systems (ext4, XFS, btrfs, APFS, NTFS)."""


def longest_name(stem: str) -> int:
    """Bytes of the longest file name the pipeline makes from a shape name `stem`: the
    temporary name of its sample file's atomic write (`.<stem>.XXXXXXXX.tmp.npz`; its other
    files, `<stem>.log` and `<stem>.tsv`, and its folder are shorter)."""
    prefix, suffix = _temporary_affixes(Path(f"{stem}.npz"))
    return len(f"{prefix}{'x' * 8}{suffix}".encode())


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary siblings that `atomic_path` left for `path` when its process was
    killed before it could clean up (a kill -9 runs no cleanup); returns what was removed."""
    final = Path(path)
    if not final.parent.is_dir():
        return []
    prefix, suffix = _temporary_affixes(final)
    # mkstemp puts exactly eight random characters between prefix and suffix: matching eight
    # leaves alone the temporaries of other files whose names start alike (`a.1.npz` beside
    # `a.npz`).
    removed = []
    for stale in final.parent.glob(f"{glob.escape(prefix)}{'?' * 8}{glob.escape(suffix)}"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
        removed.append(stale)
    return removed


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (archives can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def array_digest(array: np.ndarray) -> str:
    """Hex sha256 of an array's float32 values: identifies the points a model was trained on."""
    data = np.ascontiguousarray(np.asarray(array, dtype=np.float32))
    digest = hashlib.sha256(str(data.shape).encode())
    digest.update(data.tobytes())
    return digest.hexdigest()
