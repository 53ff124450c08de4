"""Time `snakemake -n` (building the job graph) over folder datasets of many shapes.

For each size N, writes N empty `.ply` files into a temporary folder (a dry run never reads
them), a config with that folder as the only dataset, one method (`steik`) and
`train.batch_size: 16`, and times `snakemake -n` from start to exit. Prints one markdown row per
size: shapes, jobs in the graph, seconds, and seconds per 1,000 shapes (flat when the time grows
linearly). The table in docs/workflow.md ("Building the job graph") comes from this script.

    nice .venv/bin/python bench/bench_dag.py [--sizes 1000 2000 5000 10000 20000 50000]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def dry_run(shapes: int, folder: Path) -> tuple[float, int]:
    """(seconds, jobs) of one `snakemake -n` over a folder dataset of `shapes` empty files."""
    scans = folder / "scans"
    scans.mkdir()
    for i in range(shapes):
        (scans / f"shape{i:06d}.ply").touch()
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({
        "datasets": [{"name": "many", "kind": "folder", "path": str(scans)}],
        "methods": ["steik"],
        "train": {"batch_size": 16},
    }))  # fmt: skip
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(folder), "-n",
               "--quiet", "rules", "--configfile", str(config)]  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"snakemake -n failed for {shapes} shapes:\n{result.stderr[-3000:]}")
    total = re.search(r"^total\s+(\d+)", result.stdout + result.stderr, re.MULTILINE)
    return seconds, int(total[1]) if total else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[1000, 2000, 5000, 10000, 20000, 50000])  # fmt: skip
    args = parser.parse_args()
    print("| shapes | jobs | seconds | seconds per 1,000 shapes |")
    print("|---:|---:|---:|---:|")
    for shapes in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            seconds, jobs = dry_run(shapes, Path(tmp))
        print(f"| {shapes:,} | {jobs:,} | {seconds:.1f} | {1000 * seconds / shapes:.2f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
