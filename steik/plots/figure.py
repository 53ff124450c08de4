"""What every figure shares: labels from the workflow's paths and the one way a figure is saved
(atomically, in the format its extension names, at 100 dpi)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.figure import Figure

from steik.errors import SteikError
from steik.fileio import atomic_path

DPI = 100
"""Resolution of every saved figure (pixels per inch)."""
Paths = Sequence[str | Path]
"""The files a figure draws: workflow paths `.../<run>/<shape>/<file>`, or sample files."""


def run_and_shape(path: str | Path) -> tuple[str, str]:
    """(run, shape) of a workflow file `.../<run>/<shape>/<file>`."""
    path = Path(path)
    return path.parent.parent.name, path.parent.name


def grid(runs_shapes: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Distinct runs and shapes in order of first appearance: a figure's rows and columns."""
    runs = list(dict.fromkeys(r for r, _ in runs_shapes))
    shapes = list(dict.fromkeys(s for _, s in runs_shapes))
    return runs, shapes


def check_figure_path(out: str | Path) -> None:
    """Refuse an output path whose extension names no image format matplotlib writes (without
    one, matplotlib would pick PNG and the atomic rename would still fail on the suffix)."""
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = Path(out).suffix.lower().lstrip(".")
    if suffix not in formats:
        raise SteikError(
            f"--out {out}: the figure's format comes from its extension; end the path in .png "
            f"(or one of {', '.join('.' + f for f in sorted(formats))})"
        )


def save_figure(fig: Figure, out: str | Path) -> Path:
    """Write `fig` to `out` atomically, in the format its extension names, at `DPI`."""
    check_figure_path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=DPI)
    return Path(out)
