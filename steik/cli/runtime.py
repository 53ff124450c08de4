"""Build the runtime table (the paper's Table 3 layout: method, structure, ms per iteration,
parameters, device) from the dataset tables of this workflow: writes OUT (Parquet) and OUT's .md
and .html beside it, where the paper's GPU numbers appear in marked rows.
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_files

HELP = "time per training iteration per method (Table 3 layout)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_files(parser, "--tables", "PARQUET", "results/tables/<dataset>.parquet files")
    parser.add_argument("--out", required=True, metavar="PARQUET", help="runtime.parquet to write")


def run(args: argparse.Namespace) -> int:
    from steik.runtime_table import write_runtime

    for path in write_runtime(args.tables, args.out).values():
        print(path)
    return 0
