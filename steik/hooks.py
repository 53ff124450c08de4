"""What happens around the training steps besides the step itself: progress output, periodic
checkpoints and snapshots of the networks (`steik.trainer.Hook`s)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from steik.errors import SteikError
from steik.model import load_snapshots, save_snapshots
from steik.trainer import Hook, StepResult, Trainer

log = logging.getLogger(__name__)


class ProgressHook(Hook):
    """Progress of the run: a tqdm bar on a terminal, a log line every 5% otherwise (a job's
    log file), nothing when quiet. Log messages go through the bar without breaking it."""

    def __init__(self, quiet: bool = False, stream: Any = None) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.bar: tqdm | None = None
        self._redirect: Any = None

    def on_start(self, trainer: Trainer) -> None:
        self.total = trainer.config.iterations
        self.first, self.started = trainer.iteration, time.perf_counter()
        terminal = not self.quiet and self.stream.isatty()
        self.every = 0 if self.quiet or terminal else max(1, self.total // 20)
        if terminal:
            self.bar = tqdm(
                total=self.total,
                initial=trainer.iteration,
                desc="train",
                unit="it",
                dynamic_ncols=True,
                file=self.stream,
            )
            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()

    def after_step(self, trainer: Trainer, result: StepResult) -> None:
        i = trainer.iteration
        if self.bar is not None:
            self.bar.update(1)
            if i % 10 == 0:
                self.bar.set_postfix(loss=self._loss(trainer, result))
        elif self.every and (i % self.every == 0 or i == self.total):
            rate = (i - self.first) / max(time.perf_counter() - self.started, 1e-9)
            log.info(
                "train: iteration %d/%d (%.0f%%), loss %s, %.2f it/s",
                i,
                self.total,
                100 * i / self.total,
                self._loss(trainer, result),
                rate,
            )

    def on_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self._redirect.__exit__(None, None, None)

    @staticmethod
    def _loss(trainer: Trainer, result: StepResult) -> str:
        alive = [float(v) for v, a in zip(result.loss.cpu(), trainer.guard.alive, strict=True) if a]
        return f"{np.mean(alive):.4g}" if alive else "-"


class CheckpointHook(Hook):
    """A checkpoint every `config.checkpoint_every` iterations (the end is always saved)."""

    def after_step(self, trainer: Trainer, result: StepResult) -> None:
        every = trainer.config.checkpoint_every
        if every and trainer.iteration % every == 0 and not trainer.finished:
            trainer.save_checkpoint()


@dataclass
class SnapshotHook(Hook):
    """Keeps each shape's network at chosen training fractions in `<shape>/snapshots.pt`.

    A snapshot at fraction f holds the weights after round(f * iterations) steps. The file is
    rewritten at each snapshot, so a resumed run keeps the earlier ones.
    """

    fractions: Sequence[float]
    at: list[int] = field(default_factory=list)
    records: list[dict[str, list]] = field(default_factory=list)

    def on_start(self, trainer: Trainer) -> None:
        self.at = snapshot_iterations(trainer.config.iterations, self.fractions)
        self.records = [
            {"iterations": [], "w_div": [], "seconds": [], "states": []} for _ in trainer.shapes
        ]
        for k in range(trainer.K):
            path = trainer.shape_dir(k) / "snapshots.pt"
            if trainer.iteration == 0 or not path.is_file():
                continue
            try:
                networks, kept_before = load_snapshots(path)
            except SteikError:
                continue
            if kept_before.config_hash != trainer.config.digest():
                continue
            kept = zip(networks, kept_before.iterations, kept_before.w_div, kept_before.seconds,
                       strict=True)  # fmt: skip
            for net, i, w, t in kept:
                if i <= trainer.iteration:
                    self.records[k]["iterations"].append(i)
                    self.records[k]["w_div"].append(w)
                    self.records[k]["seconds"].append(t)
                    self.records[k]["states"].append(dict(net.state_dict()))

    def before_step(self, trainer: Trainer) -> None:
        i = trainer.iteration
        if i not in self.at:
            return
        fraction = min(i, trainer.config.iterations - 1) / trainer.config.iterations
        weight = trainer.objective.weights(fraction).get("div", 0.0)
        for k in range(trainer.K):
            record = self.records[k]
            if i in record["iterations"]:
                continue
            record["iterations"].append(i)
            record["w_div"].append(float(weight))
            record["seconds"].append(float(trainer.elapsed))
            record["states"].append(trainer.net.shape_state(k))
            save_snapshots(trainer.shape_dir(k) / "snapshots.pt", trainer.model_meta(k), **record)


def snapshot_iterations(iterations: int, fractions: Sequence[float]) -> list[int]:
    """Iteration counts `[S]` (sorted, unique, in [0, iterations]) at the given fractions."""
    for f in fractions:
        if not 0.0 <= float(f) <= 1.0:
            raise SteikError(f"snapshot fractions must lie in [0, 1], got {f}")
    return sorted({round(float(f) * iterations) for f in fractions})
