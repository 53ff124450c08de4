"""Figure of 3D reconstructions next to the ground truth: rows are shapes, columns are the
ground truth then each method, all shaded from the same viewpoint (rendered offscreen with
matplotlib; no OpenGL). Labels come from the paths (<run>/<shape>/mesh.ply).
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_figure, add_files

HELP = "renders of 3D reconstructions next to the ground truth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_files(parser, "--meshes", "PLY", ".../<run>/<shape>/mesh.ply files")
    add_files(parser, "--samples", "NPZ", "sample files of the shapes (ground truth from them)")
    add_figure(parser)
    parser.add_argument("--size", type=int, default=240, help="pixels per panel (default 240)")


def run(args: argparse.Namespace) -> int:
    from steik.plots.renders import render_figure

    print(render_figure(args.meshes, args.samples, args.out, size=args.size))
    return 0
