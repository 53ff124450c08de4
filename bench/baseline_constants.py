"""IGR+FF and PHASE+FF on one SRB scan at two values of each open constant (docs/methods.md).

    nice -n 10 .venv/bin/python bench/baseline_constants.py --scans ../shared/data/srb/scans \
        --shape lord_quas --iterations 300 --points 1024 --workdir /tmp/constants

Fetches SRB from the scans folder (`steik fetch srb --scans`), samples the shape, then for each
variant trains with `steik train`, extracts (multires) and evaluates, all on the CPU, and prints
one Markdown row per variant: d_C-> and d_H-> (scan to reconstruction, the shape's original
units), the training time and the status. A rerun with the same --workdir keeps the networks
already trained. Points per iteration: IGR's ratio for igr_ff (N scan
points, N / 8 uniform), N + N for phase_ff. The constants' defaults are the presets'.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pandas as pd

VARIANTS: tuple[tuple[str, dict[str, object]], ...] = (
    ("igr_ff", {}),
    ("igr_ff", {"fourier_scale": 5.0}),
    ("igr_ff", {"fourier_keep_input": False}),
    ("phase_ff", {}),
    ("phase_ff", {"phase_mu": 0.1}),
    ("phase_ff", {"w_sdf": 10.0}),
)
"""(method, overrides beyond the sizes): each preset, then one constant moved to the value
public re-implementations use."""


def steik(*args: str) -> None:
    """Run one `steik` command; stop with its output when it fails."""
    result = subprocess.run(["steik", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"steik {args[0]} failed:\n{result.stdout}{result.stderr}")


def run_variant(
    out: Path, sample: Path, method: str, extra: dict[str, object], args: argparse.Namespace
) -> dict[str, object]:
    """Train, extract and evaluate one variant; its row of the printed table."""
    off_surface = args.points // 8 if method == "igr_ff" else args.points
    overrides = {
        "iterations": args.iterations, "n_manifold": args.points, "n_offsurface": off_surface,
        "checkpoint_every": 0, "log_every": 50, **extra,
    }  # fmt: skip
    label = ", ".join(f"{k} {v}" for k, v in extra.items()) or "preset"
    shape = sample.stem
    model, mesh = out / shape / "model.pt", out / shape / "mesh.ply"
    if not model.is_file():  # a rerun keeps the networks already trained
        steik("train", "--points", str(sample), "--method", method, "--experiment", "srb",
              "--out", str(out), "--device", "cpu", "--quiet",
              "--overrides", json.dumps(overrides))  # fmt: skip
    steik("extract", "--model", str(model), "--sample", str(sample), "--out", str(mesh),
          "--resolution", str(args.resolution), "--multires", "--device", "cpu")  # fmt: skip
    metrics = out / shape / "metrics.parquet"
    steik("evaluate", "--mesh", str(mesh), "--model", str(model), "--sample", str(sample),
          "--out", str(metrics), "--n-samples", str(args.n_samples), "--device", "cpu")  # fmt: skip
    row = pd.read_parquet(metrics).iloc[0]
    return {
        "method": method, "setting": label, "d_C->": row["chamfer_scan"],
        "d_H->": row["hausdorff_scan"], "train s": round(row["train_seconds"]),
        "status": row["status"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", required=True, help="folder of the SRB scans")
    parser.add_argument("--shape", default="lord_quas")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--points", type=int, default=1024, help="scan points per iteration")
    parser.add_argument("--resolution", type=int, default=64, help="extraction grid (multires)")
    parser.add_argument("--n-samples", type=int, default=100_000, help="metric samples")
    parser.add_argument("--workdir", type=Path, default=Path("constants"))
    args = parser.parse_args()
    workdir = args.workdir
    steik("fetch", "srb", "--scans", args.scans, "--root", str(workdir / "resources"))
    sample = workdir / "samples" / f"{args.shape}.npz"
    steik("sample", "srb", args.shape, "--root", str(workdir / "resources"), "--out", str(sample))
    rows = []
    for index, (method, extra) in enumerate(VARIANTS):
        rows.append(run_variant(workdir / f"{index}-{method}", sample, method, extra, args))
        print(json.dumps(rows[-1], default=str), flush=True)
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4g"))


if __name__ == "__main__":
    main()
