"""Write the SLURM profile as the CI cluster can run it: profiles/slurm with GPU requests set to 0.

The CI cluster (.ci/slurm/start.sh) is this one machine: no GPU, a few CPUs, no accounting
database. So the copy written here differs from profiles/slurm/config.yaml in exactly these keys:
`gpu: 0` for train/extract, `mem_mb` requests capped to the node's memory per CPU, `cores` capped
to the node's CPUs, squeue-based job status with a 2 s first check. Everything else (retries,
resource expressions) is as shipped. `small_config` is the test-size workflow config that the
cluster tests and bench/bench_slurm.py run.

    python .ci/slurm/ci_profile.py OUT_DIR    # then: snakemake --profile OUT_DIR
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import yaml

PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "slurm" / "config.yaml"


def node_cpus_and_memory(node: str = "localhost") -> tuple[int, int]:
    """(CPUs, RealMemory in MB) of `node` as slurmctld sees it."""
    out = subprocess.run(
        ["sinfo", "--noheader", "--Node", "--nodes", node, "--format=%c %m"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()
    if len(out) != 2:
        raise SystemExit(f"sinfo knows no node {node!r}; start the cluster with .ci/slurm/start.sh")
    return int(out[0]), int(out[1])


def ci_profile(cpus: int, memory_mb: int) -> dict:
    """The shipped profile, adjusted to a GPU-less node with `cpus` CPUs and `memory_mb` MB."""
    profile = yaml.safe_load(PROFILE.read_text())
    cap = memory_mb // max(cpus, 1)
    for resources in profile["set-resources"].values():
        if "gpu" in resources:
            resources["gpu"] = 0
        if "mem_mb" in resources:
            resources["mem_mb"] = f"min({resources['mem_mb']}, {cap})"
    profile["default-resources"]["mem_mb"] = min(profile["default-resources"]["mem_mb"], cap)
    profile["cores"] = min(profile["cores"], cpus)
    profile["slurm-status-command"] = "squeue"
    profile["slurm-init-seconds-before-status-checks"] = 2
    return profile


def small_config(
    results: Path, resources: Path, shapes: dict[str, list[str]], methods: list[str]
) -> dict:
    """A workflow config of demo `shapes` ({dataset: [shape, ...]}) x `methods` at test size
    (60 iterations, 150 for 2D, coarse grids, no figures): seconds of CPU per job, so the cluster
    tests and bench/bench_slurm.py measure scheduling rather than training."""
    return {
        "datasets": list(shapes),
        "methods": methods,
        "shapes": shapes,
        "seeds": [0],
        "results_root": str(results),
        "resources_root": str(resources),
        "sample": {
            "defaults": {"n_points": 2000, "n_gt": 4000, "n_occ": 4000, "seed": 0},
            "per_dataset": {"demo2d": {"n_points": 400, "n_gt": 2000, "n_occ": 4096, "seed": 0}},
        },
        "train": {
            "device": "cpu",
            "overrides": [
                {"set": {"iterations": 60, "log_every": 10, "checkpoint_every": 30,
                         "n_manifold": 500, "n_offsurface": 500, "hidden": 16, "layers": 2}},
                # The 2D circle needs a little more to grow a zero level set.
                {"datasets": ["demo2d"], "set": {"iterations": 150, "hidden": 32, "layers": 3}},
            ],
        },
        "extract": {"defaults": {"resolution": 32}, "per_dataset": {"demo2d": {"resolution": 64}}},
        "evaluate": {"defaults": {"n_samples": 2000, "seed": 0}},
        "figures": {"enabled": False},
        "resources": {rule: {"threads": 1, "mem_mb": 500, "runtime": 10}
                      for rule in ("sample", "train", "extract", "evaluate", "tables")},
    }  # fmt: skip


def write_ci_profile(dest: Path) -> Path:
    """Write `dest/config.yaml` for the running local cluster; return `dest`."""
    cpus, memory_mb = node_cpus_and_memory()
    dest.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(ci_profile(cpus, memory_mb), sort_keys=False)
    (dest / "config.yaml").write_text(text)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write config.yaml into")
    args = parser.parse_args()
    print(write_ci_profile(args.out))


if __name__ == "__main__":
    main()
