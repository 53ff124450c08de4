"""Score extracted surfaces: one row of metrics, timings and provenance per shape, as Parquet.

Which metrics apply depends on the sample's ground truth (SPEC 7; `steik.scores`): SRB-style
Chamfer/Hausdorff against dense ground-truth points and one-sided distances from the scan,
ShapeNet squared Chamfer and IoU (from the network's sign), for ground-truth meshes also
Chamfer-L1, normal consistency and F-score, and for the 2D shapes of SPEC 9 the measures against
their exact curves (corners, spurious pieces, eikonal residual). Metrics that do not apply are
NaN. Several --mesh/--model/--sample/--out entries are scored in one process (a training batch);
--table then writes all their rows into one file, and --snapshot-table scores the networks kept
during training (`snapshots.pt` beside a model).
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_device, add_files, add_options, options_with_flags

HELP = "metrics of reconstructions -> metrics.parquet (one row per shape)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_files(parser, "--mesh", "PLY", "mesh.ply files written by `steik extract`")
    parser.add_argument(
        "--model",
        nargs="*",
        default=[],
        metavar="PT",
        help="the model.pt of each mesh (none for a method without a network: screened Poisson)",
    )
    add_files(parser, "--sample", "NPZ", "the sample file of each mesh")
    add_files(parser, "--out", "PARQUET", "output row per mesh (.parquet)")
    parser.add_argument(
        "--n-samples",
        type=int,
        help="points sampled on the surface (default: 1,000,000 SRB/scene, 30,000 ShapeNet, "
        "100,000 meshes)",
    )
    parser.add_argument("--seed", type=int, help="seed of the surface sampling (default 0)")
    add_options(parser, "steik.scores.EvaluationConfig")
    add_device(parser)
    parser.add_argument("--table", metavar="PARQUET", help="also write every row into this file")
    parser.add_argument(
        "--snapshot-table", metavar="PARQUET", help="score the snapshots beside each model here"
    )


def run(args: argparse.Namespace) -> int:
    from steik.evaluate import evaluate_batch
    from steik.provenance import resolve_device
    from steik.scores import EvaluationConfig

    config = options_with_flags(args, EvaluationConfig, ("n_samples", "seed"))
    rows = evaluate_batch(args.mesh, args.model, args.sample, args.out, config,
                          resolve_device(args.device), args.table, args.snapshot_table)  # fmt: skip
    for out, row in zip(args.out, rows, strict=True):
        shown = ", ".join(
            f"{key} {row[key]:.4g}"
            for key in ("chamfer", "hausdorff", "chamfer_sq", "iou")
            if row[key] == row[key]
        )
        print(f"{out}: {row['status']}{', ' + shown if shown else ''}")
    return 0
