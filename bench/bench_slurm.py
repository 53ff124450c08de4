"""Local vs SLURM wall time of a small config, and the sbatch submissions of batched jobs.

Runs the same small demo config twice in fresh temporary folders, one after another: locally
with `--cores <node CPUs>` and through the SLURM profile as CI runs it. Prints wall time, SLURM
jobs submitted and the Snakemake jobs run, plus the submissions a paper-size run makes with the
shipped batch size (train, extract and evaluate are one job per batch of shapes).

Needs the one-node cluster of .ci/slurm/start.sh (or any idle node named localhost).

    .venv/bin/python bench/bench_slurm.py [--shapes-2d circle] [--shapes-3d sphere torus]
        [--methods steik]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+)")
SCHEDULED = re.compile(r"^\s*(?:rule|localrule|localcheckpoint|checkpoint) (\w+):", re.MULTILINE)


def _ci_profile_module():
    spec = importlib.util.spec_from_file_location("ci_profile", ROOT / ".ci/slurm/ci_profile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(workdir: Path, config: dict, extra: list[str]) -> tuple[float, int, int]:
    """Run the config in `workdir`: (wall seconds, sbatch submissions, Snakemake jobs run)."""
    workdir.mkdir(parents=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # The venv first on PATH: rules call `steik`, and SLURM jobs inherit this environment.
    env = {**os.environ, "PATH": f"{SNAKEMAKE.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    result = subprocess.run(
        [str(SNAKEMAKE), "--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(workdir / "config.yaml"), *extra],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"snakemake failed in {workdir}:\n{result.stdout[-4000:]}")
    jobs = sum(1 for rule in SCHEDULED.findall(result.stdout) if rule != "all")
    return seconds, len(SUBMITTED.findall(result.stdout)), jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes-2d", nargs="*", default=["circle"])
    parser.add_argument("--shapes-3d", nargs="*", default=["sphere", "torus"])
    parser.add_argument("--methods", nargs="+", default=["steik"])
    args = parser.parse_args()

    ci = _ci_profile_module()
    cpus, memory_mb = ci.node_cpus_and_memory()
    with tempfile.TemporaryDirectory(prefix="bench_slurm_") as tmp:
        tmp = Path(tmp)
        profile = ci.write_ci_profile(tmp / "profile")
        rows = []
        for label, extra in (
            ("local --cores", ["--cores", str(cpus)]),
            ("slurm", ["--profile", str(profile)]),
        ):
            workdir = tmp / label.replace(" ", "_").replace(",", "")
            shapes = {d: picked for d, picked in (("demo3d", args.shapes_3d),
                                                  ("demo2d", args.shapes_2d)) if picked}
            config = ci.small_config(workdir / "results", workdir / "resources", shapes,
                                     args.methods)
            rows.append((label, *run(workdir, config, extra)))

    n_shapes = len(args.shapes_2d) + len(args.shapes_3d)
    print(f"node: {cpus} CPUs, {memory_mb} MB; config: {n_shapes} shapes x "
          f"{len(args.methods)} methods ({', '.join(args.methods)})")
    print(f"{'run':<18} {'wall s':>8} {'sbatch':>7} {'jobs':>5}")
    for label, seconds, submissions, jobs in rows:
        print(f"{label:<18} {seconds:8.1f} {submissions:7d} {jobs:5d}")

    # A paper-size run (ShapeNet: 260 shapes x 6 methods) with config/shapenet.yaml's batch size.
    from steik.batching import split_batches

    size = yaml.safe_load((ROOT / "config" / "shapenet.yaml").read_text())["train"]["batch_size"]
    batches = len(split_batches([f"shape{i}" for i in range(260)], size))
    per_rule = {"sample": 260, "train": batches * 6, "extract": batches * 6,
                "evaluate": batches * 6}  # fmt: skip
    print(f"ShapeNet 260 x 6 with batch_size {size}: {batches} batches, sample+train+extract+"
          f"evaluate submissions {sum(per_rule.values())} vs {260 + 3 * 260 * 6} with one job "
          "per shape (tables and figures not counted)")


if __name__ == "__main__":
    main()
