"""Divergence-weight schedules over the training fraction (SPEC 3), in plain Python.

Kept free of torch so that the workflow can check a configuration's schedule while it builds
its job graph, on machines (a cluster's login node) where importing torch is slow or absent.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ScheduleKind = Literal["linear", "quintic", "step", "none"]
SCHEDULES: tuple[str, ...] = ("linear", "quintic", "step", "none")


@dataclass(frozen=True)
class WeightSchedule:
    """A piecewise weight over the training fraction t in [0, 1].

    Built from the reference code's flat knot list `(w0, f1, w1, ..., fn, wn, w_end)`: weight w0
    at t = 0, wi at fi, w_end at t = 1. Between knots `linear` interpolates, `quintic` eases with
    w_a + (w_b - w_a)(1 - (1 - s)^5), `step` holds the left value, `none` keeps w0 throughout.
    """

    kind: ScheduleKind
    fractions: tuple[float, ...]
    weights: tuple[float, ...]

    @classmethod
    def from_knots(cls, kind: str, knots: Sequence[float]) -> WeightSchedule:
        if kind not in SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}; valid: {', '.join(SCHEDULES)}")
        knots = [float(v) for v in knots]
        if len(knots) < 2 or len(knots) % 2 != 0:
            raise ValueError(
                f"schedule knots must be (w0, f1, w1, ..., w_end), an even count >= 2; got {knots}"
            )
        inner = knots[1:-1]
        fractions = (0.0, *inner[0::2], 1.0)
        weights = (knots[0], *inner[1::2], knots[-1])
        if any(b < a for a, b in itertools.pairwise(fractions)) or not all(
            0.0 <= f <= 1.0 for f in fractions
        ):
            raise ValueError(f"schedule fractions must rise within [0, 1]; got {fractions}")
        return cls(kind, fractions, weights)

    def __call__(self, t: float) -> float:
        """The weight at training fraction t (clipped to [0, 1])."""
        t = min(max(t, 0.0), 1.0)
        if self.kind == "none":
            return self.weights[0]
        i = max(bisect.bisect_right(self.fractions, t) - 1, 0)
        if i >= len(self.fractions) - 1:
            return self.weights[-1]
        f_a, f_b = self.fractions[i], self.fractions[i + 1]
        w_a, w_b = self.weights[i], self.weights[i + 1]
        if self.kind == "step" or f_b == f_a:
            return w_a
        s = (t - f_a) / (f_b - f_a)
        if self.kind == "linear":
            return w_a + (w_b - w_a) * s
        return w_a + (w_b - w_a) * (1.0 - (1.0 - s) ** 5)
