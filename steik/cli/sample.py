"""Make the sample files of one or more shapes: normalised scan, ground truth, IoU points.

Shapes with a ground-truth mesh or curve (demo3d, demo2d, meshes in a folder dataset) get a
simulated scan (--n-points, --noise), --n-gt dense ground-truth samples and --n-occ IoU points;
real scans (srb, shapenet, scene, point clouds in a folder) are used as given. --options takes
the same settings as one JSON mapping (fields of steik.data.sample.SampleConfig; flags given
too win). The file's keys are documented in `steik.data.sample`. Several SHAPEs with one --out
each are sampled in one process (the workflow's batches); --record then lists them in one JSON
file, written last.
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_options, options_with_flags

HELP = "write results/<dataset>/samples/<shape>.npz for one shape"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Dataset, shape, output and sampling sizes."""
    parser.add_argument("dataset", help="registry name or folder dataset name (with --folder)")
    parser.add_argument("shape", nargs="+", help="shape name(s) (see `steik shapes DATASET`)")
    parser.add_argument("--out", nargs="+", required=True, help="output .npz path per shape")
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
    parser.add_argument("--record", metavar="JSON", help="batch record listing every sample file")


def run(args: argparse.Namespace) -> int:
    """Build each shape's sample and write it atomically, then the batch record."""
    from steik.data.registry import folder_dataset, resolve
    from steik.data.sample import SampleConfig, build_sample, write_sample
    from steik.errors import SteikError
    from steik.fileio import write_json

    if len(args.shape) != len(args.out):
        raise SteikError(
            f"give one --out per shape: {len(args.shape)} shape(s), {len(args.out)} --out path(s)"
        )
    entry = folder_dataset(args.dataset, args.folder, args.pattern) if args.folder else args.dataset
    dataset = resolve(entry)  # listed once for the whole batch (a folder is globbed once)
    flags = ("n_points", "noise", "n_gt", "n_occ", "seed", "near_fraction")
    config = options_with_flags(args, SampleConfig, flags)
    for shape, out in zip(args.shape, args.out, strict=True):
        print(write_sample(out, build_sample(dataset, shape, args.root, config)))
    if args.record:
        write_json(args.record, {"samples": [
            {"shape": shape, "sample": str(out)} for shape, out in zip(args.shape, args.out,
                                                                         strict=True)
        ]})  # fmt: skip
    return 0
