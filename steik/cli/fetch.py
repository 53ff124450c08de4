"""Fetch a dataset into the resources folder and pin it in `<root>/<name>.lock.json`.

Registry datasets: srb, shapenet, scene (downloads), demo3d, demo2d (generated). A folder of your
own files: `steik fetch NAME --folder PATH --pattern GLOB`. SRB (or the scene) from a local copy
of its scans alone: `steik fetch srb --scans DIR` (DIR holds <shape>.ply, or scans/<shape>.ply);
their sha256 are checked where known, and the metrics that need the archive's dense ground truth
are then NaN. An archive downloaded by hand goes to
`<root>/downloads/<archive name>`; STEIK_MIRROR=<base URL> fetches archives from a mirror.
"""

from __future__ import annotations

import argparse

HELP = "download or generate a dataset and write its lock file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset name and root folder, then the options of a folder dataset, of local scans and of
    downloads, each a group of the help."""
    parser.add_argument(
        "dataset",
        help="registry name (srb, shapenet, scene, demo3d, demo2d) or a folder dataset's name",
    )
    parser.add_argument("--root", default="resources", help="resources folder (default: resources)")
    folder = parser.add_argument_group("a folder dataset (DATASET names it)")
    folder.add_argument("--folder", metavar="DIR", help="the directory of its files")
    folder.add_argument("--pattern", default="*.ply", help="glob of its files (default: *.ply)")
    scans = parser.add_argument_group("srb or the scene from a local copy of its scans")
    scans.add_argument("--scans", metavar="DIR", help="take the scans from DIR, not the archive")
    download = parser.add_argument_group("downloads")
    download.add_argument("--retries", type=int, default=2, help="extra attempts (default: 2)")
    download.add_argument("--timeout", type=float, default=60.0, help="network timeout in seconds")
    download.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    """Fetch and print the lock file's path."""
    from steik.data.fetch import FetchConfig, fetch
    from steik.data.registry import folder_dataset

    entry = folder_dataset(args.dataset, args.folder, args.pattern) if args.folder else args.dataset
    config = FetchConfig(retries=args.retries, timeout=args.timeout, progress=not args.quiet)
    print(fetch(entry, args.root, config, scans=args.scans))
    return 0
