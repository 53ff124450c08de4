"""The 2D experiment (the paper's snowflake figure, with numbers): train, score, draw.

  steik experiment2d train --points C.npz L.npz S.npz --method steik --out DIR/steik [--seed S]
      [--iterations N] [--points-per-iter N] [--set FIELD=VALUE ...] [--snapshots 0.1,0.2,...]
  steik experiment2d table --models DIR/*/*/model.pt --samples C.npz L.npz S.npz
      --out results/tables/2d.parquet            (+ 2d_summary.parquet, 2d.md)
  steik experiment2d figure --models (one seed) --samples ... --out results/figures/2d_levelsets.png
  steik experiment2d snapshots --snapshots DIR/*/snowflake/snapshots.pt --out strip.png
  steik experiment2d run --samples C.npz L.npz S.npz --out DIR [--methods ...] [--seeds 0 1 2]
      [--iterations N] [--points-per-iter N] [--layers L] [--hidden-linear H]
      [--hidden-quadratic H] [--jobs J]    (all of the above in one call)

`train` writes DIR/<shape>/model.pt, train_log.parquet and snapshots.pt for every sample file
(trained together as one batch); the other commands read those files.
"""

from __future__ import annotations

import argparse

HELP = "2D experiment: train with snapshots, score against the exact curves, draw the figures"


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated fractions, got {text!r}"
        ) from None


def _analysis_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resolution",
        type=int,
        default=512,
        help="analysis grid samples per axis over [-1.2, 1.2]^2 (default 512)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]"
    )


def _scale_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--iterations", type=int, help="override the preset's 10,000 iterations")
    parser.add_argument(
        "--points-per-iter",
        type=int,
        metavar="N",
        help="manifold and off-surface points per iteration (N + N; preset 15,000)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any method field (repeatable)",
    )
    parser.add_argument(
        "--snapshots",
        type=_fractions,
        default=None,
        metavar="F1,F2,...",
        help="training fractions at which the network is kept (default 0.1,0.2,0.3,0.4,1.0)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Not imported from steik.experiment2d: building the parser of every `steik` command must
    # stay cheap (that module pulls in torch, scipy and scikit-image).
    from steik.methods import BASELINE_METHODS, METHODS

    EXPERIMENT_METHODS = tuple(m for m in METHODS if m not in BASELINE_METHODS)

    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    train = sub.add_parser("train", help="train one method and seed on the shapes, with snapshots")
    train.add_argument(
        "--points",
        nargs="+",
        required=True,
        metavar="NPZ",
        help="2D sample files (trained together as one batch)",
    )
    train.add_argument("--method", required=True, help=f"one of {', '.join(EXPERIMENT_METHODS)}")
    train.add_argument(
        "--out", required=True, metavar="DIR", help="run folder (one subfolder per shape)"
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoints")
    _scale_arguments(train)

    table = sub.add_parser("table", help="score models against the exact curves; write the tables")
    table.add_argument(
        "--models",
        nargs="+",
        required=True,
        metavar="PT",
        help="model.pt files (shape = name of the folder holding each)",
    )
    table.add_argument(
        "--samples",
        nargs="+",
        required=True,
        metavar="NPZ",
        help="sample files of the shapes (file stem = shape folder name)",
    )
    table.add_argument(
        "--out",
        required=True,
        metavar="PARQUET",
        help="per-run table; <stem>_summary.parquet and <stem>.md go beside it",
    )
    _analysis_arguments(table)

    figure = sub.add_parser("figure", help="level sets: rows = methods, columns = shapes")
    figure.add_argument(
        "--models",
        nargs="+",
        required=True,
        metavar="PT",
        help="model.pt files of one seed, one per (method, shape)",
    )
    figure.add_argument("--samples", nargs="+", required=True, metavar="NPZ")
    figure.add_argument("--out", required=True, metavar="PNG")
    figure.add_argument("--resolution", type=int, default=256, help="grid per axis (default 256)")
    figure.add_argument("--device", default="auto")

    snap = sub.add_parser("snapshots", help="snapshot strip of one shape (rows = methods)")
    snap.add_argument(
        "--snapshots",
        nargs="+",
        required=True,
        metavar="PT",
        help="snapshots.pt files, one per method",
    )
    snap.add_argument("--out", required=True, metavar="PNG")
    snap.add_argument("--resolution", type=int, default=192, help="grid per axis (default 192)")
    snap.add_argument("--device", default="auto")

    run = sub.add_parser("run", help="the whole experiment: train, tables and figures")
    run.add_argument("--samples", nargs="+", required=True, metavar="NPZ")
    run.add_argument("--out", required=True, metavar="DIR")
    run.add_argument("--methods", nargs="+", default=list(EXPERIMENT_METHODS))
    run.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    run.add_argument(
        "--layers", type=int, help="hidden layers of both networks (presets: linear 5, quadratic 4)"
    )
    run.add_argument("--hidden-linear", type=int, help="linear width (preset 128)")
    run.add_argument("--hidden-quadratic", type=int, help="quadratic width (preset 128)")
    run.add_argument("--jobs", type=int, default=1, help="(method, seed) runs in parallel")
    run.add_argument("--threads", type=int, default=1, help="torch threads per job")
    _scale_arguments(run)
    _analysis_arguments(run)


def _overrides(args: argparse.Namespace) -> dict:
    from steik.methods import overrides_from_cli

    return overrides_from_cli(args.overrides, args.iterations, args.points_per_iter)


def run(args: argparse.Namespace) -> int:
    from steik import experiment2d, plots2d
    from steik.methods import preset
    from steik.provenance import resolve_device

    device = resolve_device(args.device)
    if args.action == "train":
        config = preset(args.method, "2d", **_overrides(args))
        fractions = args.snapshots or experiment2d.DEFAULT_SNAPSHOT_FRACTIONS
        metas = experiment2d.train_run(
            args.points, config, args.out, args.seed, device, fractions, resume=args.resume
        )
        for meta in metas:
            print(
                f"{meta['shape']}: {meta['status']} after {meta['iterations']} iterations, "
                f"{meta['train_seconds']:.1f} s ({meta['ms_per_iter']:.1f} ms/iteration)"
            )
        return 0
    if args.action == "table":
        analysis = experiment2d.AnalysisConfig(resolution=args.resolution)
        paths = experiment2d.table(args.models, args.samples, args.out, analysis, device)
    elif args.action == "figure":
        paths = {
            "figure": plots2d.levelsets_from_models(
                args.models, args.samples, args.out, args.resolution, device
            )
        }
    elif args.action == "snapshots":
        paths = {
            "figure": plots2d.snapshots_from_files(
                args.snapshots, args.out, args.resolution, device
            )
        }
    else:
        overrides = _overrides(args)
        scale = experiment2d.Scale(
            iterations=overrides.pop("iterations", None),
            n_points=overrides.pop("n_manifold", None),
            layers=args.layers,
            hidden_linear=args.hidden_linear,
            hidden_quadratic=args.hidden_quadratic,
            extra={k: v for k, v in overrides.items() if k != "n_offsurface"},
        )
        paths = experiment2d.run_experiment(
            args.samples,
            args.out,
            args.methods,
            args.seeds,
            scale,
            experiment2d.AnalysisConfig(resolution=args.resolution),
            args.snapshots or experiment2d.DEFAULT_SNAPSHOT_FRACTIONS,
            str(device),
            args.jobs,
            args.threads,
        )
        print(paths["markdown"].read_text())
    for path in paths.values():
        print(path)
    return 0
