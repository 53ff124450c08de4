"""Time per training iteration of the 2D experiment's methods, to size runs (prints numbers).

Trains the three SPEC 9 shapes of each method as one K = 3 batch for a few iterations with the
divergence on (the first 40% of training) and off (the rest), and extrapolates a whole run:
0.4 x iterations x ms(div on) + 0.6 x iterations x ms(div off). Both wall and process CPU time
are printed: on a shared machine the CPU time (one torch thread) is what predicts an idle one.

  python bench/bench_2d.py --device cpu --points-per-iter 500 --layers 4 \
      --hidden-linear 64 --hidden-quadratic 32 --iterations 1000
  python bench/bench_2d.py --device cuda            # SPEC 9 reference sizes
  python bench/bench_2d.py --device cuda --concurrent   # all methods at once, one process each

Sample files are made in --samples (default: a temporary folder) unless they exist there.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common2d import make_samples


def time_method(args: argparse.Namespace, method: str, samples: list[Path]) -> str:
    import torch

    from steik.experiment2d import Scale
    from steik.train import Trainer, read_shape

    torch.set_num_threads(args.threads)
    scale = Scale(
        iterations=args.iterations,
        n_points=args.points_per_iter,
        layers=args.layers,
        hidden_linear=args.hidden_linear,
        hidden_quadratic=args.hidden_quadratic,
    )
    config = scale.method_config(method)
    shapes = [read_shape(p) for p in samples]
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(shapes, config, Path(out), 0, args.device, torch.float32, True)
        timings = {}
        for phase, start in (("div", 0), ("nodiv", config.iterations // 2)):
            trainer.iteration = start
            for _ in range(args.warmup):
                trainer.step()
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            began, cpu_began = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                trainer.step()
            if trainer.device.type == "cuda":
                torch.cuda.synchronize()
            timings[phase] = 1000 * (time.perf_counter() - began) / args.steps
            timings[f"{phase}_cpu"] = 1000 * (time.process_time() - cpu_began) / args.steps
    run_s = config.iterations * (0.4 * timings["div"] + 0.6 * timings["nodiv"]) / 1000
    cpu_s = config.iterations * (0.4 * timings["div_cpu"] + 0.6 * timings["nodiv_cpu"]) / 1000
    return (
        f"{method:11s} {config.structure:9s} points {config.n_manifold}+{config.n_offsurface} "
        f"K=3  div on {timings['div']:7.1f} ms/it  off {timings['nodiv']:7.1f} ms/it  "
        f"-> {config.iterations} iterations ~ {run_s:7.1f} s wall, {cpu_s:7.1f} s CPU "
        f"(CPU ms/it {timings['div_cpu']:.1f} / {timings['nodiv_cpu']:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--methods", nargs="+", default=["siren_wo_n", "digs", "lin_lln", "qua_ldiv", "steik"]
    )
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--points-per-iter", type=int, default=None)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--hidden-linear", type=int, default=None)
    parser.add_argument("--hidden-quadratic", type=int, default=None)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=Path, default=None)
    parser.add_argument(
        "--concurrent", action="store_true", help="time every method at once, one process each"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    folder = args.samples or Path(tempfile.mkdtemp(prefix="steik-bench2d-"))
    samples = make_samples(folder, n_points=15_000)
    if args.one:
        print(time_method(args, args.one, samples), flush=True)
        return
    if not args.concurrent:
        for method in args.methods:
            print(time_method(args, method, samples), flush=True)
        return
    passed = [a for a in sys.argv[1:] if a != "--concurrent"]
    began = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, __file__, *passed, "--samples", str(folder), "--one", m])
        for m in args.methods
    ]
    for proc in procs:
        proc.wait()
    print(f"concurrent: {len(procs)} processes in {time.perf_counter() - began:.1f} s wall")


if __name__ == "__main__":
    main()
