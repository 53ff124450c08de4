"""Train one method on one or more shapes (together, as one K-batch).

Writes OUT/<shape>/model.pt and OUT/<shape>/train_log.parquet for each input sample file, and
OUT/<shape>/checkpoint.pt every `checkpoint_every` iterations while running (--resume continues
from it). Method fields can be overridden with --set FIELD=VALUE (repeatable).
"""

from __future__ import annotations

import argparse
import logging

HELP = "train an SDF network per shape (StEik and baselines)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from steik.methods import EXPERIMENTS, METHODS

    parser.add_argument(
        "--points",
        nargs="+",
        required=True,
        metavar="NPZ",
        help="sample files (from `steik sample`); several train together",
    )
    parser.add_argument("--method", required=True, help=f"one of {', '.join(METHODS)}")
    parser.add_argument("--experiment", required=True, help=f"one of {', '.join(EXPERIMENTS)}")
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="output folder (one subfolder per shape)"
    )
    parser.add_argument("--iterations", type=int, help="override the preset's iteration count")
    parser.add_argument(
        "--points-per-iter",
        type=int,
        metavar="N",
        help="manifold and off-surface points per iteration (N + N)",
    )
    parser.add_argument("--lr", type=float, help="override the learning rate")
    parser.add_argument("--seed", type=int, default=0, help="seed of every shape (default 0)")
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA if available), cpu or cuda[:N]"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from OUT/<shape>/checkpoint.pt"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any method field (see steik.methods.MethodConfig)",
    )


def run(args: argparse.Namespace) -> int:
    from steik.methods import overrides_from_cli, preset
    from steik.provenance import resolve_device
    from steik.train import train

    overrides = overrides_from_cli(args.overrides, args.iterations, args.points_per_iter, args.lr)
    config = preset(args.method, args.experiment, **overrides)
    device = resolve_device(args.device)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    metas = train(
        args.points,
        config,
        args.out,
        seed=args.seed,
        device=device,
        resume=args.resume,
        quiet=args.quiet,
    )
    for meta in metas:
        print(
            f"{meta['shape']}: {meta['status']} after {meta['iterations']} iterations, "
            f"{meta['train_seconds']:.1f} s ({meta['ms_per_iter']:.1f} ms/iteration) "
            f"on {meta['device']}{': ' + meta['message'] if meta['message'] else ''}"
        )
    return 0
