"""Score an extracted surface: one row of metrics, timings and provenance as Parquet.

Which metrics apply depends on the sample's ground truth (SPEC 7; `steik.evaluate`): SRB-style
Chamfer/Hausdorff against dense ground-truth points and one-sided distances from the scan,
ShapeNet squared Chamfer and IoU (from the network's sign), and for ground-truth meshes also
Chamfer-L1, normal consistency and F-score. Metrics that do not apply are NaN.
"""

from __future__ import annotations

import argparse

HELP = "metrics of one reconstruction -> metrics.parquet (one row)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mesh", required=True, help="mesh.ply written by `steik extract`")
    parser.add_argument("--model", required=True, help="model.pt written by `steik train`")
    parser.add_argument("--sample", required=True, help="the sample file (.npz) it was trained on")
    parser.add_argument("--out", required=True, help="output .parquet (one row)")
    parser.add_argument(
        "--n-samples",
        type=int,
        default=None,
        help="points sampled on the surface (default: 1,000,000 SRB/scene, "
        "30,000 ShapeNet, 100,000 meshes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the surface sampling")
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]"
    )


def run(args: argparse.Namespace) -> int:
    from steik.evaluate import EvaluationConfig, evaluate, write_row
    from steik.provenance import resolve_device

    config = EvaluationConfig(n_samples=args.n_samples, seed=args.seed)
    row = evaluate(args.mesh, args.model, args.sample, config, resolve_device(args.device))
    write_row(row, args.out)
    shown = ", ".join(
        f"{key} {row[key]:.4g}"
        for key in ("chamfer", "hausdorff", "chamfer_sq", "iou")
        if row[key] == row[key]
    )
    print(f"{args.out}: {row['status']}{', ' + shown if shown else ''}")
    return 0
