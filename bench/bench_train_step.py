"""Milliseconds per training iteration for the configurations of the paper's Table 3.

Columns, measured interleaved in one run (every round runs each step once, so that all see the
same machine load) and reported as medians, with ratios as medians of per-round ratios:

- ours: `Trainer.step` as a paper-scale run executes it (explicit derivatives, `torch.compile`d:
  what the method field `step = auto` picks for such a run), divergence on; "ours, no div" the
  same step once the divergence weight has decayed to zero (the trainer then skips the
  divergence).
- eager: the same explicit step without compiling (`step = explicit`, what short runs use).
- autograd: `Trainer.step` on the autograd path (`step = autograd`, double backward).
- plain: a straightforward autograd step (three nn.Linear per quadratic layer, one forward pass
  over all points, the divergence on every point).
- authors: the reference implementation's `Network` and `Loss` (github sunyx523/StEik), imported
  from a local checkout given with `--reference PATH`, with their gradient clipping and Adam;
  skipped without it. Nothing of theirs is part of this repository. Their loss also skips the
  divergence once its weight is zero, so "authors, no div" is timed as well.

The SRB schedule evaluates the divergence in the first 40% of the iterations. "schedule" weighs
both steps 0.4 / 0.6 on both sides; "sched. vs on" compares our weighted step with the authors'
step with the divergence on (an implementation that never skips it). Also prints parameter
counts (ours and theirs must agree), the machine's float32 matmul rate, the load average before
and after, and the compile time of our step.

    python bench/bench_train_step.py [--device cpu|cuda] [--points 15000] [--rounds 5]
        [--only 1,4] [--threads 2] [--reference /path/to/StEik]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
import itertools
import os
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from steik.allocator import keep_freed_memory
from steik.losses import divergence_term, eikonal_term, inter_term, sdf_term
from steik.methods import MethodConfig, preset
from steik.trainer import Trainer, TrainingShape, read_shape

CONFIGS = [  # (label, method, layers, hidden)
    ("DiGS", "digs", 5, 256),
    ("Lin + L_L.n.", "lin_lln", 5, 256),
    ("Qua + L_div", "qua_ldiv", 5, 128),
    ("StEik", "steik", 5, 128),
    ("DiGS", "digs", 8, 512),
    ("Lin + L_L.n.", "lin_lln", 8, 512),
    ("Qua + L_div", "qua_ldiv", 8, 256),
    ("StEik", "steik", 8, 256),
]
SCAN_POINTS = 50_000
"""Size of the synthetic scan our trainer samples from (its sampling is part of the step)."""
DIV_FRACTION = 0.4
"""Share of SRB's iterations with a nonzero divergence weight."""


