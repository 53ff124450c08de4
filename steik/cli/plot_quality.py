"""Figure of quality against training time for one dataset: Chamfer (and IoU where defined) of
the networks kept during training against the training seconds per shape spent to reach them,
one line per method (mean over shapes and seeds), and methods without training (screened
Poisson) as a star at their reconstruction time. Reads the tables `steik tables` wrote:
`<dataset>.parquet` (final rows) and `<dataset>_snapshots.parquet` (snapshot rows).
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_figure

HELP = "quality (Chamfer, IoU) against training seconds per method"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", required=True, metavar="PARQUET",
                        help="results/tables/<dataset>.parquet")  # fmt: skip
    parser.add_argument("--snapshots", required=True, metavar="PARQUET",
                        help="results/tables/<dataset>_snapshots.parquet")  # fmt: skip
    parser.add_argument("--title", default="", help="figure title")
    add_figure(parser)


def run(args: argparse.Namespace) -> int:
    from steik.quality import quality_figure
    from steik.tables import ROW_COLUMNS, SNAPSHOT_COLUMNS, read_rows

    rows = read_rows([args.rows], ROW_COLUMNS, "metrics table")
    snapshots = read_rows([args.snapshots], SNAPSHOT_COLUMNS, "snapshot table")
    print(quality_figure(rows, snapshots, args.out, args.title))
    return 0
