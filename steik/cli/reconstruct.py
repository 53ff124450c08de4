"""Screened Poisson reconstruction of a sample file's points: the classical reference row.

No training: normals from the k nearest neighbours, oriented consistently (MeshLab's normal
estimation, via PyMeshLab) and turned outward, screened Poisson at --depth, vertices below the
--trim quantile of the Poisson density removed, the mesh mapped to the sample's original units and
written to OUT (.ply) with OUT's `.json` sidecar (status `ok` / `no_surface`, extract_seconds =
the reconstruction's time, the settings), exactly where `steik extract` puts a network's mesh.
"""

from __future__ import annotations

import argparse

HELP = "screened Poisson reconstruction of a sample (no training) -> mesh.ply + mesh.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from steik.poisson import PoissonConfig

    default = PoissonConfig()
    parser.add_argument("--sample", required=True, help="the sample file (.npz) to reconstruct")
    parser.add_argument("--out", required=True, help="output mesh (.ply); the sidecar is .json")
    parser.add_argument(
        "--depth", type=int, default=default.depth, help=f"octree depth (default {default.depth})"
    )
    parser.add_argument(
        "--trim",
        type=float,
        default=default.trim_quantile,
        metavar="QUANTILE",
        help="remove vertices below this quantile of the Poisson density "
        f"(default {default.trim_quantile}; 0 keeps all)",
    )
    parser.add_argument(
        "--k",
        type=int,
        default=default.k_neighbours,
        help=f"neighbours per point for the normal estimate (default {default.k_neighbours})",
    )
    parser.add_argument(
        "--use-sample-normals",
        action="store_true",
        help="use the sample's normals instead of estimating them (not the headline setting)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=default.threads,
        help=f"Poisson solver threads (default {default.threads}: reproducible)",
    )


def run(args: argparse.Namespace) -> int:
    from steik.poisson import PoissonConfig, reconstruct_file

    config = PoissonConfig(
        depth=args.depth,
        trim_quantile=args.trim,
        k_neighbours=args.k,
        use_sample_normals=args.use_sample_normals,
        threads=args.threads,
    )
    extraction = reconstruct_file(args.sample, args.out, config)
    print(
        f"{args.out}: {extraction.status}, {len(extraction.vertices)} vertices, "
        f"{len(extraction.cells)} triangles, depth {config.depth}, {extraction.seconds:.1f} s"
    )
    return 0
