"""Check that runs reached a good surface, not only a level loss: every run of the given dataset
tables (`results/tables/<dataset>.parquet`) must have status ok, IoU of at least --min-iou (IoU of
u < 0 against the true inside, so an inside-out network fails too) and a zero level set of exactly
--components pieces. Prints one line per run and a verdict; exit status 1 when a run fails.
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_files

HELP = "check that runs reached a good surface (IoU, pieces of the zero level set)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_files(parser, "--tables", "PARQUET", "results/tables/<dataset>.parquet files")
    parser.add_argument("--methods", nargs="+", metavar="NAME", help="check these methods only")
    parser.add_argument("--min-iou", type=float, default=0.9, help="lowest IoU (default 0.9)")
    parser.add_argument("--components", type=int, default=1,
                        help="pieces the zero level set must have (default 1)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from steik.errors import SteikError
    from steik.quality import CHECKED_COLUMNS, surface_checks
    from steik.tables import read_rows

    if not 0.0 <= args.min_iou <= 1.0:
        raise SteikError(f"--min-iou must lie in [0, 1], got {args.min_iou}")
    if args.components < 1:
        raise SteikError(f"--components must be 1 or more, got {args.components}")
    rows = read_rows(args.tables, CHECKED_COLUMNS, "metrics table")
    checks = surface_checks(rows, args.min_iou, args.components, args.methods)
    if checks.empty:
        raise SteikError("no runs to check (no rows, or none of --methods); run the workflow first")
    shown = checks.drop(columns=["why"]).assign(verdict=checks["why"].where(~checks["good"], "ok"))
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    bad = int((~checks["good"]).sum())
    print(f"{len(checks) - bad} of {len(checks)} runs reached a good surface "
          f"(IoU >= {args.min_iou:g}, {args.components} piece(s))")  # fmt: skip
    return 1 if bad else 0
