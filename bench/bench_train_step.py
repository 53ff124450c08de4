"""Milliseconds per training iteration for the eight configurations of the paper's Table 3.

Prints, per configuration, the median time of our training step (`steik.train.loss_terms` plus
backward and Adam, as the trainer runs it) and of a straightforward version of the same step
(three separate linear maps per quadratic layer, one forward pass over all points, plain
autograd, divergence over every point as in the reference code), measured interleaved in one
run so that the ratio is robust to the machine's noise. Our trainer skips the divergence once
its scheduled weight reaches zero (the last 60% of SPEC's schedules), so the step without it is
timed too, and the last column gives the speed-up averaged over a whole SRB schedule (divergence
evaluated in 40% of the iterations; the reference code evaluates it always). Also prints
parameter counts and the machine's measured float32 matmul rate for scale.

    python bench/bench_train_step.py [--device cpu|cuda] [--points 15000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
from torch import nn

from steik.losses import divergence_term, eikonal_term, inter_term, sdf_term
from steik.methods import preset
from steik.model import build_network
from steik.objectives import loss_terms

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


class NaiveQuadratic(nn.Module):
    """The quadratic neuron written the obvious way: three nn.Linear maps."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = (
            nn.Linear(n_in, n_out),
            nn.Linear(n_in, n_out),
            nn.Linear(n_in, n_out),
        )

    def forward(self, x):
        return self.l1(x) * self.l2(x) + self.l3(x * x)


class NaiveNet(nn.Module):
    def __init__(self, neuron: str, layers: int, hidden: int) -> None:
        super().__init__()
        widths = [3] + [hidden] * layers + [1]
        make = NaiveQuadratic if neuron == "quadratic" else nn.Linear
        self.layers = nn.ModuleList(make(a, b) for a, b in itertools.pairwise(widths))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.sin(30 * x)
        y = x.squeeze(-1)
        return (torch.sign(y) * torch.sqrt(y.abs() + 1e-8) - 1.6) * 0.1


def naive_step(net, optimizer, x_m, x_o, div: str) -> None:
    """One iteration as the reference code structures it: all points in one forward pass, the
    divergence evaluated on every point, then sliced to the off-surface half."""
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


def our_step(net, optimizer, x_m, x_o, config, with_div: bool = True) -> None:
    terms = loss_terms(net, x_m.clone(), x_o.clone(), None, config, with_div)
    loss = 2e3 * terms["sdf"] + 1e2 * terms["inter"] + 5e1 * terms["eikonal"]
    if with_div:
        loss = loss + 1e2 * terms["div"]
    loss = loss.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def matmul_rate(device: torch.device) -> float:
    """Measured float32 GFLOP/s of a 2048^3 matrix product."""
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    a @ b
    times = []
    for _ in range(3):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - start)
    return 2 * 2048**3 / min(times) / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--points", type=int, default=15_000, help="manifold and off-surface points each"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated row numbers (1-8) to run")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = [int(v) for v in args.only.split(",") if v] or list(range(1, 9))
    print(
        f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"{args.points} + {args.points} points, median of {args.repeats}"
    )
    print(f"float32 matmul rate: {matmul_rate(device):.1f} GFLOP/s")
    print(
        f"{'method':14s} {'structure':9s} {'params':>9s} {'ours ms':>9s} {'naive ms':>9s} "
        f"{'speed-up':>8s} {'ours, no div':>12s} {'schedule speed-up':>17s}"
    )
    for row in rows:
        label, method, layers, hidden = CONFIGS[row - 1]
        config = preset(method, "srb", layers=layers, hidden=hidden)
        ours = build_network(config, 3).to(device)
        naive = NaiveNet(config.neuron, layers, hidden).to(device)
        opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-4)
        opt_naive = torch.optim.Adam(naive.parameters(), lr=1e-4)
        gen = torch.Generator().manual_seed(0)
        x_m = (torch.rand(1, args.points, 3, generator=gen) * 2 - 1).to(device)
        x_o = (torch.rand(1, args.points, 3, generator=gen) * 2 - 1).to(device)
        our_step(ours, opt_ours, x_m, x_o, config)  # warm-up
        naive_step(naive, opt_naive, x_m, x_o, config.div)
        t_ours, t_naive, t_nodiv = [], [], []
        for _ in range(args.repeats):  # interleaved: all see the same machine load
            for fn, fn_args, out in (
                (our_step, (ours, opt_ours, x_m, x_o, config), t_ours),
                (naive_step, (naive, opt_naive, x_m, x_o, config.div), t_naive),
                (our_step, (ours, opt_ours, x_m, x_o, config, False), t_nodiv),
            ):
                sync(device)
                start = time.perf_counter()
                fn(*fn_args)
                sync(device)
                out.append(1000 * (time.perf_counter() - start))
        m_ours, m_naive = statistics.median(t_ours), statistics.median(t_naive)
        m_nodiv = statistics.median(t_nodiv)
        averaged = 0.4 * m_ours + 0.6 * m_nodiv
        print(
            f"{label:14s} {config.structure:9s} {ours.n_params_per_shape():9,d} {m_ours:9.1f} "
            f"{m_naive:9.1f} {m_naive / m_ours:7.2f}x {m_nodiv:12.1f} {m_naive / averaged:16.2f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
