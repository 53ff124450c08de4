"""Regions of a trained 3D field with the wrong sign: what IoU counts and a render cannot show.

    .venv/bin/python bench/sign_pockets.py MODEL.pt SAMPLE.npz [MODEL.pt SAMPLE.npz ...]

MODEL may also be a snapshots.pt (every snapshot is checked). Evaluates u on a 96^3 grid over
[-1.1, 1.1]^3 (normalised units) and prints per network: the lowest u, the volume where u < 0
and how far its deepest point lies from the scan, the pieces of {u < 0}, and the enclosed
pockets of {u > 0} (pieces that do not reach the grid's border: a solid scan has none, so each
is an inner shell or bubble with the wrong sign), with their volume, depth and largest u.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from steik.data.sample import load_sample
from steik.grid import Grid, cube_grid, evaluate_grid
from steik.model import load_model, load_snapshots

GRID = cube_grid(3, extent=1.1, resolution=96)


def grid_coordinates(grid: Grid) -> np.ndarray:
    """The grid's points `[size, 3]` in `evaluate_grid`'s (C) order."""
    index = np.indices(grid.shape).reshape(3, -1).T
    return (np.asarray(grid.origin) + index * grid.spacing).astype(np.float32)


def describe(u: np.ndarray, depth: np.ndarray, cell: float) -> str:
    """One line: the negative region and the enclosed positive pockets of `u` (`GRID.shape`);
    `depth` (same shape) is each grid point's distance to the scan."""
    positive, count = ndimage.label(u > 0)
    faces = [positive[0], positive[-1], positive[:, 0], positive[:, -1],
             positive[:, :, 0], positive[:, :, -1]]  # fmt: skip
    border = set(np.unique(np.concatenate([f.ravel() for f in faces]))) - {0}
    pockets = [i for i in range(1, count + 1) if i not in border]
    cells = np.bincount(positive.ravel(), minlength=count + 1)
    volume = {i: float(cells[i]) * cell for i in pockets}
    largest = sorted(pockets, key=lambda i: -volume[i])[:3]
    detail = ", ".join(
        f"{volume[i]:.4f} (depth {depth[positive == i].max():.2f}, "
        f"u max {u[positive == i].max():+.2f})"
        for i in largest
    )
    negative = u < 0
    _, pieces = ndimage.label(negative)
    deepest = float(depth[negative].max()) if negative.any() else 0.0
    return (
        f"u min {u.min():+.3f}; u < 0: volume {negative.sum() * cell:.3f}, deepest {deepest:.2f} "
        f"from the scan, {pieces} pieces; enclosed u > 0 pockets: {len(pockets)}, volume "
        f"{sum(volume.values()):.4f}{': ' + detail if detail else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="+", help="MODEL.pt SAMPLE.npz, repeated")
    args = parser.parse_args()
    if len(args.pairs) % 2:
        parser.error("give MODEL.pt SAMPLE.npz pairs")
    torch.set_num_threads(1)
    cell = GRID.spacing**3
    coordinates = grid_coordinates(GRID)
    for model, sample in zip(args.pairs[::2], args.pairs[1::2], strict=True):
        depth = cKDTree(load_sample(sample).points).query(coordinates)[0].reshape(GRID.shape)
        if model.endswith("snapshots.pt"):
            nets = load_snapshots(model)[0]
        else:
            nets = [load_model(model)[0]]
        for k, net in enumerate(nets):
            u = evaluate_grid(net, GRID)
            print(f"{model} [{k}]: {describe(u, depth, cell)}", flush=True)


if __name__ == "__main__":
    main()
