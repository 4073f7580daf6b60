"""A rule that must hold for every value, not on average: the FlashAttention tests' assertion style.

`Every(metric, arms, bound, "at_most")` is reproduced when each seed's value of `metric` in each
of `arms` is ≤ `bound` (≥ for "at_least"), and not reproduced as soon as one is not. A NaN value
(a non-finite output, for an error metric) breaks the rule. There is no confidence interval: the
claim is about every measured case, so more seeds can only make it harder to pass. The effect is
the worst value; the per-arm summaries are the usual means and CIs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlbench.core.verdict import NOT_REPRODUCED, REPRODUCED, Evidence, mean_ci


@dataclass(frozen=True)
class Every:
    metric: str
    arms: tuple[str, ...]
    bound: float
    direction: str = "at_most"  # or "at_least"

    def arm_keys(self) -> tuple[str, ...]:
        return tuple(self.arms)

    def scaled(self, looks: int) -> "Every":
        return self  # no error rate to spend: the rule is checked on every value of every look

    def _holds(self, v: float) -> bool:
        if math.isnan(v):
            return False
        return v <= self.bound if self.direction == "at_most" else v >= self.bound

    def __call__(self, m) -> Evidence:
        values = {a: [float(v) for v in m[a][self.metric]] for a in self.arms}
        flat = [(a, k, v) for a, vs in values.items() for k, v in enumerate(vs)]
        broken = [(a, k, v) for a, k, v in flat if not self._holds(v)]
        op = "≤" if self.direction == "at_most" else "≥"
        finite = [v for _, _, v in flat if not math.isnan(v)]
        worst = (max if self.direction == "at_most" else min)(finite) if finite else math.nan
        if broken:
            worst = math.nan if any(math.isnan(v) for _, _, v in broken) else worst
            a, k, v = broken[0]
            reason = (f"{len(broken)} of {len(flat)} values break it; first: {a} seed index {k}: "
                      f"{'NaN (non-finite output)' if math.isnan(v) else f'{v:.4g}'}")
        else:
            reason = None
        seeds = len(next(iter(values.values()))) if values else 0
        return Evidence(NOT_REPRODUCED if broken else REPRODUCED,
                        f"every {self.metric} of {len(self.arms)} arms × {seeds} seeds {op} {self.bound:g}",
                        worst, None, seeds, {f"{a}:{self.metric}": mean_ci(vs).as_dict() for a, vs in values.items()},
                        effect_name=f"worst {self.metric} over {len(flat)} values", reason=reason)
