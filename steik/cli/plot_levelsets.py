"""Figure of 2D reconstructions: rows are methods, columns are shapes; each panel shows the
network's zero level set (bold), a few level sets on each side (thin) and the exact curve
(dotted). Labels come from the paths (<run>/<shape>/model.pt).
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_figure, add_files

HELP = "2D level-set figure (methods x shapes, ground truth dotted)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_files(parser, "--models", "PT", ".../<run>/<shape>/model.pt files (2D)")
    add_files(parser, "--samples", "NPZ", "sample files of the shapes (<shape>.npz)")
    add_figure(parser, resolution=256)


def run(args: argparse.Namespace) -> int:
    from steik.plots.levelsets import levelset_figure

    print(levelset_figure(args.models, args.samples, args.out, resolution=args.resolution))
    return 0
