"""The training loop of SPEC 3 for K shapes at once, with checkpoints, resume and logs.

Each shape has its own sampling generator, its own gradient clipping and its own divergence
status, so training K shapes together gives the same weights as K separate runs. A shape whose
loss or gradients turn non-finite is frozen at its last finite weights; the others go on.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from tqdm.auto import tqdm

from steik import derivatives
from steik.errors import SteikError
from steik.fileio import array_digest, atomic_path
from steik.losses import (
    WeightSchedule,
    directional_divergence,
    divergence_term,
    eikonal_term,
    full_divergence,
    inter_term,
    normal_term,
    sdf_term,
)
from steik.methods import MethodConfig
from steik.nn import SDFNetwork
from steik.provenance import steik_version, torch_version

log = logging.getLogger(__name__)

MODEL_FORMAT = "steik-model/1"
CHECKPOINT_FORMAT = "steik-checkpoint/1"
LOG_COLUMNS = (
    "iteration",
    "loss",
    "sdf",
    "inter",
    "normal",
    "eikonal",
    "div",
    "w_sdf",
    "w_inter",
    "w_normal",
    "w_eikonal",
    "w_div",
    "lr",
    "seconds",
)
TERMS = ("sdf", "inter", "normal", "eikonal", "div")


@dataclass
class ShapeInput:
    """One shape's training data, read from a sample file."""

    name: str
    points: np.ndarray
    """`[N, d]` float32, normalised scan."""
    normals: np.ndarray | None
    center: list[float]
    scale: float
    digest: str
    source: str


@dataclass
class ShapeState:
    """What the loop tracks per shape besides the network and optimiser slices."""

    generator: torch.Generator
    log_rows: list[dict[str, float]] = field(default_factory=list)
    alive: bool = True
    diverged_at: int | None = None
    last_finite_loss: float = math.nan
    frozen: dict[str, Tensor] | None = None


def read_shape(path: str | Path) -> ShapeInput:
    """Read the training points of one sample file, refusing what no run could use."""
    path = Path(path)
    if not path.is_file():
        raise SteikError(f"{path}: no such file; create it with `steik sample` or check the path")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except Exception as error:  # numpy raises many types for corrupt archives
        raise SteikError(
            f"{path}: not a readable .npz sample file ({error}); re-create it"
        ) from None
    if "points" not in arrays:
        raise SteikError(
            f"{path}: has no 'points' array (keys: {sorted(arrays)}); "
            "re-create it with `steik sample`"
        )
    points = np.asarray(arrays["points"])
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise SteikError(f"{path}: 'points' must be [N, 2] or [N, 3], got shape {points.shape}")
    if points.shape[0] == 0:
        raise SteikError(f"{path}: 'points' holds zero points; the scan is empty")
    if not np.isfinite(points).all():
        bad = int((~np.isfinite(points)).any(axis=1).sum())
        raise SteikError(
            f"{path}: {bad} point(s) have non-finite coordinates; clean the scan and re-sample"
        )
    normals = arrays.get("normals")
    if normals is not None and normals.shape != points.shape:
        raise SteikError(
            f"{path}: 'normals' shape {normals.shape} does not match points {points.shape}"
        )
    d = points.shape[1]
    center = arrays.get("center", np.zeros(d))
    scale = float(arrays.get("scale", 1.0))
    return ShapeInput(
        name=path.stem,
        points=points.astype(np.float32),
        normals=None if normals is None else normals.astype(np.float32),
        center=[float(v) for v in np.asarray(center).reshape(-1)],
        scale=scale,
        digest=array_digest(points),
        source=str(path),
    )


def build_network(
    config: MethodConfig, dim: int, n_shapes: int = 1, seeds: Sequence[int] | None = None
) -> SDFNetwork:
    """The network a configuration describes, for `n_shapes` shapes."""
    return SDFNetwork(
        in_dim=dim,
        hidden=config.hidden,
        layers=config.layers,
        neuron=config.neuron,
        activation=config.activation,
        init=config.init,
        sphere=config.sphere,
        n_shapes=n_shapes,
        seeds=seeds,
    )


