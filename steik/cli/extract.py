"""Extract the zero level set of trained networks as meshes (3D) or polylines (2D).

Evaluates each network on the SPEC 6 grid (RESOLUTION samples along the shortest axis of the
normalised scan's bounding box plus 0.1; 2D: a square grid over the training domain), densely
or coarse-to-fine (--multires), runs marching cubes at level 0 and writes the surface in the
sample's original units to OUT (.ply), with OUT's `.json` sidecar holding status (`ok` /
`no_surface`), extract_seconds and points evaluated. Several --model/--sample/--out triples are
extracted in one process (a training batch); --record then lists them in one JSON file, written
last. 2D models give a PLY of polylines (vertices with z = 0 and `edge` elements).
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_device, add_files, add_options, options_with_flags

HELP = "marching cubes of trained networks -> mesh.ply + mesh.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_files(parser, "--model", "PT", "model.pt files written by `steik train`")
    add_files(parser, "--sample", "NPZ", "the sample file of each model")
    add_files(parser, "--out", "PLY", "output mesh per model (.ply; its sidecar .json beside it)")
    parser.add_argument(
        "--resolution", type=int, help="grid samples along the shortest box axis (default 512)"
    )
    mode = parser.add_mutually_exclusive_group()
    coarse = "coarse-to-fine: evaluate only cells near the surface"
    dense = "evaluate every grid point (default; the paper's procedure)"
    mode.add_argument("--multires", dest="multires", action="store_true", default=None, help=coarse)
    mode.add_argument("--dense", dest="multires", action="store_false", help=dense)
    add_options(parser, "steik.mesh.ExtractionConfig")
    add_device(parser)
    parser.add_argument("--record", metavar="JSON", help="batch record listing every mesh")


def run(args: argparse.Namespace) -> int:
    from steik.mesh import ExtractionConfig, extract_files
    from steik.provenance import resolve_device

    config = options_with_flags(args, ExtractionConfig, ("resolution", "multires"))
    extractions = extract_files(
        args.model, args.sample, args.out, config, resolve_device(args.device), args.record
    )
    for out, extraction in zip(args.out, extractions, strict=True):
        print(
            f"{out}: {extraction.status}, {len(extraction.vertices)} vertices, "
            f"{extraction.mode} {'x'.join(map(str, extraction.grid.shape))} grid, "
            f"{extraction.points_evaluated} points evaluated, {extraction.seconds:.1f} s"
        )
    return 0
