"""Dense vs multi-resolution extraction: seconds, points evaluated and peak memory.

Network: a trained model (`--model model.pt --sample shape.npz`), or else a freshly initialised
StEik 5 x 128 quadratic network (mfgi init; its zero level set is a sphere in the box [-1, 1]^3
plus the 0.1 margin). A fresh mfgi network is not a distance function (|grad u| is about 0.1),
so multires refines almost everywhere on it; a trained network (|grad u| ~ 1) is the fair case.

Each configuration runs in its own process so that its peak resident memory (max RSS) is its
own; "beyond network" is that peak minus the RSS after building the network and a warm-up call.
The dense and multires meshes of each resolution are compared (symmetric Hausdorff distance
between their vertices, in units of the box diagonal).

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_extract.py --resolutions 256 512 --device cpu
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCAN_BOX = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]], dtype=np.float32)


def max_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace, mode: str, resolution: int, vertices_out: str) -> dict:
    """One extraction in this process; returns the figures as a dict."""
    import torch

    from steik import grid, mesh
    from steik.methods import preset
    from steik.model import build_network, load_model

    device, chunk = args.device, args.chunk
    points, center, scale = SCAN_BOX, np.zeros(3), 1.0
    if args.model:
        network, _ = load_model(args.model, device)
        with np.load(args.sample) as sample:
            points, center, scale = sample["points"], sample["center"], float(sample["scale"])
    else:
        network = build_network(preset("steik", "srb"), 3, 1, [0]).to(device).eval()
    grid.evaluate_points(network, np.zeros((chunk, 3), np.float32), device, chunk)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    baseline = max_rss_mb()
    config = mesh.ExtractionConfig(resolution=resolution, multires=mode == "multires", chunk=chunk)
    started = time.perf_counter()
    result = mesh.extract_surface(network, points, center, scale, config, device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    np.save(vertices_out, result.vertices.astype(np.float32))
    return {
        "mode": mode,
        "resolution": resolution,
        "device": device,
        "seconds": seconds,
        "points_evaluated": result.points_evaluated,
        "points_total": result.grid.size,
        "vertices": len(result.vertices),
        "status": result.status,
        "box_diagonal": float(np.linalg.norm(np.asarray(result.grid.shape) - 1))
        * result.grid.spacing
        * scale,
        "peak_rss_mb": max_rss_mb(),
        "baseline_rss_mb": baseline,
        "gpu_peak_mb": (
            torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan")
        ),
    }


def hausdorff(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Hausdorff distance between two vertex sets."""
    from scipy.spatial import cKDTree

    return float(max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--modes", nargs="+", default=["multires", "dense"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--chunk", type=int, default=131_072)
    parser.add_argument("--model", help="a trained model.pt (default: a fresh network)")
    parser.add_argument("--sample", help="the sample file the model was trained on")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "RESOLUTION", "VERTICES_NPY"))
    args = parser.parse_args()
    if args.child:
        mode, resolution, out = args.child
        print(json.dumps(child(args, mode, int(resolution), out)))
        return

    with tempfile.TemporaryDirectory() as folder:
        for resolution in args.resolutions:
            for mode in args.modes:
                out = str(Path(folder) / f"{mode}_{resolution}.npy")
                command = [sys.executable, __file__, "--device", args.device, "--chunk",
                           str(args.chunk), "--child", mode, str(resolution), out]  # fmt: skip
                if args.model:
                    command += ["--model", args.model, "--sample", args.sample]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    sys.exit(f"{mode} {resolution}^3 failed:\n{done.stderr}")
                row = json.loads(done.stdout.strip().splitlines()[-1])
                print(
                    f"{row['device']:>5} {mode:>8} {resolution:>4}^3: {row['seconds']:8.1f} s, "
                    f"{row['points_evaluated']:>11,} of {row['points_total']:,} points "
                    f"({100 * row['points_evaluated'] / row['points_total']:.1f}%), "
                    f"peak RSS {row['peak_rss_mb']:.0f} MiB "
                    f"({row['peak_rss_mb'] - row['baseline_rss_mb']:.0f} beyond network), "
                    f"GPU peak {row['gpu_peak_mb']:.0f} MiB, {row['vertices']:,} vertices",
                    flush=True,
                )
            if {"dense", "multires"} <= set(args.modes):
                dense = np.load(Path(folder) / f"dense_{resolution}.npy")
                multi = np.load(Path(folder) / f"multires_{resolution}.npy")
                diagonal = row["box_diagonal"]
                print(
                    f"      {resolution}^3 dense vs multires: Hausdorff "
                    f"{hausdorff(dense, multi) / diagonal:.2e} of the box diagonal",
                    flush=True,
                )


if __name__ == "__main__":
    main()
