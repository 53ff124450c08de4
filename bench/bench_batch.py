"""Shapes per hour against the training batch size K: what `train.batch_size` buys.

For each size (the default demo's networks and points, and the paper's: quadratic 5 x 128 /
linear 5 x 256, 15,000 + 15,000 points), method (StEik, DiGS) and K, one fresh process builds a
trainer of K shapes and times `Trainer.step` (the step the workflow runs, whichever path it
dispatches to) with the divergence on (the first 40% of SPEC's schedules) and off (the rest),
then reports

    shapes per hour = K x 3600 / (iterations x (0.4 t_on + 0.6 t_off))

with the size's iteration count (the demo config's, 10,000 for the paper), the peak memory of the
process, and the gain over K = 1. A K whose memory, extrapolated from the smaller ones, would not
fit in the machine is skipped and said so.

    python bench/bench_batch.py [--device cpu|cuda] [--sizes demo paper] [--ks 1 2 4 8 16]
        [--methods steik digs] [--steps 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SIZES = {
    # The default run's demo3d settings (config/config.yaml).
    "demo": {"points": 2000, "iterations": None, "quadratic": (3, 32), "linear": (3, 64)},
    # SPEC 2-4: the paper's networks and points.
    "paper": {"points": 15000, "iterations": 10_000, "quadratic": (5, 128), "linear": (5, 256)},
}


def demo_iterations() -> int:
    """The default run's training iterations (config/config.yaml's first override)."""
    import yaml

    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for entry in config["train"]["overrides"]:
        if "iterations" in entry["set"] and "datasets" not in entry:
            return int(entry["set"]["iterations"])
    raise SystemExit("config/config.yaml sets no global iteration count")


def one(size: str, method: str, k: int, steps: int, device: str, threads: int) -> dict:
    """Time one trainer in this process (called in a fresh process per measurement)."""
    import numpy as np
    import torch

    from steik.methods import preset
    from steik.train import Trainer, read_shape

    torch.set_num_threads(threads)
    spec = SIZES[size]
    probe = preset(method, "srb")
    layers, hidden = spec[probe.neuron]
    config = preset(method, "srb", layers=layers, hidden=hidden, n_manifold=spec["points"],
                    n_offsurface=spec["points"], iterations=100, log_every=1000)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        shapes = []
        for i in range(k):
            rng = np.random.default_rng(i)
            p = rng.normal(size=(max(spec["points"], 20_000), 3))
            p = (0.5 + 0.05 * i) * p / np.linalg.norm(p, axis=1, keepdims=True)
            path = Path(tmp) / f"s{i}.npz"
            np.savez(path, points=p.astype(np.float32))
            shapes.append(read_shape(path))
        trainer = Trainer(shapes, config, Path(tmp) / "out", device=device)
        times = {}
        for phase, iteration in (("on", 0), ("off", 50)):  # SRB schedule: weight 0 from 40%
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
    parser.add_argument("--sizes", nargs="+", default=["demo", "paper"], choices=list(SIZES))
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
    print(f"{'size':<6} {'method':<7} {'K':>3} {'iters':>6} {'on s':>8} {'off s':>8} "
          f"{'shapes/h':>10} {'gain':>6} {'peak MB':>8}")  # fmt: skip
    for size in args.sizes:
        iterations = SIZES[size]["iterations"] or demo_iterations()
        for method in args.methods:
            base, peaks = None, []
            for k in args.ks:
                if len(peaks) >= 2:  # linear in K from the last two measurements
                    (k1, m1), (k2, m2) = peaks[-2:]
                    predicted = m2 + (m2 - m1) / (k2 - k1) * (k - k2)
                    if predicted > 0.8 * memory:
                        print(f"{size:<6} {method:<7} {k:>3}  skipped: needs about "
                              f"{predicted / 1024:.1f} GB")  # fmt: skip
                        continue
                row = measure(args, size, method, k)
                if "error" in row:
                    print(f"{size:<6} {method:<7} {k:>3}  failed: {row['error']}")
                    continue
                per_step = 0.4 * row["on"] + 0.6 * row["off"]
                rate = k * 3600.0 / (iterations * per_step)
                base = base or rate
                peaks.append((k, row["peak_mb"]))
                print(f"{size:<6} {method:<7} {k:>3} {iterations:>6} {row['on']:8.3f} "
                      f"{row['off']:8.3f} {rate:10.1f} {rate / base:6.2f} "
                      f"{row['peak_mb']:8.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
