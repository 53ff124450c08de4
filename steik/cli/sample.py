"""Make one shape's sample file: normalised scan, ground truth, IoU points.

Shapes with a ground-truth mesh or curve (demo3d, demo2d, meshes in a folder dataset) get a
simulated scan (--n-points, --noise), --n-gt dense ground-truth samples and --n-occ IoU points;
real scans (srb, shapenet, scene, point clouds in a folder) are used as given. --options takes
the same settings as one JSON mapping (fields of steik.data.sample.SampleConfig; flags given
too win). The file's keys are documented in `steik.data.sample`.
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_options, options_with_flags

HELP = "write results/<dataset>/samples/<shape>.npz for one shape"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset, shape, output and sampling sizes."""
    parser.add_argument("dataset", help="registry name or folder dataset name (with --folder)")
    parser.add_argument("shape", help="shape name (see `steik shapes DATASET`)")
    parser.add_argument("--out", required=True, help="output .npz path")
    parser.add_argument("--root", default="resources", help="resources folder (default: resources)")
    parser.add_argument("--folder", help="directory of a folder dataset")
    parser.add_argument("--pattern", default="*.ply", help="glob of a folder dataset's files")
    parser.add_argument(
        "--n-points", type=int, default=None, help="simulated scan size (default 15000)"
    )
    parser.add_argument(
        "--noise", type=float, default=None, help="scan noise std / bbox diagonal (default 0)"
    )
    parser.add_argument(
        "--n-gt", type=int, default=None, help="ground-truth samples (default 100000)"
    )
    parser.add_argument(
        "--n-occ", type=int, default=None, help="IoU points (default 100000; 2D: 256 x 256 grid)"
    )
    parser.add_argument(
        "--near-fraction", type=float, default=None, help="share of IoU points near the surface"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    add_options(parser, "steik.data.sample.SampleConfig")


def run(args: argparse.Namespace) -> int:
    """Build the sample and write it atomically."""
    from steik.data.registry import folder_dataset
    from steik.data.sample import SampleConfig, build_sample, write_sample

    entry = folder_dataset(args.dataset, args.folder, args.pattern) if args.folder else args.dataset
    flags = ("n_points", "noise", "n_gt", "n_occ", "seed", "near_fraction")
    config = options_with_flags(args, SampleConfig, flags)
    print(write_sample(args.out, build_sample(entry, args.shape, args.root, config)))
    return 0
