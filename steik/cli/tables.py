"""Gather a dataset's metrics rows into results/tables/<dataset>.parquet, <dataset>_summary.parquet
(per method: mean, median, std of every metric; shape, run and failure counts) and the paper's
table layouts as <dataset>.md and <dataset>.html (with the paper's numbers in marked rows when
--paper names SRB or ShapeNet).
"""

from __future__ import annotations

import argparse

HELP = "aggregate metrics rows into Parquet and paper-style tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (the tables' file stem)")
    parser.add_argument("--metrics", nargs="+", required=True, metavar="PARQUET",
                        help="metrics.parquet files of the dataset's runs")
    parser.add_argument("--out-dir", required=True, metavar="DIR", help="folder of the tables")
    parser.add_argument("--paper", default="none", choices=("none", "srb", "shapenet"),
                        help="show this paper table's numbers beside ours (default none)")


def run(args: argparse.Namespace) -> int:
    from steik.tables import write_tables

    paths = write_tables(args.metrics, args.dataset, args.out_dir, paper=args.paper)
    for path in paths.values():
        print(path)
    return 0
