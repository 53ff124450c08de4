"""Seconds for the SRB metrics with 1,000,000 surface samples (SPEC 7).

A synthetic SRB-sized case: the reconstruction is a finely subdivided sphere mesh, the ground
truth G dense points on a slightly larger sphere, the scan S points on the sphere; sizes are
options. Times the whole `steik.scores.surface_metrics` call for `ground_truth = points`
(sampling R, d(R, G) and d(G, R), d(S, R)) and its parts.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_metrics.py --samples 1000000
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import trimesh

from steik import metrics
from steik.data.sample import Sample
from steik.scores import EvaluationConfig, surface_metrics


def sphere_points(count: int, radius: float, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).normal(size=(count, 3))
    return (radius * p / np.linalg.norm(p, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000, help="points sampled on R")
    parser.add_argument("--gt", type=int, default=1_000_000, help="ground-truth points G")
    parser.add_argument("--scan", type=int, default=200_000, help="scan points S")
    parser.add_argument("--subdivisions", type=int, default=7, help="icosphere level of R")
    args = parser.parse_args()

    sphere = trimesh.creation.icosphere(args.subdivisions, radius=50.0)
    vertices, faces = np.asarray(sphere.vertices), np.asarray(sphere.faces)
    scan = sphere_points(args.scan, 50.0, 1)
    sample = Sample(
        points=scan / 50.0, center=np.zeros(3), scale=50.0, dataset="bench", shape="sphere",
        ground_truth="points", source="generated:bench", source_sha256="",
        gt_points=sphere_points(args.gt, 50.5, 2),
    )  # fmt: skip
    config = EvaluationConfig(n_samples=args.samples, seed=0)
    print(f"R: {len(faces):,} faces, {args.samples:,} samples; G: {args.gt:,}; S: {args.scan:,}")

    started = time.perf_counter()
    row = surface_metrics(sample, vertices, faces, None, config)
    total = time.perf_counter() - started

    started = time.perf_counter()
    recon, _ = metrics.sample_mesh(vertices, faces, args.samples, 0)
    sampling = time.perf_counter() - started
    started = time.perf_counter()
    metrics.nearest(recon, sample.gt_points)
    r_to_g = time.perf_counter() - started
    started = time.perf_counter()
    metrics.nearest(sample.gt_points, recon)
    g_to_r = time.perf_counter() - started
    started = time.perf_counter()
    metrics.one_sided(sample.to_original(sample.points), recon)
    s_to_r = time.perf_counter() - started

    print(
        f"SRB metrics: {total:.1f} s in all (sampling {sampling:.1f} s, d(R,G) {r_to_g:.1f} s, "
        f"d(G,R) {g_to_r:.1f} s, d(S,R) {s_to_r:.1f} s)"
    )
    print(
        f"chamfer {row['chamfer']:.4f} (0.5 + sampling error), hausdorff {row['hausdorff']:.4f}, "
        f"chamfer_scan {row['chamfer_scan']:.4f}, hausdorff_scan {row['hausdorff_scan']:.4f}"
    )


if __name__ == "__main__":
    main()
