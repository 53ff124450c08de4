"""Has the training of a finished run flattened out? Prints, per method and shape, how much the
loss still fell at the end of training.

For each `train_log.parquet` of the first seed: the median total loss over the last 15% of the
iterations against its median over the 15% before (70-85%). Their relative difference is what
the last 15% of training still removed; the curve counts as flat when that is below
`--threshold` of the loss's level. Medians, because the loss of one iteration is noisy (every
iteration draws new points); both windows lie after the divergence phase of SPEC's schedules
(weight 0 from 40% of training on), where the loss has one definition.

    python bench/demo_convergence.py [RESULTS] [--datasets demo3d demo2d] [--threshold 0.1]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd


def drop(log: pd.DataFrame) -> float:
    """The median loss's relative drop from the 70-85% window to the last 15% of training."""
    last = int(log["iteration"].max()) + 1
    fraction = log["iteration"] / last
    before = log.loc[(fraction >= 0.70) & (fraction < 0.85), "loss"].median()
    end = log.loc[fraction >= 0.85, "loss"].median()
    return float((before - end) / end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results", type=Path)
    parser.add_argument("--datasets", nargs="+", default=["demo3d", "demo2d"])
    parser.add_argument("--threshold", type=float, default=0.1)
    args = parser.parse_args()
    rows = []
    for dataset in args.datasets:
        for log_path in sorted((args.results / dataset).glob("*/*/train_log.parquet")):
            run, shape = log_path.parent.parent.name, log_path.parent.name
            if "-seed" in run or not (log_path.parent.parent / "batches").is_dir():
                continue
            log = pd.read_parquet(log_path)
            rows.append({"dataset": dataset, "method": run, "shape": shape,
                         "iterations": int(log["iteration"].max()) + 1,
                         "final loss": float(log["loss"].iloc[-1]), "drop": drop(log)})  # fmt: skip
    if not rows:
        raise SystemExit(f"no training logs under {args.results}/{{{','.join(args.datasets)}}}")
    table = pd.DataFrame(rows)
    table["flat"] = table["drop"] < args.threshold
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    per_method = table.groupby(["dataset", "method"])["flat"].all()
    print(f"\nflat (the last 15% of training lowered the loss by less than {args.threshold:.0%}):")
    print(per_method.to_string())


if __name__ == "__main__":
    main()
