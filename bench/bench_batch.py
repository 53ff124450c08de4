"""Shapes per hour against the training batch size K: what `train.batch_size` buys.

For each size (the default demo's networks and points, or the paper's SRB preset: for StEik
and DiGS 5 x 128 quadratic / 5 x 256 linear, 15,000 + 15,000 points), method (any preset;
default StEik and DiGS) and K, one fresh process builds a trainer of K shapes and times
`Trainer.step` (the step the workflow runs, whichever path it dispatches to) with the divergence
on (the first 40% of SPEC's schedules) and off (the rest), then reports

    shapes per hour = K x 3600 / (iterations x (0.4 t_on + 0.6 t_off))

with the size's iteration count (the demo config's, the preset's for the paper), the peak memory
of the process, the memory each shape adds (what sizes `train.batch_size` for a card: the same
tensors live on a GPU) and the gain over K = 1. A K whose memory, extrapolated from the smaller
ones, would not fit in the machine is skipped and said so.

    python bench/bench_batch.py [--device cpu|cuda] [--sizes demo paper] [--ks 1 2 4 8 16]
        [--methods steik digs] [--steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from steik.methods import MethodConfig, merged_overrides, preset

ROOT = Path(__file__).resolve().parents[1]

SIZES = ("demo", "paper")


def size_config(size: str, method: str) -> MethodConfig:
    """`method`'s configuration at `size`: `demo` = the default run's demo3d settings (read from
    config/config.yaml the way the workflow reads them), `paper` = the SRB preset unchanged (for
    the SPEC 3 family: 5 x 128 quadratic / 5 x 256 linear, 15,000 + 15,000 points)."""
    import yaml

    if size == "paper":
        return preset(method, "srb")
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    overrides = merged_overrides(config["train"]["overrides"], "demo3d", method, "srb")
    return preset(method, "srb", **overrides)


def one(size: str, method: str, k: int, steps: int, device: str, threads: int) -> dict:
    """Time one trainer in this process (called in a fresh process per measurement)."""
    import numpy as np
    import torch

    from steik.allocator import keep_freed_memory
    from steik.train import Trainer, read_shape

    if os.environ.get("STEIK_BENCH_ALLOCATOR") != "default":
        keep_freed_memory()
    torch.set_num_threads(threads)
    config = dataclasses.replace(size_config(size, method), log_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        shapes = []
        for i in range(k):
            rng = np.random.default_rng(i)
            p = rng.normal(size=(max(config.n_manifold, 20_000), 3))
            p = (0.5 + 0.05 * i) * p / np.linalg.norm(p, axis=1, keepdims=True)
            path = Path(tmp) / f"s{i}.npz"
            np.savez(path, points=p.astype(np.float32))
            shapes.append(read_shape(path))
        trainer = Trainer(shapes, config, Path(tmp) / "out", device=device)
        times = {}
        for phase, iteration in (("on", 0), ("off", config.iterations // 2)):  # off from 40%
            trainer.iteration = iteration
            trainer.step()  # warm-up (allocations, a compiled step's first call)
            seconds = []
            for _ in range(steps):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                trainer.step()
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                seconds.append(time.perf_counter() - start)
            times[phase] = statistics.median(seconds)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if device.startswith("cuda"):
        peak_mb = torch.cuda.max_memory_allocated() / 2**20
    return {"on": times["on"], "off": times["off"], "peak_mb": peak_mb,
            "params": trainer.net.n_params_per_shape()}  # fmt: skip


def measure(args: argparse.Namespace, size: str, method: str, k: int) -> dict:
    command = [sys.executable, __file__, "--one", size, method, str(k), "--steps", str(args.steps),
               "--device", args.device, "--threads", str(args.threads)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        return {"error": (result.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def available_mb() -> float:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", nargs="+", default=["demo", "paper"], choices=SIZES)
    parser.add_argument("--methods", nargs="+", default=["steik", "digs"])
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 2, 4, 8, 16])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per phase (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", nargs=3, metavar=("SIZE", "METHOD", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        size, method, k = args.one
        print(json.dumps(one(size, method, int(k), args.steps, args.device, args.threads)))
        return

    memory = available_mb()
    print(f"device {args.device}, {args.threads} threads, {os.cpu_count()} CPUs, "
          f"{memory / 1024:.1f} GB available; medians of {args.steps} steps per phase; "
          "shapes/hour over a whole SRB-schedule run (divergence on 40% of it)")  # fmt: skip
    print(f"{'size':<6} {'method':<10} {'K':>3} {'iters':>6} {'on s':>8} {'off s':>8} "
          f"{'shapes/h':>10} {'gain':>6} {'peak MB':>8} {'MB/shape':>8}")  # fmt: skip
    for size in args.sizes:
        for method in args.methods:
            iterations = size_config(size, method).iterations
            base, peaks = None, []
            for k in args.ks:
                if len(peaks) >= 2:  # linear in K from the last two measurements
                    (k1, m1), (k2, m2) = peaks[-2:]
                    predicted = m2 + (m2 - m1) / (k2 - k1) * (k - k2)
                    if predicted > 0.8 * memory:
                        print(f"{size:<6} {method:<10} {k:>3}  skipped: needs about "
                              f"{predicted / 1024:.1f} GB")  # fmt: skip
                        continue
                row = measure(args, size, method, k)
                if "error" in row:
                    print(f"{size:<6} {method:<10} {k:>3}  failed: {row['error']}")
                    continue
                per_step = 0.4 * row["on"] + 0.6 * row["off"]
                rate = k * 3600.0 / (iterations * per_step)
                base = base or rate
                peaks.append((k, row["peak_mb"]))
                first_k, first_mb = peaks[0]
                per_shape = (f"{(row['peak_mb'] - first_mb) / (k - first_k):.0f}"
                             if k > first_k else "")  # fmt: skip
                print(f"{size:<6} {method:<10} {k:>3} {iterations:>6} {row['on']:8.3f} "
                      f"{row['off']:8.3f} {rate:10.3g} {rate / base:6.2f} "
                      f"{row['peak_mb']:8.0f} {per_shape:>8}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
