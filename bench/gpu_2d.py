"""The 2D experiment at SPEC 9's reference scale on one CUDA GPU, sized to a wall-time budget.

    PYTHONPATH=. python3 bench/gpu_2d.py OUT_DIR [--budget-s 330] [--jobs 5]

Needs torch, numpy, scipy, scikit-image, matplotlib and pandas (+ pyarrow) only. Steps:
1. the three SPEC 9 sample files (15,000 surface points each), as `steik sample demo2d`;
2. ms per iteration of every method (K = 3 batch, reference networks 5 x 128 linear and
   4 x 128 quadratic) with the divergence on and off, at 15,000 and 2,000 points per iteration;
3. the first plan of `PLANS` whose estimated wall time fits `--budget-s` (plan 0 is SPEC 9's
   reference: 10,000 iterations, 15,000 + 15,000 points, 3 seeds; later ones use fewer points,
   then fewer iterations; widths, lr, weights and schedule never change), written to plan.txt;
4. the experiment (`steik.experiment2d.run_experiment`, `--jobs` runs at a time on the GPU,
   seed after seed; runs not started within the budget are skipped, so the table says how many
   seeds it holds). Written to OUT_DIR: plan.txt (at once), tables/2d{.parquet,_summary.parquet,
   _snapshots.parquet,.md} (rewritten after every finished run, so a run cut short by a time
   limit still leaves them) and figures/2d_{levelsets,snapshots}.png (at the end).
Models and snapshots stay in --work (default: a temporary folder).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common2d import make_samples

METHODS = ("siren_wo_n", "digs", "lin_lln", "qua_ldiv", "steik")
PLANS = (  # (points per iteration, iterations, seeds)
    (15_000, 10_000, 3),
    (5_000, 10_000, 3),
    (2_000, 10_000, 3),
    (2_000, 5_000, 3),
    (2_000, 3_000, 3),
    (1_000, 2_000, 3),
)
DIV_FRACTION = 0.4
"""Share of training with the divergence on (SPEC 3's schedule reaches 0 at 40%)."""


def ms_per_iteration(
    method: str, samples: list[Path], points: int, device: str, steps: int = 5
) -> tuple[float, float]:
    """(ms/iteration with the divergence on, off) of one method at reference widths."""
    import torch

    from steik.experiment2d import Scale
    from steik.train import Trainer, read_shape

    config = Scale(n_points=points).method_config(method)
    shapes = [read_shape(p) for p in samples]
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(shapes, config, Path(out), 0, device, torch.float32, True)
        result = []
        for start in (0, config.iterations // 2):
            trainer.iteration = start
            for _ in range(2):
                trainer.step()
            torch.cuda.synchronize() if device.startswith("cuda") else None
            began = time.perf_counter()
            for _ in range(steps):
                trainer.step()
            torch.cuda.synchronize() if device.startswith("cuda") else None
            result.append(1000.0 * (time.perf_counter() - began) / steps)
    return result[0], result[1]


def choose_plan(args: argparse.Namespace, samples: list[Path], started: float):
    """Time every method, then pick the first plan of PLANS that fits the budget.

    Returns (report lines, estimate(points, iterations, seeds) -> serial seconds, plan).
    """
    timings = {
        m: {p: ms_per_iteration(m, samples, p, args.device) for p in (15_000, 2_000)}
        for m in METHODS
    }
    lines = [f"device {args.device}; ms/iteration (K = 3, divergence on / off):"]
    for m, by_points in timings.items():
        cells = ", ".join(f"{p} pts {on:.1f} / {off:.1f}" for p, (on, off) in by_points.items())
        lines.append(f"  {m:11s} {cells}")

    def estimate(points: int, iterations: int, seeds: int) -> float:
        """Wall seconds: GPU time of every run back to back divided by `--overlap` (what the
        parallel processes gain on one GPU; below 2,000 points the 2,000-point time is kept,
        since small steps are bound by kernel launches), plus the scoring, `--jobs` at a time."""
        total = 0.0
        for by_points in timings.values():
            (on_hi, off_hi), (on_lo, off_lo) = by_points[15_000], by_points[2_000]
            share = max(points - 2_000, 0) / 13_000
            on = on_lo + share * (on_hi - on_lo)
            off = off_lo + share * (off_hi - off_lo)
            gpu = iterations * (DIV_FRACTION * on + (1 - DIV_FRACTION) * off) / 1000
            total += seeds * (gpu / args.overlap + args.overhead_s / args.jobs)
        return total

    spent = time.time() - started
    budget = args.budget_s - spent
    estimates = [estimate(*plan) for plan in PLANS]
    choice = (
        args.plan
        if args.plan is not None
        else next((i for i, e in enumerate(estimates) if e <= budget), len(PLANS) - 1)
    )
    for i, (plan, est) in enumerate(zip(PLANS, estimates, strict=True)):
        mark = "->" if i == choice else "  "
        lines.append(
            f"{mark} plan {i}: {plan[0]} + {plan[0]} points, {plan[1]} iterations, "
            f"{plan[2]} seeds: ~{est:.0f} s estimated wall (budget left {budget:.0f} s)"
        )
    lines.append(f"chosen plan {choice}; SPEC 9 reference is plan 0")
    return lines, estimate, PLANS[choice]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the table, figures and plan")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=330.0,
        help="wall seconds for the training and scoring (default 330)",
    )
    parser.add_argument("--jobs", type=int, default=5, help="runs at a time (default 5)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--work", type=Path, default=None, help="folder for models and samples")
    parser.add_argument("--plan", type=int, default=None, help="force plan i of PLANS")
    parser.add_argument(
        "--custom",
        type=int,
        nargs=3,
        metavar=("POINTS", "ITERATIONS", "SEEDS"),
        help="run this plan instead (e.g. a CPU smoke test: 64 20 1)",
    )
    parser.add_argument(
        "--overlap",
        type=float,
        default=3.0,
        help="speed-up of --jobs processes sharing the GPU over one at a time (default 3: "
        "measured on an H200, 5 processes, 1,000 + 1,000 points)",
    )
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        help="hidden layers of both networks (reference: 5 linear, 4 quadratic)",
    )
    parser.add_argument("--hidden-linear", type=int, default=None, help="reference: 128")
    parser.add_argument("--hidden-quadratic", type=int, default=None, help="reference: 128")
    parser.add_argument(
        "--resolution", type=int, default=512, help="analysis grid per axis (default 512)"
    )
    parser.add_argument(
        "--overhead-s",
        type=float,
        default=15.0,
        help="estimated scoring + start-up seconds per run (default 15)",
    )
    args = parser.parse_args()
    started = time.time()

    from steik.experiment2d import AnalysisConfig, Scale, run_experiment

    work = args.work or Path(tempfile.mkdtemp(prefix="steik-gpu2d-"))
    samples = make_samples(work / "samples", n_points=15_000)
    if args.custom:
        points, iterations, seeds = args.custom
        lines = [f"custom plan: {points} + {points} points, {iterations} iterations, {seeds} seeds"]
        estimate = None
    else:
        lines, estimate, (points, iterations, seeds) = choose_plan(args, samples, started)
    print("\n".join(lines), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "plan.txt").write_text("\n".join(lines) + "\n")

    scale = Scale(
        iterations=iterations,
        n_points=points,
        layers=args.layers,
        hidden_linear=args.hidden_linear,
        hidden_quadratic=args.hidden_quadratic,
        extra={"log_every": 100, "checkpoint_every": 0},
    )
    paths = run_experiment(
        samples,
        work / "runs",
        METHODS,
        tuple(range(seeds)),
        scale,
        AnalysisConfig(resolution=args.resolution),
        device=args.device,
        jobs=args.jobs,
        # The last wave (one seed of every method, side by side) must start in time to finish.
        deadline=None
        if estimate is None
        else started + args.budget_s - estimate(points, iterations, 1),
        results_dir=args.out,
    )
    elapsed = time.time() - started
    lines.append(f"finished in {elapsed:.0f} s wall")
    (args.out / "plan.txt").write_text("\n".join(lines) + "\n")
    print(paths["markdown"].read_text())
    print(f"finished in {elapsed:.0f} s wall; outputs in {args.out}")


if __name__ == "__main__":
    main()
