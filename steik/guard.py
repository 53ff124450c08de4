"""Per-shape divergence status of a K-batch: a shape whose loss or gradients turn non-finite is
frozen at its last finite weights while the others train on (`steik.trainer.Trainer.step`)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

log = logging.getLogger(__name__)


class DivergenceGuard:
    """Per-shape divergence status: a shape whose loss or gradient norm is non-finite is frozen
    at its last finite weights (and its Adam moments zeroed) while the others train on."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.alive = [True] * len(names)
        self.diverged_at: list[int | None] = [None] * len(names)
        self.last_finite_loss = [math.nan] * len(names)
        self.frozen: list[dict[str, Tensor] | None] = [None] * len(names)

    def mask(self, device: torch.device) -> Tensor:
        """bool `[K]`: shapes still training."""
        return torch.tensor(self.alive, device=device)

    def check(self, iteration: int, loss: Tensor, grad_sq: Tensor, net: torch.nn.Module) -> None:
        """Freeze every live shape whose `loss [K]` or squared gradient norm `[K]` is not finite."""
        finite = (torch.isfinite(loss) & torch.isfinite(grad_sq)).cpu()
        values = loss.detach().cpu()
        for k, name in enumerate(self.names):
            if not self.alive[k]:
                continue
            if bool(finite[k]):
                self.last_finite_loss[k] = float(values[k])
                continue
            self.alive[k] = False
            self.diverged_at[k] = iteration
            self.frozen[k] = net.shape_state(k)
            log.warning(
                "%s diverged at iteration %d (last finite loss %.6g); its weights are frozen, "
                "the others go on",
                name,
                iteration,
                self.last_finite_loss[k],
            )

    @torch.no_grad()
    def restore(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Put frozen shapes back to their last finite weights after an optimiser step."""
        for k, state in enumerate(self.frozen):
            if state is None:
                continue
            net.load_shape_state(k, state)
            for p in net.parameters():
                for value in optimizer.state.get(p, {}).values():
                    if torch.is_tensor(value) and value.dim() > 0:
                        value[k].zero_()

    def message(self, k: int) -> str:
        """Why shape k is not `ok` ("" when it is)."""
        if self.alive[k]:
            return ""
        return (
            f"loss or gradients non-finite at iteration {self.diverged_at[k]} (last finite loss "
            f"{self.last_finite_loss[k]:.6g}); weights frozen there"
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "alive": list(self.alive),
            "diverged_at": list(self.diverged_at),
            "last_finite_loss": list(self.last_finite_loss),
            "frozen": [
                None if f is None else {n: t.cpu() for n, t in f.items()} for f in self.frozen
            ],
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.alive = list(state["alive"])
        self.diverged_at = list(state["diverged_at"])
        self.last_finite_loss = list(state["last_finite_loss"])
        self.frozen = [
            None if f is None else {n: t.to(device) for n, t in f.items()} for f in state["frozen"]
        ]
