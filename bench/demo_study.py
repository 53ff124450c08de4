"""Quality against CPU time for the demo shapes: what a faithful miniature of the paper can scale.

    .venv/bin/python bench/demo_study.py --out study [--dims 3 2] [--jobs 2] [--only steik]
    .venv/bin/python bench/demo_study.py --out study --report      # tables and figures only

Each point of the grid trains one method on all three demo shapes of a dimension (3D: sphere,
grooved_box, csg; 2D: circle, l_shape, snowflake) as one batch through the `steik` command line
(train with snapshots, extract, evaluate), one thread per job, and records per shape: Chamfer, IoU,
pieces of the zero level set, the CPU seconds of the training process per shape, and the same
measures at every snapshot. Screened Poisson (3D) is one more point. Points already measured
(their `rows.parquet` exists) are skipped, so a killed study resumes.

The grid starts from the paper's settings (SPEC 3-4: networks, learning rates, weights,
schedules, initialisations; the `srb` experiment for 3D, `2d` for 2D) and varies one dimension
at a time around a base point: iterations, points per iteration, network size, learning rate,
and batch size (which changes time per shape, not the weights). Every point keeps the weights,
schedules and inits of the paper.

Writes OUT/study.parquet (one row per point, shape and snapshot fraction; fraction 1 is the final
network on the final extraction grid), OUT/study.md (the final rows: mean over shapes and the
worst shape's IoU and pieces) and one figure per dimension and varied setting,
OUT/study_<dim>d_<setting>.png: IoU and Chamfer against CPU seconds per shape, one line per
method, screened Poisson as a point; and OUT/study_3d_sphere_field.png, each 3D point's trained
field along the line through the sphere's centre (where a wrong-signed interior shows).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from steik.data.sample import load_sample
from steik.grid import evaluate_points
from steik.methods import preset
from steik.model import load_model

SHAPES = {3: ("sphere", "grooved_box", "csg"), 2: ("circle", "l_shape", "snowflake")}
DATASET = {3: "demo3d", 2: "demo2d"}
EXPERIMENT = {3: "srb", 2: "2d"}
SAMPLING = {
    3: dict(n_points=20_000, n_gt=20_000, n_occ=20_000),
    2: dict(n_points=2_000, n_gt=20_000, n_occ=16_384),
}
RESOLUTION = {3: 96, 2: 256}
SNAPSHOTS = (0.25, 0.5)
SNAPSHOT_RESOLUTION = 48
"""Snapshots are scored on a coarser grid than the final network (`RESOLUTION`): they show the
trend during training at a fraction of the cost."""


@dataclass(frozen=True)
class Point:
    """One grid point: a method trained on a dimension's shapes with these settings (None keeps
    the paper's preset value)."""

    dim: int
    method: str
    varied: str
    iterations: int
    points: int
    hidden: int | None = None
    layers: int | None = None
    lr_factor: float = 1.0
    batch: int = 3
    sphere_scaling: float | None = None
    seed: int = 0

    @property
    def name(self) -> str:
        net = "paper" if self.hidden is None else f"{self.layers}x{self.hidden}"
        scaling = "" if self.sphere_scaling is None else f"-sc{self.sphere_scaling:g}"
        seed = f"-s{self.seed}" if self.seed else ""
        return (
            f"{self.dim}d-{self.method}-it{self.iterations}-pts{self.points}-{net}"
            f"-lr{self.lr_factor:g}-b{self.batch}{scaling}{seed}"
        )


SMALL_NET = {
    ("steik", 3): (64, 3), ("digs", 3): (128, 3), ("lin_lln", 3): (128, 3),
    ("qua_ldiv", 3): (64, 3), ("siren_wo_n", 3): (128, 3), ("steik", 2): (64, 3),
    ("digs", 2): (64, 4),
}  # fmt: skip
"""A smaller network per (method, dim) at the paper's depth-to-width proportions: half the width,
fewer layers (quadratic half the linear width, as in the paper)."""


