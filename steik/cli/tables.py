"""Gather a dataset's metrics rows into results/tables/<dataset>.parquet, <dataset>_summary.parquet
(per method, and per method and shape for 2D curve datasets: mean, median, std of every metric;
shape, run and failure counts) and the paper's table layouts as <dataset>.md and <dataset>.html
(with the paper's numbers in marked rows when --paper names SRB or ShapeNet). With --snapshots,
the rows of networks kept during training go to <dataset>_snapshots.parquet and the tables show
--snapshot-shape at each snapshot.
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_files

HELP = "aggregate metrics rows into Parquet and paper-style tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (the tables' file stem)")
    add_files(parser, "--metrics", "PARQUET", "metrics files of the runs (one row or a batch's)")
    parser.add_argument(
        "--snapshots",
        nargs="*",
        default=(),
        metavar="PARQUET",
        help="snapshot rows (`steik evaluate --snapshot-table`)",
    )
    parser.add_argument(
        "--snapshot-shape", help="the shape whose snapshots are tabulated (default: the first)"
    )
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="folder of the tables")
    parser.add_argument(
        "--paper",
        default="none",
        choices=("none", "srb", "shapenet"),
        help="show this paper table's numbers beside ours (default none)",
    )


def run(args: argparse.Namespace) -> int:
    from steik.tables import write_tables

    paths = write_tables(
        args.metrics,
        args.dataset,
        args.out_dir,
        paper=args.paper,
        snapshots=args.snapshots,
        snapshot_shape=args.snapshot_shape,
    )
    for path in paths.values():
        print(path)
    return 0