def loss_terms(
    net: SDFNetwork,
    x_manifold: Tensor,
    x_off: Tensor,
    normals: Tensor | None,
    config: MethodConfig,
    with_div: bool = True,
) -> dict[str, Tensor]:
    """Every loss term of SPEC 3, one value per shape (`[K]` each).

    `x_manifold [K, Nm, d]` and `x_off [K, No, d]` are separate leaves so that the divergence's
    extra backward pass runs through the off-surface forward only. With `with_div` false (its
    weight has decayed to zero) the divergence is not evaluated and reported as NaN.
    """
    x_m = x_manifold.requires_grad_(True)
    x_o = x_off.requires_grad_(True)
    u_m, u_o = net(x_m), net(x_o)
    g_m, g_o = torch.autograd.grad((u_m.sum(), u_o.sum()), (x_m, x_o), create_graph=True)
    zero = torch.zeros(u_m.shape[0], dtype=u_m.dtype, device=u_m.device)
    terms = {
        "sdf": sdf_term(u_m),
        "inter": inter_term(u_o) if config.w_inter else zero,
        "eikonal": eikonal_term(torch.cat([g_m, g_o], dim=1)),
        "normal": normal_term(g_m, normals) if config.use_normals and normals is not None else zero,
        "div": torch.full_like(zero, math.nan),
    }
    if config.div != "none" and with_div:
        divergence = directional_divergence if config.div == "directional" else full_divergence
        terms["div"] = divergence_term(divergence(x_o, g_o), config.div, config.div_norm)
    return terms


def training_terms(
    net: SDFNetwork,
    x_manifold: Tensor,
    x_off: Tensor,
    normals: Tensor | None,
    config: MethodConfig,
    with_div: bool = True,
) -> dict[str, Tensor]:
    """`loss_terms` as a training step computes them: by explicit derivatives
    (`steik.derivatives`, no double backward) for the networks that module covers, by autograd
    for any other network. Both give the same numbers."""
    if derivatives.uses_explicit(net):
        return derivatives.explicit_loss_terms(net, x_manifold, x_off, normals, config, with_div)
    return loss_terms(net, x_manifold, x_off, normals, config, with_div)


