"""Grids over the normalised frame and a network's values on them.

SPEC 6: u is evaluated on a regular grid over the normalised scan's bounding box plus a margin,
`resolution` samples along the shortest axis and the same spacing on the others, with float32
coordinates, in chunks, so a 512^3 grid never exists as float64 points (only the float32 value
grid does).

The multi-resolution mode (in the spirit of MISE, Occupancy Networks) starts on a coarse grid and
refines, level by level, only the cells whose corners change sign or whose smallest |u| is below
the cell diagonal; for a signed distance function no other cell can hold surface. Values of the
points it skips are filled by multilinear interpolation of the enclosing cell's corners, which
keeps their sign, so marching cubes on the assembled fine grid sees the same crossings as on the
dense grid wherever u behaves like a distance.

The network is any callable `x [K, N, d] -> u [K, N]` (a `steik.nn.SDFNetwork`, or an analytic
SDF in tests); inside is u < 0. Every mode evaluates a point at bit-identical float32
coordinates (`Grid.points`), in the same chunks, so their values agree exactly.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from steik.errors import SteikError

Network = Callable[[torch.Tensor], torch.Tensor]
"""`x [K, N, d] float32 -> u [K, N]`."""


class NonFiniteOutputError(SteikError):
    """The network returned NaN or infinity somewhere on the grid (a corrupt or broken model)."""


@dataclass(frozen=True)
class Grid:
    """A regular grid in the normalised frame: index `i [d]` is the point `origin + i * spacing`."""

    origin: tuple[float, ...]
    """Lower corner, normalised units."""
    spacing: float
    """Distance between neighbouring samples, normalised units."""
    shape: tuple[int, ...]
    """Samples per axis."""

    @property
    def dim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def points(self, index: torch.Tensor) -> torch.Tensor:
        """float32 `[n, d]` coordinates of integer indices `[n, d]` (computed in float64 first, so
        every extraction mode evaluates bit-identical coordinates)."""
        origin = torch.tensor(self.origin, dtype=torch.float64, device=index.device)
        return (origin + index.to(torch.float64) * self.spacing).to(torch.float32)


def grid_for_points(points: np.ndarray, resolution: int, margin: float = 0.1) -> Grid:
    """SPEC 6 grid for a normalised scan `points [N, d]`.

    The box is the scan's bounding box plus `margin` on every side; `resolution` samples span the
    shortest side exactly, the other sides get the same spacing and are centred on the box.
    """
    points = np.asarray(points, dtype=np.float64)
    lo = points.min(axis=0) - margin
    hi = points.max(axis=0) + margin
    extent = hi - lo
    spacing = float(extent.min()) / (resolution - 1)
    if not spacing > 0:
        raise SteikError("the scan's bounding box is degenerate (zero size); cannot build a grid")
    counts = np.ceil(extent / spacing - 1e-6).astype(np.int64) + 1
    origin = lo - ((counts - 1) * spacing - extent) / 2
    return Grid(tuple(float(v) for v in origin), spacing, tuple(int(c) for c in counts))


def cube_grid(dim: int, extent: float, resolution: int) -> Grid:
    """`resolution` samples per axis spanning [-extent, extent]^dim (both ends included)."""
    if not (extent > 0 and math.isfinite(extent)):
        raise SteikError(f"the grid's half-width must be a positive number, got {extent}")
    spacing = 2.0 * extent / (resolution - 1)
    return Grid((-float(extent),) * dim, spacing, (int(resolution),) * dim)


def _n_shapes(network: Network, n_shapes: int | None) -> int:
    """K of the network: given, else its `n_shapes` attribute, else 1."""
    return int(n_shapes if n_shapes is not None else getattr(network, "n_shapes", 1))


def _evaluate_chunk(
    network: Network, x: torch.Tensor, n_shapes: int, shape_index: int
) -> np.ndarray:
    """u of shape `shape_index` at `x [n, d]` (float32 on the network's device) -> float32 `[n]`."""
    u = network(x.unsqueeze(0).expand(n_shapes, -1, -1))[shape_index]
    if not bool(torch.isfinite(u).all()):
        bad = int((~torch.isfinite(u)).sum())
        raise NonFiniteOutputError(
            f"the network returned {bad} non-finite values (NaN/inf) out of {x.shape[0]} in one "
            "chunk of points; the model file is corrupt or the network broken - retrain it"
        )
    return u.to(torch.float32).cpu().numpy()


def _evaluate_in_chunks(
    network: Network,
    count: int,
    chunk: int,
    coordinates: Callable[[int, int], torch.Tensor],
    n_shapes: int,
    shape_index: int,
) -> np.ndarray:
    """u of shape `shape_index` at `count` points, `chunk` at a time (bounds the memory of the
    activations) -> float32 `[count]`; `coordinates(start, stop)` gives the float32 points
    `[stop - start, d]` of rows start..stop-1 on the network's device."""
    out = np.empty(count, dtype=np.float32)
    for start in range(0, count, chunk):
        stop = min(start + chunk, count)
        out[start:stop] = _evaluate_chunk(network, coordinates(start, stop), n_shapes, shape_index)
    return out


@torch.inference_mode()
def evaluate_points(
    network: Network,
    points: np.ndarray,
    device: torch.device | str = "cpu",
    chunk: int = 131_072,
    n_shapes: int | None = None,
    shape_index: int = 0,
) -> np.ndarray:
    """u of one shape at `points [N, d]` (normalised frame) -> float32 `[N]`, in chunks.

    Every one of the K networks sees the same points; row `shape_index` is kept.
    """
    data = np.asarray(points, dtype=np.float32)

    def coordinates(start: int, stop: int) -> torch.Tensor:
        return torch.from_numpy(data[start:stop]).to(device)

    k = _n_shapes(network, n_shapes)
    return _evaluate_in_chunks(network, len(data), chunk, coordinates, k, shape_index)


def _grid_index(
    shape: tuple[int, ...], start: int, stop: int, device: torch.device | str
) -> torch.Tensor:
    """int64 `[stop - start, d]`: the indices of a grid of `shape` at C-order positions
    start..stop-1."""
    strides = [math.prod(shape[a + 1 :]) for a in range(len(shape))]
    flat = torch.arange(start, stop, device=device, dtype=torch.int64)
    return torch.stack([(flat // s) % n for s, n in zip(strides, shape, strict=True)], dim=1)


@torch.inference_mode()
def evaluate_grid(
    network: Network,
    grid: Grid,
    device: torch.device | str = "cpu",
    chunk: int = 131_072,
    n_shapes: int | None = None,
    shape_index: int = 0,
) -> np.ndarray:
    """Dense evaluation: float32 values `grid.shape` of shape `shape_index`, chunk by chunk."""

    def coordinates(start: int, stop: int) -> torch.Tensor:
        return grid.points(_grid_index(grid.shape, start, stop, device))

    k = _n_shapes(network, n_shapes)
    values = _evaluate_in_chunks(network, grid.size, chunk, coordinates, k, shape_index)
    return values.reshape(grid.shape)


def evaluate_with_gradient(
    network: Network,
    points: np.ndarray,
    device: torch.device | str = "cpu",
    chunk: int = 65_536,
) -> tuple[np.ndarray, np.ndarray]:
    """u and |grad u| of a K = 1 network at `points [N, d]` -> two float64 `[N]` arrays."""
    data = np.asarray(points, dtype=np.float32)
    u, gradient = np.empty(len(data)), np.empty(len(data))
    for start in range(0, len(data), chunk):
        x = torch.from_numpy(data[start : start + chunk]).to(device)[None].requires_grad_(True)
        value = network(x)
        (grad,) = torch.autograd.grad(value.sum(), x)
        u[start : start + x.shape[1]] = value[0].detach().double().cpu().numpy()
        gradient[start : start + x.shape[1]] = grad[0].norm(dim=-1).double().cpu().numpy()
    return u, gradient


def _cell_extrema(view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Min and max over the 2^d corners of every cell of a grid of values (cells: shape - 1)."""
    d = view.ndim
    lo = hi = None
    for offset in itertools.product((0, 1), repeat=d):
        corner = view[tuple(slice(o, n - 1 + o) for o, n in zip(offset, view.shape, strict=True))]
        lo = corner.copy() if lo is None else np.minimum(lo, corner, out=lo)
        hi = corner.copy() if hi is None else np.maximum(hi, corner, out=hi)
    assert lo is not None and hi is not None
    return lo, hi


def _fill_by_interpolation(view: np.ndarray) -> None:
    """Fill the NaN entries of a grid whose even-index points are all known, in place.

    One axis at a time, a point with an odd index along that axis gets the mean of its two
    neighbours along it; done for every axis in turn this is multilinear interpolation of the
    coarse cell, so a cell whose known values share a sign keeps that sign inside. Known
    (evaluated) values are never overwritten.
    """
    d = view.ndim
    for axis in range(d):

        def along(part: slice, axis: int = axis) -> tuple[slice, ...]:
            return tuple(part if a == axis else slice(None) for a in range(d))

        target = view[along(slice(1, None, 2))]
        mean = view[along(slice(0, -1, 2))] + view[along(slice(2, None, 2))]
        mean *= 0.5
        np.copyto(target, mean, where=np.isnan(target))


@torch.inference_mode()
def evaluate_multires(
    network: Network,
    grid: Grid,
    coarse_resolution: int = 32,
    device: torch.device | str = "cpu",
    chunk: int = 131_072,
    n_shapes: int | None = None,
    shape_index: int = 0,
) -> tuple[np.ndarray, int]:
    """Coarse-to-fine values on `grid` -> (float32 values `grid.shape`, points evaluated).

    The coarsest level has a stride of 2^L fine cells with about `coarse_resolution` samples on
    the shortest axis. A cell is refined when its corners change sign or its smallest |u| is
    below its diagonal; refined cells get all their half-stride points evaluated, the others are
    interpolated. The grid is padded to a multiple of the coarse stride (those extra points lie
    just outside the box) and cropped at the end.
    """
    k = _n_shapes(network, n_shapes)
    d = grid.dim
    n_min = min(grid.shape)
    levels = max(0, math.floor(math.log2(max(n_min - 1, 1) / max(coarse_resolution - 1, 1))))
    stride = 2**levels
    cells = tuple(max(1, math.ceil((n - 1) / stride)) for n in grid.shape)
    values = np.full(tuple(c * stride + 1 for c in cells), np.nan, dtype=np.float32)
    evaluated = 0

    def evaluate_indices(index: tuple[np.ndarray, ...], step: int) -> np.ndarray:
        """u at the fine-grid points `step * index` (index: d int arrays of equal length)."""

        def coordinates(start: int, stop: int) -> torch.Tensor:
            part = np.stack([axis[start:stop] for axis in index], axis=1) * step
            return grid.points(torch.from_numpy(part).to(device))

        return _evaluate_in_chunks(network, len(index[0]), chunk, coordinates, k, shape_index)

    coarse = values[(slice(None, None, stride),) * d]
    everything = np.ones(coarse.shape, dtype=bool)
    coarse[everything] = evaluate_indices(np.nonzero(everything), stride)
    evaluated += coarse.size
    del everything
    active = np.ones(cells, dtype=bool)
    step = stride
    while step > 1:
        view = values[(slice(None, None, step),) * d]
        lo, hi = _cell_extrema(view)
        nearest = np.where(lo > 0, lo, np.where(hi < 0, -hi, 0.0))
        del lo, hi
        refine = active & (nearest < step * grid.spacing * math.sqrt(d))
        del nearest, active
        half = step // 2
        finer = values[(slice(None, None, half),) * d]
        needed = np.zeros(finer.shape, dtype=bool)
        for offset in itertools.product((0, 1, 2), repeat=d):
            window = tuple(
                slice(o, o + 2 * c, 2) for o, c in zip(offset, refine.shape, strict=True)
            )
            needed[window] |= refine
        needed &= np.isnan(finer)
        index = np.nonzero(needed)
        finer[needed] = evaluate_indices(index, half)
        evaluated += len(index[0])
        del index, needed
        _fill_by_interpolation(finer)
        active = refine
        for axis in range(d):
            active = np.repeat(active, 2, axis=axis)
        step = half
    return np.ascontiguousarray(values[tuple(slice(0, n) for n in grid.shape)]), evaluated
