"""Train one method on one or more shapes (together, as one K-batch).

Writes OUT/<shape>/model.pt and OUT/<shape>/train_log.parquet for each input sample file (and
OUT/<shape>/snapshots.pt with --snapshots). While it runs, the whole batch is checkpointed every
`checkpoint_every` iterations into one file (--checkpoint; default OUT/<shape>/checkpoint.pt for
one shape, OUT/checkpoint-<digest>.pt for several) that --resume continues from;
--resume-if-compatible resumes when the checkpoint belongs to this very run and otherwise sets it
aside and starts from scratch. Method fields are overridden with --set FIELD=VALUE (repeatable)
or --overrides JSON (a mapping of fields to values, as the workflow passes them).
"""

from __future__ import annotations

import argparse

from steik.cli._options import add_device, add_files, json_mapping

HELP = "train an SDF network per shape (StEik and baselines)"


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated fractions, got {text!r}"
        ) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from steik.methods import EXPERIMENTS, METHODS

    add_files(
        parser, "--points", "NPZ", "sample files (from `steik sample`); several train together"
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
    add_device(parser)
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint (it must exist and fit)"
    )
    resume.add_argument(
        "--resume-if-compatible",
        action="store_true",
        help="continue from the checkpoint when it belongs to this run; else set it aside",
    )
    parser.add_argument("--checkpoint", metavar="PT", help="the batch's checkpoint file")
    parser.add_argument(
        "--snapshots",
        type=_fractions,
        default=(),
        metavar="F1,F2,...",
        help="training fractions at which each network is kept in <shape>/snapshots.pt",
    )
    parser.add_argument(
        "--record", metavar="JSON", help="write the batch record here once every model is written"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override any method field (see steik.methods.MethodConfig)",
    )
    parser.add_argument(
        "--overrides",
        dest="overrides_json",
        metavar="JSON",
        help='method fields as a JSON mapping, e.g. \'{"hidden": 64, "iterations": 300}\'',
    )


def run(args: argparse.Namespace) -> int:
    from steik.methods import overrides_from_cli, preset
    from steik.provenance import resolve_device
    from steik.train import train

    overrides = json_mapping(args.overrides_json, "--overrides")
    overrides.update(
        overrides_from_cli(args.overrides, args.iterations, args.points_per_iter, args.lr)
    )
    config = preset(args.method, args.experiment, **overrides)
    resume = "always" if args.resume else "if_compatible" if args.resume_if_compatible else "never"
    metas = train(
        args.points,
        config,
        args.out,
        seed=args.seed,
        device=resolve_device(args.device),
        resume=resume,
        quiet=args.quiet,
        snapshots=args.snapshots,
        checkpoint=args.checkpoint,
        record=args.record,
    )
    for meta in metas:
        print(
            f"{meta.shape}: {meta.status} after {meta.iterations} iterations, "
            f"{meta.train_seconds:.1f} s ({meta.ms_per_iter:.1f} ms/iteration) "
            f"on {meta.device}{': ' + meta.message if meta.message else ''}"
        )
    return 0
