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
from steik.model import load_model, load_snapshots
from steik.nn import SDFNetwork

N = 96
HALF_WIDTH = 1.1


def grid_points() -> tuple[np.ndarray, float]:
    """Grid points `[N^3, 3]` (float32, `ij` order) and the cell volume."""
    t = np.linspace(-HALF_WIDTH, HALF_WIDTH, N, dtype=np.float32)
    points = np.stack(np.meshgrid(t, t, t, indexing="ij"), axis=-1).reshape(-1, 3)
    return points, float(t[1] - t[0]) ** 3


def field(net: SDFNetwork, points: np.ndarray) -> np.ndarray:
    """u `[N, N, N]` of a K = 1 network at the grid points."""
    with torch.no_grad():
        parts = [net(torch.from_numpy(c)[None])[0] for c in np.array_split(points, 40)]
    return torch.cat(parts).numpy().reshape(N, N, N)


def describe(u: np.ndarray, depth: np.ndarray, cell: float) -> str:
    """One line: the negative region and the enclosed positive pockets of `u [N, N, N]`;
    `depth [N, N, N]` is each grid point's distance to the scan."""
    positive, count = ndimage.label(u > 0)
    faces = [positive[0], positive[-1], positive[:, 0], positive[:, -1],
             positive[:, :, 0], positive[:, :, -1]]  # fmt: skip
    border = set(np.unique(np.concatenate([f.ravel() for f in faces]))) - {0}
    pockets = [i for i in range(1, count + 1) if i not in border]
    volume = {i: float((positive == i).sum()) * cell for i in pockets}
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
    points, cell = grid_points()
    for model, sample in zip(args.pairs[::2], args.pairs[1::2], strict=True):
        depth = cKDTree(load_sample(sample).points).query(points)[0].reshape(N, N, N)
        if model.endswith("snapshots.pt"):
            nets = load_snapshots(model)[0]
        else:
            nets = [load_model(model)[0]]
        for k, net in enumerate(nets):
            print(f"{model} [{k}]: {describe(field(net, points), depth, cell)}", flush=True)


if __name__ == "__main__":
    main()
