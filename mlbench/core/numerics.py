"""Numeric faults: a loss or gradient that becomes NaN/inf marks its model as diverged.

Experiments train many models at once; `Divergence` tracks, per model, the first step at which
a watched value stopped being finite, so the run records the divergence (with its step) in
metrics and measurements instead of crashing or writing NaN silently into a table. Verdict
tests treat a NaN measurement as "this arm cannot support the claim" (not_reproduced).
"""

from __future__ import annotations

import math
from typing import Any


class Divergence:
    def __init__(self, models: int) -> None:
        self.step: list[int | None] = [None] * models  # first non-finite step per model

    def update(self, values: Any, step: int) -> list[int]:
        """`values` (one per model, e.g. per-model losses): returns the models that diverged now."""
        flat = [float(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]
        new = [m for m, v in enumerate(flat) if self.step[m] is None and not math.isfinite(v)]
        for m in new:
            self.step[m] = step
        return new

    def diverged(self, model: int) -> bool:
        return self.step[model] is not None

    @property
    def any(self) -> bool:
        return any(s is not None for s in self.step)

    def mask(self, value: float, model: int) -> float:
        """A measurement of a diverged model becomes NaN (the verdict then rejects the arm)."""
        return math.nan if self.diverged(model) else value
