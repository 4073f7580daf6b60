"""Verdict tests that read every seed (torch-free: the face imports them).

`EverySeed`: a per-seed quantity inside a band on every seed ("TSM gains >= 0.30 on every seed",
"the 2D net's accuracy in [0.4, 0.6]", "max |Δlogit| <= 0", i.e. exactly zero). `SameCount`: a
counted quantity (parameters, MACs) exactly equal in two arms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlbench.core.verdict import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Evidence, mean_ci


@dataclass(frozen=True)
class EverySeed:
    """Every seed's `metric` of `arm` lies in [low, high]: reproduced; the 95 % CI of the mean
    wholly outside it: not_reproduced; otherwise inconclusive, naming the seeds outside."""
    metric: str
    arm: str
    low: float = -math.inf
    high: float = math.inf
    confidence: float = 0.95

    def arm_keys(self) -> tuple[str, ...]:
        return (self.arm,)

    def scaled(self, looks: int) -> "EverySeed":
        return EverySeed(self.metric, self.arm, self.low, self.high, 1 - (1 - self.confidence) / looks)

    def __call__(self, m) -> Evidence:
        values = [float(v) for v in m[self.arm][self.metric]]
        iv = mean_ci(values, self.confidence)
        band = (f"in [{self.low:g}, {self.high:g}]" if math.isfinite(self.low) and math.isfinite(self.high)
                else f">= {self.low:g}" if math.isfinite(self.low) else f"<= {self.high:g}")
        text = f"{self.metric} of {self.arm} {band} on every seed"
        outside = [k for k, v in enumerate(values) if not self.low <= v <= self.high]
        if any(math.isnan(v) for v in values):
            verdict, reason = INCONCLUSIVE, "NaN values (a diverged model): these seeds cannot decide"
        elif not outside:
            verdict, reason = REPRODUCED, None
        elif iv.high < self.low or iv.low > self.high:
            verdict, reason = NOT_REPRODUCED, None
        else:
            verdict = INCONCLUSIVE
            reason = (f"seeds {', '.join(map(str, outside))} not {band} "
                      f"({', '.join(f'{values[k]:.4g}' for k in outside)}) while the CI of the mean is not")
        return Evidence(verdict, text, iv.mean, (iv.low, iv.high), iv.n, {f"{self.arm}:{self.metric}": iv.as_dict()},
                        effect_name=f"mean {self.metric} of {self.arm}", reason=reason)


@dataclass(frozen=True)
class SameCount:
    """A counted quantity (parameters, MACs) is exactly equal in two arms on every seed."""
    metric: str
    a: str
    b: str

    def arm_keys(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def __call__(self, m) -> Evidence:
        xs, ys = m[self.a][self.metric], m[self.b][self.metric]
        same = all(x == y for x, y in zip(xs, ys))
        diff = max(abs(x - y) for x, y in zip(xs, ys))
        return Evidence(REPRODUCED if same else NOT_REPRODUCED, f"{self.metric}: {self.a} == {self.b} exactly",
                        diff, None, len(xs), effect_name=f"max |difference| of {self.metric}, {self.a} vs {self.b}",
                        reason=None if same else f"they differ by up to {diff:g}")