def grid(dims: list[int], methods: list[str], base_iterations: dict[int, int]) -> list[Point]:
    """Per (dim, method): the paper's settings at the base iterations and points, half the
    iterations, half the points, other seeds (2D, where the demo keeps the paper's networks),
    then a smaller network (at the base and twice the iterations),
    and, on the smaller network (where a point is cheap), four times the points, twice the
    learning rate and batches of one shape."""
    out = []
    for dim in dims:
        for method in methods:
            if dim == 2 and method not in ("steik", "digs"):
                continue
            base = Point(dim, method, "base", base_iterations[dim], 2000)
            out += [
                base,
                replace(base, varied="iterations", iterations=base.iterations // 2),
                replace(base, varied="points", points=base.points // 2),
            ]
            if dim == 2:
                out += [replace(base, varied="seed", seed=seed) for seed in (1, 2)]
            if (method, dim) not in SMALL_NET:
                continue
            hidden, layers = SMALL_NET[(method, dim)]
            small = replace(base, varied="network", hidden=hidden, layers=layers)
            out += [
                small,
                replace(small, iterations=base.iterations * 2),
                replace(small, varied="points", points=base.points * 4),
                replace(small, varied="lr", lr_factor=2.0),
                replace(small, varied="batch", batch=1),
            ]
            if dim == 3:
                out += _sphere_points(small)
    return out


def _sphere_points(small: Point) -> list[Point]:
    """3D only, on the smaller network: longer schedules (four times the iterations, at the
    base points and at half of them; eight times; four times at the paper's network, one shape
    per job) and the output scaling of the sphere init (SPEC 2: 0.1 in
    the SRB scripts, 1.0 in the 2D ones). With 0.1 the field cannot fall below
    -radius * 0.1 = -0.16 without its raw output changing sign, which a fat solid's interior
    (depth up to 1 after normalisation) asks for; with 1.0 the initial sphere is a true distance
    field, deep inside and outside, which the exterior then has to undo."""
    long = replace(small, varied="sphere", iterations=small.iterations * 4)
    half = replace(long, points=small.points // 2)
    return [
        long,
        replace(long, iterations=small.iterations * 8, batch=1),
        replace(long, hidden=None, layers=None, batch=1),
        half,
        replace(small, varied="sphere", sphere_scaling=1.0),
        replace(half, iterations=small.iterations * 2, sphere_scaling=1.0),
        replace(half, sphere_scaling=1.0),
    ]


def _steik(*args: str, log: Path) -> float:
    """Run `steik ARGS` (one thread), append its output to `log`; return its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log, "a") as handle:
        done = subprocess.run(
            [sys.executable, "-m", "steik", *args], stdout=handle, stderr=subprocess.STDOUT,
            env=env, check=False,
        )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"steik {args[0]} failed; see {log}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def prepare_samples(out: Path, dim: int) -> list[Path]:
    """The demo shapes' sample files (made once)."""
    dataset = DATASET[dim]
    paths = []
    for shape in SHAPES[dim]:
        path = out / "samples" / dataset / f"{shape}.npz"
        if not path.is_file():
            _steik("fetch", dataset, "--root", str(out / "resources"), "--quiet",
                   log=out / "samples.log")  # fmt: skip
            options = json.dumps(dict(SAMPLING[dim], seed=0))
            _steik("sample", dataset, shape, "--root", str(out / "resources"), "--out", str(path),
                   "--options", options, log=out / "samples.log")  # fmt: skip
        paths.append(path)
    return paths


def run_point(out: Path, point: Point, samples: list[Path]) -> Path:
    """Train, extract and evaluate one grid point (batches of `point.batch` shapes)."""
    folder = out / "points" / point.name
    rows = folder / "rows.parquet"
    if rows.is_file():
        return rows
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "log.txt"
    overrides: dict[str, object] = {
        "iterations": point.iterations, "n_manifold": point.points, "n_offsurface": point.points,
        "log_every": 10,
    }  # fmt: skip
    if point.hidden is not None:
        overrides.update(hidden=point.hidden, layers=point.layers)
    if point.lr_factor != 1.0:
        overrides["lr"] = preset(point.method, EXPERIMENT[point.dim]).lr * point.lr_factor
    if point.sphere_scaling is not None:
        overrides["sphere_scaling"] = point.sphere_scaling
    cpu = 0.0
    for start in range(0, len(samples), point.batch):
        batch = [str(s) for s in samples[start : start + point.batch]]
        cpu += _steik(
            "train", "--points", *batch, "--method", point.method,
            "--experiment", EXPERIMENT[point.dim], "--out", str(folder), "--device", "cpu",
            "--seed", str(point.seed), "--quiet", "--overrides", json.dumps(overrides),
            "--snapshots", ",".join(str(f) for f in SNAPSHOTS), log=log,
        )  # fmt: skip
    shapes = [s.stem for s in samples]
    models = [str(folder / s / "model.pt") for s in shapes]
    meshes = [str(folder / s / "mesh.ply") for s in shapes]
    _steik("extract", "--model", *models, "--sample", *map(str, samples), "--out", *meshes,
           "--resolution", str(RESOLUTION[point.dim]), "--device", "cpu", log=log)  # fmt: skip
    _evaluate(folder, meshes, models, samples, log)
    final = pd.read_parquet(folder / "final.parquet")
    snaps = pd.read_parquet(folder / "snapshots.parquet")
    final = final.assign(fraction=1.0, seconds=cpu / len(samples))
    # Snapshot seconds are step seconds; scale them to the process's CPU seconds per shape.
    steps = final["train_seconds"].mean() / point.batch
    snaps = snaps.assign(seconds=snaps["seconds"] * (cpu / len(samples)) / steps)
    table = pd.concat([snaps, final[snaps.columns.intersection(final.columns)]], ignore_index=True)
    table = table.assign(**{k: v for k, v in asdict(point).items() if k not in ("dim", "method")},
                         dim=point.dim, method=point.method, point=point.name)  # fmt: skip
    table.to_parquet(rows)
    return rows


def _evaluate(folder: Path, meshes, models, samples, log: Path) -> None:
    outs = [str(Path(m).with_name("metrics.parquet")) for m in meshes]
    args = ["evaluate", "--mesh", *meshes]
    if models:
        args += ["--model", *models]
    args += ["--sample", *map(str, samples), "--out", *outs, "--n-samples", "20000",
             "--device", "cpu", "--table", str(folder / "final.parquet")]  # fmt: skip
    if models:
        args += ["--snapshot-table", str(folder / "snapshots.parquet"),
                 "--options", json.dumps({"snapshot_resolution": SNAPSHOT_RESOLUTION})]  # fmt: skip
    _steik(*args, log=log)


def run_poisson(out: Path, samples: list[Path]) -> Path:
    """Screened Poisson on the 3D shapes: one point at its reconstruction CPU time."""
    folder = out / "points" / "3d-poisson"
    rows = folder / "rows.parquet"
    if rows.is_file():
        return rows
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "log.txt"
    meshes = [str(folder / s.stem / "mesh.ply") for s in samples]
    cpu = _steik("reconstruct", "--sample", *map(str, samples), "--out", *meshes, log=log)
    _evaluate(folder, meshes, [], samples, log)
    final = pd.read_parquet(folder / "final.parquet")
    final.assign(fraction=1.0, seconds=cpu / len(samples), dim=3, method="poisson",
                 point="3d-poisson", varied="poisson").to_parquet(rows)  # fmt: skip
    return rows


# ---------------------------------------------------------------- report


def report(out: Path) -> None:
    """study.parquet, study.md and the figures from every measured point."""
    frames = [pd.read_parquet(p) for p in sorted((out / "points").glob("*/rows.parquet"))]
    if not frames:
        raise SystemExit(f"no measured points under {out}/points")
    table = pd.concat(frames, ignore_index=True)
    table.to_parquet(out / "study.parquet")
    final = table[table["fraction"] == 1.0]
    summary = final.groupby(["dim", "method", "point"], sort=True).agg(
        varied=("varied", "first"), iterations=("iterations", "first"),
        points=("points", "first"), network=("hidden", "first"), layers=("layers", "first"),
        lr_factor=("lr_factor", "first"), batch=("batch", "first"),
        sphere_scaling=("sphere_scaling", "first"), seed=("seed", "first"),
        cpu_s_per_shape=("seconds", "mean"), chamfer=("chamfer", "mean"), iou=("iou", "mean"),
        worst_iou=("iou", "min"), max_pieces=("n_components", "max"),
    ).reset_index()  # fmt: skip
    summary["network"] = [
        "-" if m == "poisson" else "paper" if pd.isna(h) else f"{int(n)} x {int(h)}"
        for m, h, n in zip(summary["method"], summary["network"], summary["layers"], strict=True)
    ]
    summary = summary.drop(columns=["layers", "point"])
    (out / "study.md").write_text(summary.to_markdown(index=False, floatfmt=".4g") + "\n")
    print(summary.to_string(index=False))
    for (dim, varied), _ in final[final["varied"] != "poisson"].groupby(["dim", "varied"]):
        _figure(out, table, int(dim), str(varied))
    _sphere_field(out)


def _sphere_field(out: Path) -> None:
    """OUT/study_3d_sphere_field.png: each 3D point's final u along the line through the
    sphere's centre, beside the true signed distance. Where the SRB sphere init's floor
    (u = -0.16 while the raw output keeps its sign) stops the interior, u turns back up and an
    inner surface with the wrong sign appears; IoU shows it, a render cannot."""
    models = sorted((out / "points").glob("3d-*/sphere/model.pt"))
    if not models:
        return
    sample = load_sample(out / "samples" / DATASET[3] / "sphere.npz")
    radius = float(np.linalg.norm(sample.points, axis=1).mean())
    x = np.linspace(-1.1, 1.1, 221)
    line = np.stack([x, np.zeros_like(x), np.zeros_like(x)], axis=-1)  # [221, 3]
    methods = sorted({m.parent.parent.name.split("-")[1] for m in models})
    fig, axes = plt.subplots(1, len(methods), figsize=(4.6 * len(methods), 4.6), squeeze=False)
    for ax, method in zip(axes[0], methods, strict=True):
        ax.plot(x, np.abs(x) - radius, "k", lw=2.5, alpha=0.3, label="true signed distance")
        for model in models:
            name = model.parent.parent.name
            if name.split("-")[1] != method:
                continue
            u = evaluate_points(load_model(model)[0], line)
            ax.plot(x, u, lw=1, label=name.split("-", 2)[2])
        ax.axhline(0, color="grey", lw=0.6)
        ax.axhline(-0.16, color="grey", lw=0.6, ls=":")
        ax.set_ylim(-1.1, 1.1)
        ax.set_xlabel("x through the centre (normalised units)")
        ax.set_ylabel("u")
        ax.set_title(method, fontsize=9)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2)
        ax.grid(alpha=0.3)
    fig.suptitle("demo 3D sphere: the trained field through the centre (dotted: u = -0.16)",
                 fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(out / "study_3d_sphere_field.png", dpi=100)
    plt.close(fig)


def _figure(out: Path, table: pd.DataFrame, dim: int, varied: str) -> None:
    """IoU and Chamfer against CPU seconds per shape: the base point and the points varying
    `varied`, each a line through its snapshots (mean over shapes), one colour per method."""
    part = table[(table["dim"] == dim) & table["varied"].isin(["base", varied])]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    colours: dict[str, str] = {}
    styles = ["-", "--", ":", "-."]
    for (method, name), run in part.groupby(["method", "point"], sort=True):
        curve = run.groupby("fraction")[["seconds", "iou", "chamfer"]].mean().reset_index()
        colour = colours.setdefault(method, f"C{len(colours)}")
        index = sorted(part[part["method"] == method]["point"].unique()).index(name)
        label = f"{method}: {name.split('-', 2)[2]}"
        for ax, metric in zip(axes, ("iou", "chamfer"), strict=True):
            ax.plot(curve["seconds"], curve[metric], styles[index % 4], color=colour,
                    marker="o", ms=3, label=label)  # fmt: skip
    poisson = table[table["method"] == "poisson"]
    if dim == 3 and len(poisson):
        for ax, metric in zip(axes, ("iou", "chamfer"), strict=True):
            ax.plot(poisson["seconds"].mean(), poisson[metric].mean(), "k*", ms=12,
                    label="screened Poisson")  # fmt: skip
    axes[0].set_ylim(0, 1.02)
    axes[0].axhline(0.9, color="grey", lw=0.6)
    axes[1].set_yscale("log")
    for ax, label in zip(axes, ("IoU (mean over shapes)", "Chamfer (mean over shapes)"),
                         strict=True):  # fmt: skip
        ax.set_xlabel("CPU seconds per shape (1 thread)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6)
    title = {"base": "the paper's settings",
             "sphere": "longer schedules and the sphere init's output scaling"}.get(
        varied, f"varying {varied}")  # fmt: skip
    fig.suptitle(f"demo {dim}D: {title} (other settings the base point's)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / f"study_{dim}d_{varied}.png", dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dims", type=int, nargs="+", default=[3, 2])
    parser.add_argument("--methods", nargs="+", default=["steik", "digs"])
    parser.add_argument("--iterations-3d", type=int, default=1000)
    parser.add_argument("--iterations-2d", type=int, default=1000)
    parser.add_argument("--only", help="run only the points whose name contains this")
    parser.add_argument("--shapes", nargs="+", help="train only these demo shapes (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="points run at once (1 thread each)")
    parser.add_argument("--report", action="store_true", help="only write tables and figures")
    parser.add_argument("--list", action="store_true", help="list the grid's points and stop")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    points = grid(args.dims, args.methods, {3: args.iterations_3d, 2: args.iterations_2d})
    points = list(dict.fromkeys(points))
    if args.only:
        points = [p for p in points if args.only in p.name]
    if args.list:
        print("\n".join(p.name for p in points))
        return
    if not args.report:
        samples = {dim: prepare_samples(args.out, dim) for dim in args.dims}
        if args.shapes:
            samples = {d: [p for p in paths if p.stem in args.shapes]
                       for d, paths in samples.items()}  # fmt: skip
        if 3 in args.dims and (not args.only or "poisson" in args.only):
            run_poisson(args.out, samples[3])
        # The cheapest first: the first results arrive early.
        cost = lambda p: p.iterations * p.points * (1 if p.hidden else 4)  # noqa: E731
        with ThreadPoolExecutor(args.jobs) as pool:
            for rows in pool.map(lambda p: run_point(args.out, p, samples[p.dim]),
                                 sorted(points, key=cost)):  # fmt: skip
                print(f"done: {rows.parent.name}", flush=True)
    report(args.out)


if __name__ == "__main__":
    main()
