"""Figure of 2D reconstructions: rows are methods, columns are shapes; each panel shows the
network's zero level set (bold), a few level sets on each side (thin) and the exact curve
(dotted). Labels come from the paths (<run>/<shape>/model.pt).
"""

from __future__ import annotations

import argparse

HELP = "2D level-set figure (methods x shapes, ground truth dotted)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", required=True, metavar="PT",
                        help=".../<run>/<shape>/model.pt files (2D)")
    parser.add_argument("--samples", nargs="+", required=True, metavar="NPZ",
                        help="sample files of the shapes (<shape>.npz)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--resolution", type=int, default=200,
                        help="grid points per axis (default 200)")


def run(args: argparse.Namespace) -> int:
    from steik.plots import levelset_figure

    print(levelset_figure(args.models, args.samples, args.out, resolution=args.resolution))
    return 0
