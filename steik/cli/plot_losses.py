"""Figure of training curves: the total loss, each loss term and the divergence weight against
the iteration, one line per method (median over shapes, band from minimum to maximum). Labels
come from the paths (<run>/<shape>/train_log.parquet).
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_figure, add_files

HELP = "loss curves from train_log.parquet files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_files(parser, "--logs", "PARQUET", ".../<run>/<shape>/train_log.parquet files")
    add_figure(parser)


def run(args: argparse.Namespace) -> int:
    from steik.plots.losses import loss_figure

    print(loss_figure(args.logs, args.out))
    return 0