class PlainQuadratic(nn.Module):
    """The quadratic neuron written the obvious way: three nn.Linear maps."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = (
            nn.Linear(n_in, n_out),
            nn.Linear(n_in, n_out),
            nn.Linear(n_in, n_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l1(x) * self.l2(x) + self.l3(x * x)


class PlainNet(nn.Module):
    """`layers x hidden` sine network with the sphere output mapping, one module per layer."""

    def __init__(self, neuron: str, layers: int, hidden: int) -> None:
        super().__init__()
        widths = [3] + [hidden] * layers + [1]
        make = PlainQuadratic if neuron == "quadratic" else nn.Linear
        self.layers = nn.ModuleList(make(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.sin(30 * x)
        y = x.squeeze(-1)
        return (torch.sign(y) * torch.sqrt(y.abs() + 1e-8) - 1.6) * 0.1


def plain_step(net: nn.Module, optimizer, x_m: torch.Tensor, x_o: torch.Tensor, div: str) -> None:
    """One iteration with all points in one forward pass and the divergence evaluated on every
    point, then sliced to the off-surface half."""
    x = torch.cat([x_m, x_o], dim=1).requires_grad_(True)
    u = net(x)
    (g,) = torch.autograd.grad(u, x, torch.ones_like(u), create_graph=True)
    n = x_m.shape[1]
    if div == "directional":
        sq = (g * g).sum(-1, keepdim=True)
        (hg,) = torch.autograd.grad(sq, x, torch.ones_like(sq), create_graph=True)
        values = (0.5 * hg * g).sum(-1) / ((g * g).sum(-1) + 1e-5)
    else:
        values = 0
        for i in range(3):
            (row,) = torch.autograd.grad(
                g[..., i], x, torch.ones_like(g[..., i]), create_graph=True
            )
            values = values + row[..., i]
    loss = (
        2e3 * sdf_term(u[:, :n])
        + 1e2 * inter_term(u[:, n:])
        + 5e1 * eikonal_term(g)
        + 1e2 * divergence_term(values[:, n:], div, "l1")
    ).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def load_reference(path: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """The authors' `models.Net` and `models.losses` from a local checkout of their repository.

    Their loss module imports `utils.utils` for one function, `gradient`; that module also needs
    tensorboardX and plyfile, so where those are missing a stand-in computing the same gradient
    takes its place.
    """
    root = str(Path(path).resolve())
    if not (Path(root) / "models" / "Net.py").is_file():
        raise SystemExit(f"--reference {path}: no models/Net.py there; give the StEik checkout")
    sys.path.insert(0, root)
    try:
        importlib.import_module("utils.utils")
    except ImportError:
        for name in [m for m in sys.modules if m == "utils" or m.startswith("utils.")]:
            del sys.modules[name]

        def gradient(inputs, outputs, create_graph=True, retain_graph=True):
            (grad,) = torch.autograd.grad(
                outputs,
                inputs,
                torch.ones_like(outputs),
                create_graph=create_graph,
                retain_graph=retain_graph,
            )
            return grad

        stand_in = types.ModuleType("utils.utils")
        stand_in.gradient = gradient
        package = types.ModuleType("utils")
        package.utils = stand_in
        sys.modules["utils"], sys.modules["utils.utils"] = package, stand_in
    return importlib.import_module("models.Net"), importlib.import_module("models.losses")


class AuthorsStep:
    """One training iteration of the reference code: forward of both point sets, their Loss,
    backward, gradient-norm clipping to 10, Adam."""

    def __init__(self, net_module, loss_module, config: MethodConfig, device: torch.device) -> None:
        # Their linear network counts hidden layers after the first one, the quadratic all.
        n_hidden = config.layers if config.neuron == "quadratic" else config.layers - 1
        with contextlib.redirect_stdout(io.StringIO()):  # their constructor prints
            self.net = net_module.Network(
                latent_size=0,
                in_dim=3,
                decoder_hidden_dim=config.hidden,
                nl="sine",
                encoder_type="none",
                decoder_n_hidden_layers=n_hidden,
                init_type="mfgi",
                neuron_type=config.neuron,
                sphere_init_params=[1.6, 0.1],
            ).to(device)
        weights = [config.w_sdf, config.w_inter, config.w_normal, config.w_eikonal, 1e2]
        div_type = ("dir" if config.div == "directional" else "full") + "_" + config.div_norm
        self.losses = {
            with_div: loss_module.Loss(
                weights=[*weights[:4], 1e2 if with_div else 0.0],
                loss_type="siren_wo_n_w_div",
                div_decay="linear",
                div_type=div_type,
            )
            for with_div in (True, False)
        }
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=(0.9, 0.999))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def __call__(
        self, x_m: torch.Tensor, x_o: torch.Tensor, normals: torch.Tensor, with_div: bool
    ) -> None:
        self.net.zero_grad()
        m = x_m.clone().requires_grad_(True)
        o = x_o.clone().requires_grad_(True)
        terms, _ = self.losses[with_div](self.net(o, m), m, o, normals)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 10.0)
        self.optimizer.step()


def matmul_rate(device: torch.device) -> float:
    """Measured float32 GFLOP/s of a 2048^3 matrix product (best of 5)."""
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    a @ b
    times = []
    for _ in range(5):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * 2048**3 / min(times) / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], None], device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return 1000 * (time.perf_counter() - start)


def trainer_step(trainer: Trainer, with_div: bool) -> Callable[[], None]:
    """`trainer.step()` (on the path of its method's `step` field) at an iteration whose
    divergence weight is nonzero (`with_div`) or zero."""
    iteration = 0 if with_div else trainer.config.iterations // 2

    def step() -> None:
        trainer.iteration = iteration
        trainer.step()

    return step


def load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def measure_row(
    row: int,
    args: argparse.Namespace,
    reference: tuple[types.ModuleType, types.ModuleType] | None,
    shape: TrainingShape,
    out_dir: Path,
    gen: torch.Generator,
) -> str:
    """One table row: every column timed once per round, rounds interleaved."""
    device = torch.device(args.device)
    label, method, layers, hidden = CONFIGS[row - 1]
    sizes = dict(layers=layers, hidden=hidden, n_manifold=args.points, n_offsurface=args.points)
    trainers = {  # one per derivative path, each with the same initial weights
        step: Trainer([shape], preset(method, "srb", **sizes, step=step), out_dir, device=device)
        for step in ("compiled", "explicit", "autograd")
    }
    config = trainers["compiled"].config
    plain = PlainNet(config.neuron, layers, hidden).to(device)
    plain_opt = torch.optim.Adam(plain.parameters(), lr=1e-4)
    x_m = (torch.rand(1, args.points, 3, generator=gen) * 2 - 1).to(device)
    x_o = (torch.rand(1, args.points, 3, generator=gen) * 2.2 - 1.1).to(device)
    normals = torch.nn.functional.normalize(x_m, dim=-1)
    steps = {
        "ours": trainer_step(trainers["compiled"], True),
        "ours, no div": trainer_step(trainers["compiled"], False),
        "eager": trainer_step(trainers["explicit"], True),
        "autograd": trainer_step(trainers["autograd"], True),
        "plain": functools.partial(plain_step, plain, plain_opt, x_m, x_o, config.div),
    }
    n_params = trainers["compiled"].net.n_params_per_shape()
    if reference:
        authors = AuthorsStep(*reference, config, device)
        if authors.n_params() != n_params:
            raise SystemExit(f"parameter counts differ: {authors.n_params()} vs {n_params}")
        steps["authors"] = functools.partial(authors, x_m, x_o, normals, True)
        steps["authors, no div"] = functools.partial(authors, x_m, x_o, normals, False)
    first = {name: timed(fn, device) for name, fn in steps.items()}  # warm-up; compiles ours
    times = {name: np.empty(args.rounds) for name in steps}
    for i in range(args.rounds):
        for name, fn in steps.items():
            times[name][i] = timed(fn, device)
    median = {name: float(np.median(t)) for name, t in times.items()}
    compile_s = (
        first["ours"] + first["ours, no div"] - median["ours"] - median["ours, no div"]
    ) / 1000

    def ratio(num: np.ndarray, den: np.ndarray) -> float:
        """Median over rounds of the per-round ratio."""
        return float(np.median(num / den))

    def schedule(prefix: str) -> np.ndarray:
        return DIV_FRACTION * times[prefix] + (1 - DIV_FRACTION) * times[prefix + ", no div"]

    cells = " ".join(f"{median[name]:15.1f}" for name in steps)
    text = (
        f"{ratio(times['ours'], times['autograd']):13.2f}"
        f" {ratio(times['ours'], times['plain']):10.2f}"
    )
    if reference:
        text += (
            f" {ratio(times['ours'], times['authors']):12.2f}"
            f" {ratio(schedule('ours'), schedule('authors')):8.2f}"
            f" {ratio(schedule('ours'), times['authors']):11.2f}"
        )
    return f"{label:13s} {config.structure:9s} {n_params:9,d} {cells}  | {text} | {compile_s:6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--points", type=int, default=15_000, help="manifold and off-surface each")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--only", default="", help="comma-separated row numbers (1-8) to run")
    parser.add_argument("--reference", type=Path, help="local checkout of github sunyx523/StEik")
    parser.add_argument("--allocator", choices=["keep", "default"], default="keep",
                        help="keep freed memory for reuse, as `steik` does (steik.allocator)")
    args = parser.parse_args()
    kept = args.allocator == "keep" and keep_freed_memory()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = [int(v) for v in args.only.split(",") if v] or list(range(1, 9))
    reference = load_reference(args.reference) if args.reference else None
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{args.points} + {args.points} points, {args.rounds} interleaved rounds, "
        f"authors' code {'from ' + str(args.reference) if reference else 'not given'}, "
        f"freed memory {'kept' if kept else 'returned (allocator default)'}"
    )
    print(f"float32 matmul rate: {matmul_rate(device):.1f} GFLOP/s; load average {load()}")
    columns = ["ours", "ours, no div", "eager", "autograd", "plain"]
    ratios = "ours/autograd ours/plain"
    if reference:
        columns += ["authors", "authors, no div"]
        ratios += " ours/authors schedule sched.vs.on"
    names = " ".join(f"{c:>15s}" for c in columns)
    print(f"{'method':13s} {'structure':9s} {'params':>9s} {names}  | {ratios} | compile s")
    gen = torch.Generator().manual_seed(0)
    scan = torch.nn.functional.normalize(torch.randn(SCAN_POINTS, 3, generator=gen), dim=-1)
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "bench.npz", points=(0.8 * scan).numpy())
        shape = read_shape(Path(tmp) / "bench.npz")
        for row in rows:
            print(measure_row(row, args, reference, shape, Path(tmp), gen), flush=True)
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
