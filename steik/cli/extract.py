"""Extract the zero level set of a trained network as a mesh (3D) or polylines (2D).

Evaluates the network on the SPEC 6 grid (RESOLUTION samples along the shortest axis of the
normalised scan's bounding box plus 0.1), densely or coarse-to-fine (--multires), runs marching
cubes at level 0 and writes the surface in the sample's original units to OUT (.ply), with
OUT's `.json` sidecar holding status (`ok` / `no_surface`), extract_seconds and points evaluated.
2D models give a PLY of polylines (vertices with z = 0 and `edge` elements).
"""

from __future__ import annotations

import argparse

HELP = "marching cubes of a trained network -> mesh.ply + mesh.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model.pt written by `steik train`")
    parser.add_argument("--sample", required=True, help="the sample file (.npz) it was trained on")
    parser.add_argument("--out", required=True, help="output mesh (.ply); the sidecar is .json")
    parser.add_argument(
        "--resolution",
        type=int,
        default=512,
        help="grid samples along the shortest box axis (default 512)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--multires",
        dest="multires",
        action="store_true",
        help="coarse-to-fine: evaluate only cells near the surface",
    )
    mode.add_argument(
        "--dense",
        dest="multires",
        action="store_false",
        help="evaluate every grid point (default; the paper's procedure)",
    )
    parser.set_defaults(multires=False)
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]"
    )
    parser.add_argument(
        "--chunk", type=int, default=131_072, help="points per network call (default 131072)"
    )


def run(args: argparse.Namespace) -> int:
    from steik.mesh import ExtractionConfig, extract_file
    from steik.provenance import resolve_device

    config = ExtractionConfig(resolution=args.resolution, multires=args.multires, chunk=args.chunk)
    extraction = extract_file(
        args.model, args.sample, args.out, config, resolve_device(args.device)
    )
    print(
        f"{args.out}: {extraction.status}, {len(extraction.vertices)} vertices, "
        f"{extraction.mode} {'x'.join(map(str, extraction.grid.shape))} grid, "
        f"{extraction.points_evaluated} points evaluated, {extraction.seconds:.1f} s"
    )
    return 0
