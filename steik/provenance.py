"""Version strings recorded with every model and metrics row."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import torch

from steik import __version__
from steik.errors import SteikError


@functools.cache
def steik_version() -> str:
    """The package version, plus the git commit (and `-dirty`) when run from a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=10"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}" if commit else __version__


def torch_version() -> str:
    return str(torch.__version__)


def resolve_device(name: str) -> torch.device:
    """`auto` -> CUDA when available, else CPU; `cuda` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SteikError(
            f"--device {name} was asked for but torch {torch.__version__} sees no CUDA GPU; "
            "use --device cpu (or auto), or install a CUDA build of torch (README, 'GPU')"
        )
    if name != "cpu" and not name.startswith("cuda"):
        raise SteikError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    return torch.device(name)
