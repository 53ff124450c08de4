"""Figure of one 2D shape during training: the divergence-weight schedule on top, then one row
per run with the network's level sets at each snapshot (`snapshots.pt`, written by `steik train
--snapshots`), the exact curve dotted. Labels come from the paths (<run>/<shape>/snapshots.pt).
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_figure, add_files

HELP = "2D snapshot strip (level sets during training, one row per run)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_files(parser, "--snapshots", "PT", ".../<run>/<shape>/snapshots.pt files of one shape")
    parser.add_argument("--sample", required=True, metavar="NPZ", help="that shape's sample file")
    add_figure(parser, resolution=192)


def run(args: argparse.Namespace) -> int:
    from steik.plots.levelsets import snapshot_figure

    print(snapshot_figure(args.snapshots, args.sample, args.out, resolution=args.resolution))
    return 0
