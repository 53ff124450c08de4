"""Figure of training curves: the total loss, each loss term and the divergence weight against
the iteration, one line per method (median over shapes, band from minimum to maximum). Labels
come from the paths (<run>/<shape>/train_log.parquet).
"""

from __future__ import annotations

import argparse

HELP = "loss curves from train_log.parquet files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logs", nargs="+", required=True, metavar="PARQUET",
                        help=".../<run>/<shape>/train_log.parquet files")
    parser.add_argument("--out", required=True, help="PNG to write")


def run(args: argparse.Namespace) -> int:
    from steik.plots import loss_figure

    print(loss_figure(args.logs, args.out))
    return 0
