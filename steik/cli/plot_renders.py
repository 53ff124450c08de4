"""Figure of 3D reconstructions next to the ground truth: rows are shapes, columns are the
ground truth then each method, all shaded from the same viewpoint (rendered offscreen with
matplotlib; no OpenGL). Labels come from the paths (<run>/<shape>/mesh.ply).
"""

from __future__ import annotations

import argparse

HELP = "renders of 3D reconstructions next to the ground truth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--meshes", nargs="+", required=True, metavar="PLY",
                        help=".../<run>/<shape>/mesh.ply files")
    parser.add_argument("--samples", nargs="+", required=True, metavar="NPZ",
                        help="sample files of the shapes (<shape>.npz; ground truth from them)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--size", type=int, default=240, help="pixels per panel (default 240)")


def run(args: argparse.Namespace) -> int:
    from steik.plots import render_figure

    print(render_figure(args.meshes, args.samples, args.out, size=args.size))
    return 0
