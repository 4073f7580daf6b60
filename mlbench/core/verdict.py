"""Verdicts from per-seed measurements: never hard-coded.

Measurements are `{arm: {metric: [value per seed]}}`. A claim's test reads them and returns
`Evidence` with one of three outcomes:

- `Paired(metric, treatment, control, ...)`: paired difference (or log-ratio) across seeds with
  a Student-t confidence interval; reproduced when the whole CI lies beyond `min_effect` in the
  claimed direction, not_reproduced when the whole CI lies short of it, else inconclusive.
- `Equivalent(metric, a, b, margin)`: two one-sided tests (TOST) via the 90 % CI of the paired
  difference: reproduced when it lies inside ±margin, not_reproduced when entirely outside.
- `Threshold(metric, arm, op, value)`: the CI of one arm's mean against a fixed bound.
- `Trend(metric, arms, xs)`: per-seed least-squares slope of metric against x, CI over seeds.
- `AllOf(*tests)`: reproduced iff all are; not_reproduced if any is; else inconclusive.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not_reproduced", "inconclusive"
OUTCOMES = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
Measurements = dict[str, dict[str, list[float]]]


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


# ---------------------------------------------------------------- Student t, no scipy needed
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the regularised incomplete beta (Numerical Recipes 6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Inverse CDF of Student's t by bisection (accurate to ~1e-10)."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


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


# ---------------------------------------------------------------- evidence and tests
@dataclass
class Evidence:
    verdict: str
    statement: str  # the machine-checkable form, in words
    effect: float | None = None
    ci: tuple[float, float] | None = None
    n: int = 0
    arms: dict[str, dict[str, Any]] = field(default_factory=dict)
    parts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict, "test": self.statement, "effect": self.effect,
                               "ci": list(self.ci) if self.ci else None, "seeds": self.n,
                               "arms": self.arms}
        if self.parts:
            out["parts"] = self.parts
        return out


def _series(m: Measurements, arm: str, metric: str) -> list[float]:
    try:
        return [float(v) for v in m[arm][metric]]
    except KeyError:
        raise KeyError(f"measurements lack arm {arm!r} metric {metric!r}") from None


def _arm_summary(m: Measurements, metric: str, arms: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {f"{a}:{metric}": mean_ci(_series(m, a, metric)).as_dict() for a in arms}


def _judge(iv: Interval, bound: float, direction: str) -> str:
    if math.isnan(iv.mean):
        return NOT_REPRODUCED  # a diverged arm cannot support a claim
    if direction == "greater":
        return REPRODUCED if iv.low > bound else NOT_REPRODUCED if iv.high < bound else INCONCLUSIVE
    return REPRODUCED if iv.high < bound else NOT_REPRODUCED if iv.low > bound else INCONCLUSIVE


@dataclass(frozen=True)
class Paired:
    """treatment − control (or log(treatment/control) with `log_ratio`) is `direction` than
    `min_effect`, paired over seeds."""
    metric: str
    treatment: str
    control: str
    direction: str = "greater"  # or "less"
    min_effect: float = 0.0
    log_ratio: bool = False
    confidence: float = 0.95

    def arm_keys(self) -> tuple[str, ...]:
        return (self.treatment, self.control)

    def __call__(self, m: Measurements) -> Evidence:
        t, c = _series(m, self.treatment, self.metric), _series(m, self.control, self.metric)
        if len(t) != len(c):
            raise ValueError("paired test needs the same seeds in both arms")
        if self.log_ratio:
            diffs = [math.log(a / b) if a > 0 and b > 0 else math.nan for a, b in zip(t, c)]
        else:
            diffs = [a - b for a, b in zip(t, c)]
        iv = mean_ci(diffs, self.confidence)
        kind = "log-ratio" if self.log_ratio else "difference"
        op = ">" if self.direction == "greater" else "<"
        bound = f"log({math.exp(self.min_effect):.3g})" if self.log_ratio else f"{self.min_effect:g}"
        text = (f"{self.metric}: paired {kind} {self.treatment} vs {self.control}, "
                f"{int(self.confidence * 100)}% CI {op} {bound}")
        return Evidence(_judge(iv, self.min_effect, self.direction), text, iv.mean,
                        (iv.low, iv.high), iv.n, _arm_summary(m, self.metric, [self.treatment, self.control]))


@dataclass(frozen=True)
class Equivalent:
    """|a − b| < margin (TOST at level alpha: the (1 − 2·alpha) CI inside ±margin)."""
    metric: str
    a: str
    b: str
    margin: float
    alpha: float = 0.05

    def arm_keys(self) -> tuple[str, ...]:
        return (self.a, self.b)

    def __call__(self, m: Measurements) -> Evidence:
        diffs = [x - y for x, y in zip(_series(m, self.a, self.metric), _series(m, self.b, self.metric))]
        iv = mean_ci(diffs, 1.0 - 2.0 * self.alpha)
        if math.isnan(iv.mean):
            verdict = NOT_REPRODUCED
        elif -self.margin < iv.low and iv.high < self.margin:
            verdict = REPRODUCED
        elif iv.low > self.margin or iv.high < -self.margin:
            verdict = NOT_REPRODUCED
        else:
            verdict = INCONCLUSIVE
        text = (f"{self.metric}: {self.a} equivalent to {self.b} within ±{self.margin:g} "
                f"(TOST, {int((1 - 2 * self.alpha) * 100)}% CI of the paired difference)")
        return Evidence(verdict, text, iv.mean, (iv.low, iv.high), iv.n,
                        _arm_summary(m, self.metric, [self.a, self.b]))


@dataclass(frozen=True)
class Threshold:
    """The mean of `metric` in `arm` is `direction` than `value` (whole CI beyond it)."""
    metric: str
    arm: str
    value: float
    direction: str = "less"
    confidence: float = 0.95

    def arm_keys(self) -> tuple[str, ...]:
        return (self.arm,)

    def __call__(self, m: Measurements) -> Evidence:
        iv = mean_ci(_series(m, self.arm, self.metric), self.confidence)
        op = ">" if self.direction == "greater" else "<"
        text = f"{self.metric} of {self.arm}: {int(self.confidence * 100)}% CI {op} {self.value:g}"
        return Evidence(_judge(iv, self.value, self.direction), text, iv.mean, (iv.low, iv.high),
                        iv.n, _arm_summary(m, self.metric, [self.arm]))


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


@dataclass(frozen=True)
class Trend:
    """Per seed, the least-squares slope of `metric` across `arms` (at positions `xs`) is
    `direction` than `min_slope`; CI over seeds."""
    metric: str
    arms: tuple[str, ...]
    xs: tuple[float, ...]
    direction: str = "less"
    min_slope: float = 0.0
    confidence: float = 0.95
    x_label: str = "x"

    def arm_keys(self) -> tuple[str, ...]:
        return tuple(self.arms)

    def __call__(self, m: Measurements) -> Evidence:
        series = [_series(m, a, self.metric) for a in self.arms]
        op = ">" if self.direction == "greater" else "<"
        text = f"slope of {self.metric} vs {self.x_label}: {int(self.confidence * 100)}% CI {op} {self.min_slope:g}"
        if len(set(self.xs)) < 2:  # no trend can be measured from one x
            return Evidence(INCONCLUSIVE, text + " (needs two or more distinct x)", None, None, len(series[0]),
                            _arm_summary(m, self.metric, self.arms))
        per_seed = [slope(self.xs, [s[k] for s in series]) for k in range(len(series[0]))]
        iv = mean_ci(per_seed, self.confidence)
        return Evidence(_judge(iv, self.min_slope, self.direction), text, iv.mean, (iv.low, iv.high),
                        iv.n, _arm_summary(m, self.metric, self.arms))


@dataclass(frozen=True)
class AllOf:
    """Every part must hold; the first part is the headline effect."""
    tests: tuple[Callable[[Measurements], Evidence], ...]

    def arm_keys(self) -> tuple[str, ...]:
        return tuple(a for t in self.tests for a in t.arm_keys())

    def __call__(self, m: Measurements) -> Evidence:
        parts = [t(m) for t in self.tests]
        verdicts = {p.verdict for p in parts}
        verdict = (REPRODUCED if verdicts == {REPRODUCED}
                   else NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE)
        head = parts[0]
        arms: dict[str, Any] = {}
        for p in parts:
            arms.update(p.arms)
        return Evidence(verdict, " AND ".join(p.statement for p in parts), head.effect, head.ci,
                        head.n, arms, [p.as_dict() for p in parts])


@dataclass(frozen=True)
class Claim:
    """A claim an experiment tests: text, citation, and the test its verdict uses."""
    id: str
    text: str
    citation: str
    test: Callable[[Measurements], Evidence]
    paper: Paper | None = None

    def arm_keys(self) -> tuple[str, ...]:
        return self.test.arm_keys()

    def judge(self, m: Measurements) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "citation": self.citation, **self.test(m).as_dict()}