class Trainer:
    """Train K shapes with one configuration; write `<out>/<shape>/model.pt` for each.

    The public entry point is `train(...)`; this class keeps the per-run state that checkpoints
    and resume need.
    """

    def __init__(
        self,
        shapes: Sequence[ShapeInput],
        config: MethodConfig,
        out_dir: Path,
        seed: int = 0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        quiet: bool = False,
    ) -> None:
        if not shapes:
            raise SteikError("no input shapes given; pass at least one sample file with --points")
        dims = {s.points.shape[1] for s in shapes}
        if len(dims) > 1:
            listing = ", ".join(f"{s.source} ({s.points.shape[1]}D)" for s in shapes)
            raise SteikError(
                f"inputs mix 2D and 3D points ({listing}); train them in separate runs"
            )
        names = [s.name for s in shapes]
        if len(set(names)) != len(names):
            raise SteikError(f"two inputs share a shape name ({names}); file stems must differ")
        if config.use_normals and any(s.normals is None for s in shapes):
            missing = [s.source for s in shapes if s.normals is None]
            raise SteikError(f"use_normals is set but {missing} have no 'normals'; unset it")
        self.shapes, self.config, self.out_dir = list(shapes), config, Path(out_dir)
        self.seed, self.device, self.dtype, self.quiet = (
            int(seed),
            torch.device(device),
            dtype,
            quiet,
        )
        self.dim = dims.pop()
        self.K = len(shapes)
        self.net = build_network(config, self.dim, self.K, [self.seed] * self.K).to(
            self.device, dtype
        )
        self.params = dict(self.net.named_parameters())
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=(0.9, 0.999))
        self.schedule = WeightSchedule.from_knots(config.schedule, config.schedule_knots)
        self.points = [torch.from_numpy(s.points).to(self.device, dtype) for s in shapes]
        self.normals = [
            None if s.normals is None else torch.from_numpy(s.normals).to(self.device, dtype)
            for s in shapes
        ]
        self.states = [
            ShapeState(generator=torch.Generator().manual_seed(self.seed + 1)) for _ in shapes
        ]
        self.iteration = 0
        self.elapsed = 0.0
        self.step_seconds: list[float] = []
        """Seconds of each iteration that evaluated every term of the method (Table 3's timing)."""
        self._warned_small = False

    # -- paths -----------------------------------------------------------------------------
    def shape_dir(self, k: int) -> Path:
        return self.out_dir / self.shapes[k].name

    def checkpoint_path(self, k: int) -> Path:
        return self.shape_dir(k) / "checkpoint.pt"

    # -- one iteration ---------------------------------------------------------------------
    def _sample(self) -> tuple[Tensor, Tensor, Tensor | None]:
        """Manifold points `[K, Nm, d]` (without replacement when the scan is large enough),
        uniform off-surface points `[K, No, d]`, and the normals at the manifold points."""
        nm, no, ext = (
            self.config.n_manifold,
            self.config.n_offsurface,
            self.config.offsurface_extent,
        )
        xm, xo, nrm = [], [], []
        for k, state in enumerate(self.states):
            n = self.points[k].shape[0]
            if n >= nm:
                idx = torch.randperm(n, generator=state.generator)[:nm]
            else:
                if not self._warned_small:
                    warnings.warn(
                        f"{self.shapes[k].source}: {n} points < {nm} per iteration; sampling "
                        "with replacement",
                        stacklevel=2,
                    )
                    self._warned_small = True
                idx = torch.randint(n, (nm,), generator=state.generator)
            off = (
                torch.rand(no, self.dim, generator=state.generator, dtype=torch.float64) * 2 - 1
            ) * ext
            idx = idx.to(self.device)
            xm.append(self.points[k][idx])
            xo.append(off.to(self.device, self.dtype))
            if self.normals[k] is not None:
                nrm.append(self.normals[k][idx])
        normals = torch.stack(nrm) if len(nrm) == self.K else None
        return torch.stack(xm), torch.stack(xo), normals

    def weights(self, iteration: int) -> dict[str, float]:
        c = self.config
        return {
            "sdf": c.w_sdf,
            "inter": c.w_inter,
            "normal": c.w_normal,
            "eikonal": c.w_eikonal,
            "div": self.schedule(iteration / c.iterations) if c.div != "none" else 0.0,
        }

    def step(self) -> tuple[Tensor, dict[str, Tensor], dict[str, float]]:
        """One optimisation step for all K shapes; returns per-shape losses `[K]` and terms.

        The divergence is skipped while its weight is zero (the last 60% of SPEC's schedules), as
        the reference code's loss skips it too.
        """
        weights = self.weights(self.iteration)
        x_m, x_o, normals = self._sample()
        with_div = weights["div"] != 0.0
        terms = training_terms(self.net, x_m, x_o, normals, self.config, with_div)
        loss = sum(weights[name] * terms[name] for name in TERMS if name != "div" or with_div)
        alive = torch.tensor([s.alive for s in self.states], device=self.device)
        self.optimizer.zero_grad(set_to_none=False)
        torch.where(alive, loss, torch.zeros_like(loss)).sum().backward()
        grad_sq = sum(p.grad.reshape(self.K, -1).square().sum(dim=1) for p in self.params.values())
        finite = torch.isfinite(loss) & torch.isfinite(grad_sq)
        self._freeze_diverged(finite.cpu(), loss.detach().cpu())
        alive = torch.tensor([s.alive for s in self.states], device=self.device)
        scale = torch.ones_like(grad_sq)
        if self.config.grad_clip > 0:
            # Per-shape version of torch.nn.utils.clip_grad_norm_: shapes never share a norm.
            scale = (self.config.grad_clip / (grad_sq.sqrt() + 1e-6)).clamp(max=1.0)
        scale = torch.where(alive, scale, torch.zeros_like(scale))
        for p in self.params.values():
            p.grad.mul_(scale.view(-1, *[1] * (p.dim() - 1)))
            p.grad.nan_to_num_(0.0, 0.0, 0.0)
        self.optimizer.step()
        self._restore_frozen()
        return loss.detach(), {k: v.detach() for k, v in terms.items()}, weights

    def _freeze_diverged(self, finite: Tensor, loss: Tensor) -> None:
        for k, state in enumerate(self.states):
            if not state.alive:
                continue
            if bool(finite[k]):
                state.last_finite_loss = float(loss[k])
                continue
            state.alive = False
            state.diverged_at = self.iteration
            state.frozen = self.net.shape_state(k)
            log.warning(
                "%s diverged at iteration %d (last finite loss %.6g); its weights are frozen",
                self.shapes[k].name,
                self.iteration,
                state.last_finite_loss,
            )
            if not self.quiet:
                tqdm.write(
                    f"steik train: {self.shapes[k].name} diverged at iteration {self.iteration} "
                    f"(last finite loss {state.last_finite_loss:.6g}); frozen, the others go on",
                    file=sys.stderr,
                )

    @torch.no_grad()
    def _restore_frozen(self) -> None:
        for k, state in enumerate(self.states):
            if state.frozen is None:
                continue
            self.net.load_shape_state(k, state.frozen)
            for p in self.params.values():
                for value in self.optimizer.state.get(p, {}).values():
                    if torch.is_tensor(value) and value.dim() > 0:
                        value[k].zero_()

    def _log(self, loss: Tensor, terms: dict[str, Tensor], weights: dict[str, float]) -> None:
        loss_cpu = loss.cpu()
        terms_cpu = {name: value.cpu() for name, value in terms.items()}
        for k, state in enumerate(self.states):
            if not state.alive and state.diverged_at != self.iteration:
                continue
            row: dict[str, float] = {"iteration": self.iteration, "loss": float(loss_cpu[k])}
            row.update({name: float(terms_cpu[name][k]) for name in TERMS})
            row.update({f"w_{name}": float(weights[name]) for name in TERMS})
            row.update({"lr": self.config.lr, "seconds": self.elapsed})
            state.log_rows.append(row)

    # -- run -------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Train to `config.iterations`; write checkpoints, logs and models. Returns each
        shape's model metadata."""
        c = self.config
        show = not self.quiet and sys.stderr.isatty()
        # In a log file (a workflow job) a plain line every 5% replaces the progress bar.
        plain_every = 0 if self.quiet or show else max(1, c.iterations // 20)
        first, started = self.iteration, time.perf_counter()
        bar = tqdm(
            total=c.iterations,
            initial=self.iteration,
            disable=not show,
            desc="train",
            unit="it",
            dynamic_ncols=True,
        )
        while self.iteration < c.iterations and any(s.alive for s in self.states):
            start = time.perf_counter()
            loss, terms, weights = self.step()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - start
            self.elapsed += seconds
            if weights["div"] != 0.0 or c.div == "none":
                self.step_seconds.append(seconds)
            last = self.iteration == c.iterations - 1
            if self.iteration % c.log_every == 0 or last:
                self._log(loss, terms, weights)
            self.iteration += 1
            bar.update(1)
            report = (show and self.iteration % 10 == 0) or (
                plain_every
                and (self.iteration % plain_every == 0 or self.iteration == c.iterations)
            )
            if report:
                alive = [float(v) for v, s in zip(loss.cpu(), self.states, strict=True) if s.alive]
                text = f"{np.mean(alive):.4g}" if alive else "-"
                if show:
                    bar.set_postfix(loss=text)
                else:
                    rate = (self.iteration - first) / (time.perf_counter() - started)
                    print(
                        f"train: iteration {self.iteration}/{c.iterations} "
                        f"({100 * self.iteration / c.iterations:.0f}%), loss {text}, "
                        f"{rate:.2f} it/s",
                        file=sys.stderr,
                        flush=True,
                    )
            if c.checkpoint_every and self.iteration % c.checkpoint_every == 0 and not last:
                self.save_checkpoints()
        bar.close()
        return self.save_models()

    # -- checkpoints -----------------------------------------------------------------------
    def _identity(self, k: int) -> dict[str, Any]:
        return {
            "config": self.config.as_dict(),
            "config_digest": self.config.digest(),
            "seed": self.seed,
            "points_digest": self.shapes[k].digest,
        }

    def save_checkpoints(self) -> None:
        """Write one checkpoint per shape (its slice of the weights and of Adam's state)."""
        for k, state in enumerate(self.states):
            adam: dict[str, dict[str, Tensor]] = {}
            step = 0.0
            for name, p in self.params.items():
                s = self.optimizer.state.get(p, {})
                if s:
                    step = float(s["step"])
                    adam[name] = {
                        "exp_avg": s["exp_avg"][k : k + 1].detach().cpu().clone(),
                        "exp_avg_sq": s["exp_avg_sq"][k : k + 1].detach().cpu().clone(),
                    }
            payload = {
                "format": CHECKPOINT_FORMAT,
                **self._identity(k),
                "iteration": self.iteration,
                "network": {n: t.cpu() for n, t in self.net.shape_state(k).items()},
                "adam": adam,
                "adam_step": step,
                "generator": state.generator.get_state(),
                "log": state.log_rows,
                "alive": state.alive,
                "diverged_at": state.diverged_at,
                "last_finite_loss": state.last_finite_loss,
                "frozen": None
                if state.frozen is None
                else {n: t.cpu() for n, t in state.frozen.items()},
                "elapsed": self.elapsed,
                "step_seconds": self.step_seconds,
            }
            with atomic_path(self.checkpoint_path(k)) as tmp:
                torch.save(payload, tmp)

    def resume(self) -> None:
        """Continue from every shape's checkpoint; all must exist and match this run."""
        payloads = []
        for k in range(self.K):
            path = self.checkpoint_path(k)
            if not path.is_file():
                raise SteikError(
                    f"--resume: no checkpoint at {path}; run without --resume to start from scratch"
                )
            try:
                payload = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as error:
                raise SteikError(
                    f"{path}: unreadable checkpoint ({error}); delete it and rerun"
                ) from None
            if payload.get("format") != CHECKPOINT_FORMAT:
                raise SteikError(f"{path}: not a steik checkpoint; delete it and rerun")
            expected = self._identity(k)
            for key in ("config_digest", "seed", "points_digest"):
                if payload.get(key) != expected[key]:
                    raise SteikError(
                        f"{path}: checkpoint is from another configuration ({key} differs: "
                        f"{payload.get(key)!r} vs {expected[key]!r}); delete it or rerun without "
                        "--resume"
                    )
            payloads.append(payload)
        iterations = {p["iteration"] for p in payloads}
        if len(iterations) != 1:
            raise SteikError(
                f"checkpoints of this batch stopped at different iterations {sorted(iterations)}; "
                f"delete them ({self.out_dir}/*/checkpoint.pt) and rerun"
            )
        with torch.no_grad():
            for k, payload in enumerate(payloads):
                self.net.load_shape_state(
                    k, {n: t.to(self.device) for n, t in payload["network"].items()}
                )
                state = self.states[k]
                state.generator.set_state(payload["generator"])
                state.log_rows = list(payload["log"])
                state.alive = payload["alive"]
                state.diverged_at = payload["diverged_at"]
                state.last_finite_loss = payload["last_finite_loss"]
                if payload["frozen"] is not None:
                    state.frozen = {n: t.to(self.device) for n, t in payload["frozen"].items()}
            first = payloads[0]
            if first["adam"]:
                for name, p in self.params.items():
                    self.optimizer.state[p] = {
                        "step": torch.tensor(first["adam_step"], dtype=torch.float32),
                        "exp_avg": torch.cat([q["adam"][name]["exp_avg"] for q in payloads]).to(p),
                        "exp_avg_sq": torch.cat(
                            [q["adam"][name]["exp_avg_sq"] for q in payloads]
                        ).to(p),
                    }
        self.iteration = int(first["iteration"])
        self.elapsed = float(first["elapsed"])
        self.step_seconds = list(first["step_seconds"])

    # -- outputs ---------------------------------------------------------------------------
    def save_models(self) -> list[dict[str, Any]]:
        """Write each shape's `model.pt` and `train_log.parquet`, then drop its checkpoint."""
        ms = 1000.0 * float(np.median(self.step_seconds)) if self.step_seconds else math.nan
        metas = []
        for k, (shape, state) in enumerate(zip(self.shapes, self.states, strict=True)):
            if state.alive:
                status, message = "ok", ""
            else:
                status = "diverged"
                message = (
                    f"loss or gradients non-finite at iteration {state.diverged_at} (last finite "
                    f"loss {state.last_finite_loss:.6g}); weights frozen there"
                )
            meta = {
                "format": MODEL_FORMAT,
                "config": self.config.as_dict(),
                "config_hash": self.config.digest(),
                "shape": shape.name,
                "dim": self.dim,
                "points_digest": shape.digest,
                "center": shape.center,
                "scale": shape.scale,
                "seed": self.seed,
                "iterations": self.iteration,
                "status": status,
                "message": message,
                "train_seconds": self.elapsed,
                "ms_per_iter": ms,
                "n_params": self.net.n_params_per_shape(),
                "device": str(self.device),
                "torch_version": torch_version(),
                "steik_version": steik_version(),
                "n_shapes_batch": self.K,
            }
            state_dict = {
                n: t.detach().to("cpu", torch.float32) for n, t in self.net.shape_state(k).items()
            }
            shape_dir = self.shape_dir(k)
            rows = pd.DataFrame(state.log_rows, columns=list(LOG_COLUMNS))
            with atomic_path(shape_dir / "train_log.parquet") as tmp:
                rows.to_parquet(tmp, index=False)
            with atomic_path(shape_dir / "model.pt") as tmp:
                torch.save({**meta, "state_dict": state_dict}, tmp)
            self.checkpoint_path(k).unlink(missing_ok=True)
            metas.append(meta)
        return metas


def train(
    sample_paths: Sequence[str | Path],
    config: MethodConfig,
    out_dir: str | Path,
    seed: int = 0,
    device: torch.device | str = "cpu",
    resume: bool = False,
    quiet: bool = False,
    dtype: torch.dtype = torch.float32,
) -> list[dict[str, Any]]:
    """Train every sample file's shape with `config`, together as one K-batch.

    Writes `<out_dir>/<stem>/model.pt` and `train_log.parquet` per input and returns their
    metadata. With `resume`, continues from the checkpoints a previous run left.
    """
    shapes = [read_shape(p) for p in sample_paths]
    trainer = Trainer(shapes, config, Path(out_dir), seed, device, dtype, quiet)
    if resume:
        trainer.resume()
    return trainer.run()


def load_model(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[SDFNetwork, dict[str, Any]]:
    """Rebuild exactly the trained network of a `model.pt` (K = 1, eval mode) and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise SteikError(f"{path}: no such model file; train it first (`steik train`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise SteikError(f"{path}: unreadable model file ({error}); retrain it") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise SteikError(
            f"{path}: not a steik model file (format {MODEL_FORMAT} expected); retrain it"
        )
    from steik.methods import MethodConfig as Config

    names = {f.name for f in dataclasses.fields(Config)}
    fields = {k: v for k, v in payload["config"].items() if k in names}
    fields["schedule_knots"] = tuple(fields.get("schedule_knots", ()))
    fields["notes"] = tuple(fields.get("notes", ()))
    config = Config(**fields)
    net = build_network(config, int(payload["dim"]), 1)
    net.load_state_dict(payload.pop("state_dict"))
    net.to(device).eval()
    return net, payload
