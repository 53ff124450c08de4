"""List a dataset's shape names, one per line (no network needed, except ShapeNet before fetch)."""

from __future__ import annotations

import argparse

HELP = "list the shapes of a dataset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset and where it lives."""
    parser.add_argument("dataset", help="registry name or folder dataset name (with --folder)")
    parser.add_argument("--root", default="resources", help="resources folder (default: resources)")
    parser.add_argument("--folder", help="directory of a folder dataset")
    parser.add_argument("--pattern", default="*.ply", help="glob of a folder dataset's files")


def run(args: argparse.Namespace) -> int:
    """Print shape names."""
    from steik.data.registry import folder_dataset, list_shapes

    entry = folder_dataset(args.dataset, args.folder, args.pattern) if args.folder else args.dataset
    print("\n".join(list_shapes(entry, args.root)))
    return 0
