"""The training loop of SPEC 3 for K shapes at once.

Each shape has its own sampling generator, its own gradient clipping and its own divergence
status, so training K shapes together gives the same weights as K separate runs. The loop itself
is small: `Trainer.step` is one optimisation step; a `steik.guard.DivergenceGuard` freezes a
shape whose loss or gradients turn non-finite at its last finite weights while the others go
on; everything else happens in hooks called around the steps (`steik.hooks`: progress,
checkpoints, snapshots), and the outputs (`model.pt`, `train_log.parquet` per shape, optionally
a batch record) are written once at the end. What is optimised comes from the method's
objective (`steik.objectives`), on the derivative path of its `step` field
(`steik.derivatives`), which every model file records.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from steik import checkpoint as ckpt
from steik.data.sample import Sample, load_sample
from steik.derivatives import resolve_step
from steik.errors import SteikError
from steik.fileio import array_digest, atomic_path, remove_stale_temporaries, write_json
from steik.guard import DivergenceGuard
from steik.methods import MethodConfig, learning_rate
from steik.model import ModelRecord, build_network, save_model
from steik.objectives import objective_for
from steik.provenance import steik_version, torch_version

log = logging.getLogger(__name__)

Resume = Literal["never", "always", "if_compatible"]
"""What to do with an existing checkpoint: ignore it, resume or fail, resume when it fits."""
RECORD_FORMAT = "steik-batch/1"


@dataclass(frozen=True)
class TrainingShape:
    """One shape to train: its sample and the name of its output folder (the file's stem)."""

    name: str
    sample: Sample
    path: Path
    digest: str
    """`array_digest` of the training points (recorded in the model file)."""


def read_shape(path: str | Path) -> TrainingShape:
    """A sample file as a training input (checked by `load_sample`)."""
    sample = load_sample(path)
    return TrainingShape(Path(path).stem, sample, Path(path), array_digest(sample.points))


@dataclass
class StepResult:
    """What one optimisation step reports: per-shape losses and terms `[K]`, the weights used,
    and its wall time."""

    loss: Tensor
    terms: dict[str, Tensor]
    weights: dict[str, float]
    seconds: float = 0.0


class Hook:
    """Something that happens around the training steps; every method may be left out.

    `before_step` sees the network after `trainer.iteration` optimisation steps (also once more
    when training ends, with `trainer.iteration == iterations`); `after_step` runs once the
    iteration counter has moved on.
    """

    def on_start(self, trainer: Trainer) -> None: ...

    def before_step(self, trainer: Trainer) -> None: ...

    def after_step(self, trainer: Trainer, result: StepResult) -> None: ...

    def on_end(self, trainer: Trainer) -> None: ...


class Trainer:
    """Train K shapes with one configuration; write `<out>/<shape>/model.pt` for each."""

    def __init__(
        self,
        shapes: Sequence[TrainingShape],
        config: MethodConfig,
        out_dir: str | Path,
        seed: int = 0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        hooks: Sequence[Hook] = (),
        checkpoint: str | Path | None = None,
    ) -> None:
        if not shapes:
            raise SteikError("no input shapes given; pass at least one sample file with --points")
        dims = {s.sample.dim for s in shapes}
        if len(dims) > 1:
            listing = ", ".join(f"{s.path} ({s.sample.dim}D)" for s in shapes)
            raise SteikError(
                f"inputs mix 2D and 3D points ({listing}); train them in separate runs"
            )
        names = [s.name for s in shapes]
        if len(set(names)) != len(names):
            raise SteikError(f"two inputs share a shape name ({names}); file stems must differ")
        if config.use_normals and any(s.sample.normals is None for s in shapes):
            missing = [str(s.path) for s in shapes if s.sample.normals is None]
            raise SteikError(f"use_normals is set but {missing} have no 'normals'; unset it")
        self.shapes, self.config, self.out_dir = list(shapes), config, Path(out_dir)
        self.seed, self.device, self.dtype = int(seed), torch.device(device), dtype
        self.dim, self.K = dims.pop(), len(shapes)
        self.hooks = list(hooks)
        self.checkpoint_path = (
            Path(checkpoint) if checkpoint else default_checkpoint(self.out_dir, names)
        )
        self.net = build_network(config, self.dim, self.K, [self.seed] * self.K).to(device, dtype)
        resolve_step(config, self.net)  # a step path this network cannot take fails here
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr, betas=(0.9, 0.999))
        self.objective = objective_for(config)
        self.data = [self._shape_data(s) for s in shapes]
        self.generators = [torch.Generator().manual_seed(self.seed + 1) for _ in shapes]
        self.guard = DivergenceGuard(names)
        self.log_rows: list[list[dict[str, float]]] = [[] for _ in shapes]
        self.iteration = 0
        self.elapsed = 0.0
        self.step_seconds: list[float] = []
        """Seconds of each iteration that evaluated every term of the method (Table 3's timing)."""

    def _shape_data(self, shape: TrainingShape) -> dict[str, Tensor]:
        """One shape's training arrays on the device: points, normals, the objective's extras."""
        sample = shape.sample
        arrays = {"points": np.asarray(sample.points, dtype=np.float32)}
        if sample.normals is not None:
            arrays["normals"] = np.asarray(sample.normals, dtype=np.float32)
        arrays.update(
            self.objective.prepare(arrays["points"], arrays.get("normals"), seed=self.seed)
        )
        return {
            k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device, self.dtype)
            if np.issubdtype(np.asarray(v).dtype, np.floating)
            else torch.from_numpy(np.ascontiguousarray(v)).to(self.device)
            for k, v in arrays.items()
        }

    def shape_dir(self, k: int) -> Path:
        return self.out_dir / self.shapes[k].name

    @property
    def finished(self) -> bool:
        return self.iteration >= self.config.iterations or not any(self.guard.alive)

    @property
    def step_path(self) -> str:
        """The derivative path the steps take (`explicit`, `compiled` or `autograd`: the
        method's `step` resolved for this network by `steik.derivatives.resolve_step`)."""
        return resolve_step(self.config, self.net)

    # -- one iteration ---------------------------------------------------------------------
    def _sample(self) -> dict[str, Tensor]:
        """Every shape's points for this iteration, stacked: `[K, n, ...]` per key."""
        per_shape = [
            self.objective.sample(d, g) for d, g in zip(self.data, self.generators, strict=True)
        ]
        keys = set.intersection(*(set(s) for s in per_shape))
        return {
            key: torch.stack([s[key] for s in per_shape]) for key in per_shape[0] if key in keys
        }

    def step(self) -> StepResult:
        """One optimisation step for all K shapes.

        The divergence is skipped while its weight is zero (the last 60% of SPEC's schedules),
        as the reference code does.
        """
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, self.iteration)
        weights = self.objective.weights(self.iteration / self.config.iterations)
        with_div = weights.get("div", 0.0) != 0.0
        terms = self.objective.loss_terms(self.net, self._sample(), with_div)
        loss = sum(weights[name] * terms[name] for name in terms if name != "div" or with_div)
        self.optimizer.zero_grad(set_to_none=False)
        alive = self.guard.mask(self.device)
        torch.where(alive, loss, torch.zeros_like(loss)).sum().backward()
        params = list(self.net.parameters())
        grad_sq = sum(p.grad.reshape(self.K, -1).square().sum(dim=1) for p in params)
        self.guard.check(self.iteration, loss, grad_sq, self.net)
        alive = self.guard.mask(self.device)
        scale = torch.ones_like(grad_sq)
        if self.config.grad_clip > 0:
            # Per-shape version of torch.nn.utils.clip_grad_norm_: shapes never share a norm.
            scale = (self.config.grad_clip / (grad_sq.sqrt() + 1e-6)).clamp(max=1.0)
        scale = torch.where(alive, scale, torch.zeros_like(scale))
        for p in params:
            p.grad.mul_(scale.view(-1, *[1] * (p.dim() - 1)))
            p.grad.nan_to_num_(0.0, 0.0, 0.0)
        self.optimizer.step()
        self.guard.restore(self.net, self.optimizer)
        return StepResult(loss.detach(), {k: v.detach() for k, v in terms.items()}, weights)

    def _record(self, result: StepResult) -> None:
        """Append one log row per shape that was training in this step."""
        loss = result.loss.cpu()
        terms = {name: value.cpu() for name, value in result.terms.items()}
        for k in range(self.K):
            if not self.guard.alive[k] and self.guard.diverged_at[k] != self.iteration:
                continue
            row: dict[str, float] = {"iteration": self.iteration, "loss": float(loss[k])}
            row.update({name: float(terms[name][k]) for name in self.objective.terms})
            row.update({f"w_{name}": float(result.weights[name]) for name in self.objective.terms})
            row.update({"lr": self.optimizer.param_groups[0]["lr"], "seconds": self.elapsed})
            self.log_rows[k].append(row)

    # -- run -------------------------------------------------------------------------------
    def run(self, record: str | Path | None = None) -> list[ModelRecord]:
        """Train to `config.iterations`, then write every shape's model and log (and the batch
        `record`, when given) and remove the checkpoint. Returns each shape's model metadata."""
        c = self.config
        for hook in self.hooks:
            hook.on_start(self)
        while not self.finished:
            for hook in self.hooks:
                hook.before_step(self)
            start = time.perf_counter()
            result = self.step()
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            result.seconds = time.perf_counter() - start
            self.elapsed += result.seconds
            if result.weights.get("div", 0.0) != 0.0 or c.div == "none":
                self.step_seconds.append(result.seconds)
            if self.iteration % c.log_every == 0 or self.iteration == c.iterations - 1:
                self._record(result)
            self.iteration += 1
            for hook in self.hooks:
                hook.after_step(self, result)
        for hook in self.hooks:
            hook.before_step(self)
            hook.on_end(self)
        # A kill while the outputs are written resumes here, without training again.
        self.save_checkpoint()
        metas = self.save_models()
        if record is not None:
            self.write_record(record, metas)
        self.checkpoint_path.unlink(missing_ok=True)
        return metas

    # -- checkpoints -----------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What a checkpoint of this run must match to be resumed from."""
        return {
            "config_digest": self.config.digest(),
            "seed": self.seed,
            "shapes": [s.name for s in self.shapes],
            "points_digests": [s.digest for s in self.shapes],
        }

    def save_checkpoint(self) -> None:
        """The whole batch's state in one file that replaces the previous checkpoint atomically."""
        state = {
            "iteration": self.iteration,
            "elapsed": self.elapsed,
            "step_seconds": list(self.step_seconds),
            "network": {n: t.detach().cpu() for n, t in self.net.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "generators": [g.get_state() for g in self.generators],
            "log_rows": self.log_rows,
            "guard": self.guard.state_dict(),
        }
        ckpt.save_checkpoint(self.checkpoint_path, self.identity(), state)

    def resume(self, policy: Resume = "always") -> bool:
        """Continue from the checkpoint when there is one (`policy`: `always` fails on a
        checkpoint of another run, `if_compatible` sets it aside and starts from scratch).
        Returns whether training continues from a checkpoint."""
        self._remove_stale_temporaries()
        path = self.checkpoint_path
        if policy == "never" or not path.is_file():
            if policy == "always" and not path.is_file():
                raise SteikError(
                    f"--resume: no checkpoint at {path}; run without --resume to start from scratch"
                )
            return False
        try:
            payload = ckpt.load_checkpoint(path)
            problem = ckpt.mismatch(payload, self.identity())
        except SteikError as error:
            if policy == "always":
                raise
            ckpt.set_aside(path, str(error))
            return False
        if problem is not None:
            if policy == "always":
                raise SteikError(
                    f"{path}: checkpoint is from another run ({problem}); delete it or train "
                    "without --resume"
                )
            ckpt.set_aside(path, problem)
            return False
        self._load_state(payload["state"])
        log.info("resuming from %s at iteration %d", path, self.iteration)
        return True

    def _load_state(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict({n: t.to(self.device) for n, t in state["network"].items()})
        self.optimizer.load_state_dict(state["optimizer"])
        for generator, saved in zip(self.generators, state["generators"], strict=True):
            generator.set_state(saved)
        self.log_rows = [list(rows) for rows in state["log_rows"]]
        self.guard.load_state_dict(state["guard"], self.device)
        self.iteration = int(state["iteration"])
        self.elapsed = float(state["elapsed"])
        self.step_seconds = list(state["step_seconds"])

    def _remove_stale_temporaries(self) -> None:
        """Temporary files a killed run left beside the outputs (atomic writes never finished)."""
        remove_stale_temporaries(self.checkpoint_path)
        for k in range(self.K):
            for name in ("model.pt", "train_log.parquet", "snapshots.pt"):
                remove_stale_temporaries(self.shape_dir(k) / name)

    # -- outputs ---------------------------------------------------------------------------
    def model_meta(self, k: int) -> ModelRecord:
        """Model-file record of shape k."""
        shape = self.shapes[k]
        ms = 1000.0 * float(np.median(self.step_seconds)) if self.step_seconds else math.nan
        return ModelRecord(
            config=self.config,
            config_hash=self.config.digest(),
            shape=shape.name,
            dim=self.dim,
            points_digest=shape.digest,
            center=tuple(float(v) for v in np.asarray(shape.sample.center).reshape(-1)),
            scale=float(shape.sample.scale),
            seed=self.seed,
            iterations=self.iteration,
            status="ok" if self.guard.alive[k] else "diverged",
            message=self.guard.message(k),
            train_seconds=self.elapsed,
            ms_per_iter=ms,
            n_params=self.net.n_params_per_shape(),
            device=str(self.device),
            step=self.step_path,
            torch_version=torch_version(),
            steik_version=steik_version(),
            n_shapes_batch=self.K,
        )

    def save_models(self) -> list[ModelRecord]:
        """Write each shape's `model.pt` and `train_log.parquet` (each file atomically)."""
        metas = []
        columns = [
            "iteration",
            "loss",
            *self.objective.terms,
            *(f"w_{t}" for t in self.objective.terms),
            "lr",
            "seconds",
        ]
        for k in range(self.K):
            meta = self.model_meta(k)
            rows = pd.DataFrame(self.log_rows[k], columns=columns)
            with atomic_path(self.shape_dir(k) / "train_log.parquet") as tmp:
                rows.to_parquet(tmp, index=False)
            save_model(self.shape_dir(k) / "model.pt", meta, self.net.shape_state(k))
            metas.append(meta)
        return metas

    def write_record(self, path: str | Path, metas: Sequence[ModelRecord]) -> Path:
        """The batch record (JSON): which shapes trained together, where their models are, how
        each ended. Written last, so its presence means every model of the batch is complete."""
        record = {
            "format": RECORD_FORMAT,
            "method": self.config.name,
            "config_hash": self.config.digest(),
            "seed": self.seed,
            "iterations": self.iteration,
            "train_seconds": self.elapsed,
            "shapes": [
                {
                    "shape": m.shape,
                    "model": str(self.shape_dir(k) / "model.pt"),
                    "status": m.status,
                    "message": m.message,
                }
                for k, m in enumerate(metas)
            ],
        }
        return write_json(path, record)


def default_checkpoint(out_dir: Path, names: Sequence[str]) -> Path:
    """Where a batch is checkpointed when no path is given: beside the model for one shape,
    `OUT/checkpoint-<digest of the names>.pt` for several."""
    if len(names) == 1:
        return out_dir / names[0] / "checkpoint.pt"
    digest = array_digest(np.frombuffer("\n".join(names).encode(), dtype=np.uint8))[:12]
    return out_dir / f"checkpoint-{digest}.pt"
