"""Time and peak memory of `steik sample` on a large mesh (figures for docs/data.md).

Builds a watertight torus of about 1,000,000 faces (manifold3d), then samples it as `steik sample`
does for a mesh: a simulated scan, a dense ground truth of --n-gt points and --n-occ IoU points
labelled by the winding-number inside test, and writes the sample file. Prints wall time per
stage, the peak of Python/numpy allocations (tracemalloc) and the process's peak resident memory.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_sample.py [--faces 1000000] [--n-gt 1000000]
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import manifold3d as mf
import numpy as np
import trimesh

from steik.data.sample import Sample, write_sample
from steik.data.sampling import SampleConfig, _surface, sample_mesh
from steik.metrics import inside_mesh


def big_torus(faces: int) -> trimesh.Trimesh:
    """A torus with about `faces` triangles (2 x major x minor segments, major = 2 x minor)."""
    minor = max(8, round(math.sqrt(faces / 4)))
    tube = mf.CrossSection.circle(0.15, minor).translate((0.35, 0.0))
    raw = mf.Manifold.revolve(tube, 2 * minor).to_mesh()
    return trimesh.Trimesh(np.asarray(raw.vert_properties)[:, :3], np.asarray(raw.tri_verts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=1_000_000)
    parser.add_argument("--n-points", type=int, default=15_000)
    parser.add_argument("--n-gt", type=int, default=1_000_000)
    parser.add_argument("--n-occ", type=int, default=100_000)
    args = parser.parse_args()

    mesh = big_torus(args.faces)
    print(
        f"mesh: {len(mesh.faces):,} faces, {len(mesh.vertices):,} vertices, "
        f"watertight={mesh.is_watertight}"
    )
    config = SampleConfig(n_points=args.n_points, n_gt=args.n_gt, n_occ=args.n_occ, seed=0)
    rng = np.random.default_rng(0)

    start = time.perf_counter()
    _surface(mesh, args.n_gt, rng)
    gt_seconds = time.perf_counter() - start
    query = rng.uniform(mesh.bounds[0], mesh.bounds[1], size=(args.n_occ, 3))
    start = time.perf_counter()
    inside_mesh(mesh.vertices, mesh.faces, query)
    occ_seconds = time.perf_counter() - start
    print(
        f"stage: {args.n_gt:,} surface samples {gt_seconds:.2f} s; "
        f"{args.n_occ:,} inside labels {occ_seconds:.2f} s"
    )

    tracemalloc.start()
    start = time.perf_counter()
    arrays = sample_mesh(mesh, config)
    sample_seconds = time.perf_counter() - start
    sample = Sample(
        **{**arrays, "scale": float(arrays["scale"])},
        dataset="bench",
        shape="torus",
        ground_truth="mesh",
        source="generated:torus",
        source_sha256="-",
    )
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        path = write_sample(Path(folder) / "torus.npz", sample)
        write_seconds = time.perf_counter() - start
        size = path.stat().st_size
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"sample_mesh (scan {args.n_points:,} + gt {args.n_gt:,} + occ {args.n_occ:,}): "
        f"{sample_seconds:.2f} s"
    )
    print(f"write_sample: {write_seconds:.2f} s, file {size / 2**20:.1f} MiB")
    print(f"peak traced allocations (numpy/python) during sampling+writing: {peak / 2**20:.0f} MiB")
    print(f"peak resident memory of the process (incl. mesh build): {rss:.0f} MiB")


if __name__ == "__main__":
    main()
