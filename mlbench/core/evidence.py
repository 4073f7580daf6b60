"""The statistics under the verdicts: intervals, censoring-aware decisions, evidence records.

`decide(iv, bound, direction, kinds)` turns a confidence interval into an outcome and, when it
cannot decide, the reason in words. `kinds` says per seed what censoring left of the value:
`exact`, a `lower` bound (the true value is at least this), an `upper` bound, or `unknown`.
Outcomes are plain strings ("reproduced", "not_reproduced", "inconclusive").
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Sequence

EXACT, LOWER, UPPER, UNKNOWN = "exact", "lower", "upper", "unknown"


@dataclass(frozen=True)
class Censored:
    """Per-model values of a time-to-event metric where the event may not have happened within
    the budget: `values` holds the budget there and `censored` is true (the true value is at
    least the budget). `Grid.measurements` stores the flags as `<metric>.censored`."""
    values: Any
    censored: Any

    @staticmethod
    def key(metric: str) -> str:
        return f"{metric}.censored"


@dataclass(frozen=True)
class Paper:
    """The paper's own figure for a claim, shown beside ours.

    `value` (a number or a short text such as "10x at 2K"), its `unit`, `where` in the paper
    ("Table 1", "Fig. 3"), whether it was `confirmed` from the paper itself (False: quoted from a
    secondary source), and `ours`: (arm, metric) of the measured figure to put beside it (the
    mean over seeds), or None when our figure is the claim's effect.
    """
    value: float | str
    unit: str
    where: str
    confirmed: bool = False
    ours: tuple[str, str] | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "unit": self.unit, "where": self.where, "confirmed": self.confirmed,
                "note": self.note}


def t_quantile(p: float, df: float) -> float:
    """Inverse CDF of Student's t (scipy; imported here so the CLI starts fast)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def t_cdf(t: float, df: float) -> float:
    from scipy.special import stdtr

    return float(stdtr(df, t))


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "ci": [self.low, self.high], "n": self.n}


def mean(values: Sequence[float]) -> float:
    """Plain mean, sum / n (tables and plots; `mean_ci` uses statistics.fmean for the verdict)."""
    return sum(values) / len(values)


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean and two-sided t confidence interval. One value -> an infinitely wide interval."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0 or any(math.isnan(v) for v in xs):
        return Interval(math.nan, math.nan, math.nan, n)
    m = statistics.fmean(xs)
    if n == 1:
        return Interval(m, -math.inf, math.inf, 1)
    se = statistics.stdev(xs) / math.sqrt(n)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * se
    return Interval(m, m - half, m + half, n)


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def undecidable(iv: Interval, kinds: Sequence[str]) -> str | None:
    """Why these data cannot decide anything (None if they can)."""
    if iv.n == 0:
        return "no data"
    if math.isnan(iv.mean):
        return "NaN values (a diverged or undefined measurement): these seeds cannot decide"
    if iv.n == 1:
        return "one seed: no confidence interval"
    both = sum(k == UNKNOWN for k in kinds)
    if both:
        return f"both arms censored at the budget in {both} of {iv.n} seeds: no comparison possible"
    return None


def decide(iv: Interval, bound: float, direction: str, kinds: Sequence[str], confidence: float) -> tuple[str, str | None]:
    """(outcome, reason): the claim is that the mean is `direction` ("greater"/"less") than `bound`.

    Reproduced needs the whole CI beyond the bound, and censoring that only pushes the true
    values further that way; not_reproduced needs the whole CI short of it, likewise."""
    reason = undecidable(iv, kinds)
    if reason is not None:
        return "inconclusive", reason
    toward, away = (LOWER, UPPER) if direction == "greater" else (UPPER, LOWER)
    beyond = iv.low > bound if direction == "greater" else iv.high < bound
    short = iv.high < bound if direction == "greater" else iv.low > bound
    if beyond:
        against = sum(k == away for k in kinds)
        if not against:
            return "reproduced", None
        return "inconclusive", (f"{against} of {iv.n} seeds censored the other way: the CI clears the bound "
                                "only because of values counted at the budget")
    if short:
        against = sum(k == toward for k in kinds)
        if not against:
            return "not_reproduced", None
        return "inconclusive", (f"{against} of {iv.n} seeds censored at the budget: the true values may "
                                "still clear the bound")
    pct = f"{confidence * 100:.4g}%"
    return "inconclusive", f"the {pct} CI [{iv.low:.4g}, {iv.high:.4g}] includes the bound {bound:.4g}"


@dataclass
class Evidence:
    verdict: str
    statement: str  # the machine-checkable form, in words
    effect: float | None = None
    ci: tuple[float, float] | None = None
    n: int = 0
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    parts: list[dict[str, Any]] = field(default_factory=list)
    effect_name: str = ""
    reason: str | None = None  # why it is not decided (None when it is)
    censored: int = 0  # seeds whose values were censored at the budget

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "test": self.statement, "effect": self.effect,
                               "effect_name": self.effect_name, "ci": list(self.ci) if self.ci else None,
                               "seeds": self.n, "reason": self.reason, "censored": self.censored,
                               "arms": self.arms}
        if self.parts:
            out["parts"] = self.parts
        return out
