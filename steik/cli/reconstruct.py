"""Screened Poisson reconstruction of sample files' points: the classical reference row.

No training: normals from the k nearest neighbours, oriented consistently (MeshLab's normal
estimation, via PyMeshLab) and turned outward, screened Poisson at --depth (default 8), vertices
below the --trim quantile of the Poisson density removed (default 0.01), the mesh mapped to the
sample's original units and written to OUT (.ply) with OUT's `.json` sidecar (status `ok` /
`no_surface`, extract_seconds = the reconstruction's time, the settings), exactly where `steik
extract` puts a network's mesh. Several --sample/--out pairs run in one process; --record then
lists them. --options sets any field of steik.poisson.PoissonConfig as JSON.
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_files, add_options, options_with_flags

HELP = "screened Poisson reconstruction of samples (no training) -> mesh.ply + mesh.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_files(parser, "--sample", "NPZ", "sample files (.npz) to reconstruct")
    add_files(parser, "--out", "PLY", "output mesh per sample (.ply; its sidecar .json beside it)")
    parser.add_argument("--depth", type=int, help="octree depth (default 8)")
    parser.add_argument(
        "--trim",
        dest="trim_quantile",
        type=float,
        metavar="QUANTILE",
        help="remove vertices below this quantile of the Poisson density (default 0.01)",
    )
    parser.add_argument(
        "--k", dest="k_neighbours", type=int, help="neighbours per point for normals (default 10)"
    )
    parser.add_argument(
        "--use-sample-normals",
        action="store_true",
        default=None,
        help="use the sample's normals instead of estimating them (not the headline setting)",
    )
    add_options(parser, "steik.poisson.PoissonConfig")
    parser.add_argument("--record", metavar="JSON", help="batch record listing every mesh")


def run(args: argparse.Namespace) -> int:
    from steik.poisson import PoissonConfig, reconstruct_files

    flags = ("depth", "trim_quantile", "k_neighbours", "use_sample_normals")
    config = options_with_flags(args, PoissonConfig, flags)
    for out, extraction in zip(
        args.out, reconstruct_files(args.sample, args.out, config, args.record), strict=True
    ):
        print(
            f"{out}: {extraction.status}, {len(extraction.vertices)} vertices, "
            f"{len(extraction.cells)} triangles, depth {config.depth}, {extraction.seconds:.1f} s"
        )
    return 0
