"""Two verdict tests this experiment needs beyond the kit's (torch-free; the face imports them).

- `EverySeed`: a per-seed condition that must hold on every seed ("on every seed S ≤ 0.1"), which
  a confidence interval of the mean does not say.
- `MaterialGap`: a paired gap counts only when it is material (mean ≥ `min_gap`), its CI is above
  0, and enough seeds back it; it is refuted when the CI lies below 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlbench.core.verdict import (INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Evidence, Measurements, _arm_summary,
                                  _series, mean_ci)


def _per_seed(m: Measurements, metric: str, treatment: str, control: str | None, log_ratio: bool) -> list[float]:
    t = _series(m, treatment, metric)
    if control is None:
        return t
    c = _series(m, control, metric)
    if log_ratio:
        return [math.log(a / b) if a > 0 and b > 0 else math.nan for a, b in zip(t, c)]
    return [a - b for a, b in zip(t, c)]


@dataclass(frozen=True)
class EverySeed:
    """On every seed, `treatment` (or its difference / log-ratio to `control`) is `direction` than
    `bound`: reproduced if all seeds are, not_reproduced if none is, else inconclusive. The
    effect is the worst seed's value."""
    metric: str
    treatment: str
    bound: float
    direction: str = "less"
    control: str | None = None
    log_ratio: bool = False

    def arm_keys(self) -> tuple[str, ...]:
        return (self.treatment,) if self.control is None else (self.treatment, self.control)

    def __call__(self, m: Measurements) -> Evidence:
        values = _per_seed(m, self.metric, self.treatment, self.control, self.log_ratio)
        less = self.direction == "less"
        holds = [not math.isnan(v) and (v < self.bound if less else v > self.bound) for v in values]
        verdict = REPRODUCED if all(holds) else NOT_REPRODUCED if not any(holds) else INCONCLUSIVE
        what = self.treatment if self.control is None else (
            f"{'log(' if self.log_ratio else ''}{self.treatment} {'/' if self.log_ratio else '−'} {self.control}"
            f"{')' if self.log_ratio else ''}")
        text = f"{self.metric}: {what} {'<' if less else '>'} {self.bound:.4g} on every seed ({sum(holds)}/{len(holds)})"
        worst = max(values) if less else min(values)
        return Evidence(verdict, text, worst, None, len(values), _arm_summary(m, self.metric, self.arm_keys()))


@dataclass(frozen=True)
class MaterialGap:
    """treatment − control, paired over seeds: reproduced iff ≥ `min_seeds` seeds, mean ≥ `min_gap`
    and the 95 % CI above 0; not_reproduced iff the CI lies below 0; otherwise inconclusive, with
    the reason in the statement."""
    metric: str
    treatment: str
    control: str
    min_gap: float
    min_seeds: int

    def arm_keys(self) -> tuple[str, ...]:
        return (self.treatment, self.control)

    def __call__(self, m: Measurements) -> Evidence:
        iv = mean_ci(_per_seed(m, self.metric, self.treatment, self.control, False))
        text = (f"{self.metric}: paired difference {self.treatment} − {self.control} ≥ {self.min_gap:g} "
                f"with 95% CI > 0 over ≥ {self.min_seeds} seeds")
        if math.isnan(iv.mean):
            verdict, why = NOT_REPRODUCED, "a diverged arm"
        elif iv.high < 0:
            verdict, why = NOT_REPRODUCED, "CI below 0"
        elif iv.n >= self.min_seeds and iv.mean >= self.min_gap and iv.low > 0:
            verdict, why = REPRODUCED, ""
        else:
            reasons = [r for r, bad in ((f"{iv.n} seeds", iv.n < self.min_seeds),
                                        (f"mean {iv.mean:.3g} < {self.min_gap:g}", iv.mean < self.min_gap),
                                        ("CI includes 0", iv.low <= 0)) if bad]
            verdict, why = INCONCLUSIVE, ", ".join(reasons)
        return Evidence(verdict, text + (f" ({why})" if why else ""), iv.mean, (iv.low, iv.high), iv.n,
                        _arm_summary(m, self.metric, self.arm_keys()))
