"""Verdicts from per-seed measurements: never hard-coded.

Measurements are `{arm: {metric: [value per seed]}}`; a time-to-event metric may come with
`<metric>.censored` flags (1.0: the event did not happen within the budget, the value is the
budget and the true value is at least that). A claim's test reads them and returns `Evidence`
with one of three outcomes, and the reason in words whenever it is not decided:

- `Paired(metric, treatment, control, ...)`: paired difference (or log-ratio) across seeds with
  a Student-t confidence interval; reproduced when the whole CI lies beyond `min_effect` in the
  claimed direction, not_reproduced when the whole CI lies short of it, else inconclusive.
- `Equivalent(metric, a, b, margin)`: two one-sided tests (TOST) via the 90 % CI of the paired
  difference: reproduced when it lies inside ±margin, not_reproduced when entirely outside.
- `Threshold(metric, arm, value)`: the CI of one arm's mean against a fixed bound.
- `Trend(metric, arms, xs)`: per-seed least-squares slope of metric against x, CI over seeds.
- `AllOf(*tests)`: reproduced iff all are; not_reproduced if any is; else inconclusive.

Undecidable data are never shown as decided: NaN (a diverged member), a single seed, both
arms censored. With one-sided censoring only the direction it still supports can be
concluded: "unscaled >= budget > scaled" shows "slower", never "not slower".
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from mlbench.core.evidence import (EXACT, LOWER, UNKNOWN, UPPER, Censored, Evidence, Interval,  # noqa: F401
                                   Paper, decide, mean, mean_ci, slope, t_cdf, t_quantile, undecidable)

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not_reproduced", "inconclusive"
SMOKE = "smoke"  # a smoke-profile "verdict": plumbing was tested, not the claim
OUTCOMES = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
Measurements = dict[str, dict[str, list[float]]]


def _series(m: Measurements, arm: str, metric: str) -> list[float]:
    try:
        return [float(v) for v in m[arm][metric]]
    except KeyError:
        raise KeyError(f"measurements lack arm {arm!r} metric {metric!r}") from None


def _censored(m: Measurements, arm: str, metric: str) -> list[bool]:
    flags = m.get(arm, {}).get(Censored.key(metric))
    return [bool(f) for f in flags] if flags is not None else [False] * len(_series(m, arm, metric))


def _arm_summary(m: Measurements, metric: str, arms: Sequence[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for a in arms:
        summary = mean_ci(_series(m, a, metric)).as_dict()
        censored = sum(_censored(m, a, metric))
        if censored:
            summary["censored"] = censored
        out[f"{a}:{metric}"] = summary
    return out


def _pair_kinds(t_cens: list[bool], c_cens: list[bool]) -> list[str]:
    """What censoring leaves of each paired difference t − c: exact, a lower bound (t censored),
    an upper bound (c censored) or unknown (both)."""
    return [UNKNOWN if a and b else LOWER if a else UPPER if b else EXACT for a, b in zip(t_cens, c_cens)]


def _pct(confidence: float) -> str:
    return f"{confidence * 100:.4g}%"


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

    def scaled(self, looks: int) -> "Paired":
        return dataclasses.replace(self, confidence=1 - (1 - self.confidence) / looks)

    def __call__(self, m: Measurements) -> Evidence:
        t, c = _series(m, self.treatment, self.metric), _series(m, self.control, self.metric)
        if len(t) != len(c):
            raise ValueError("paired test needs the same seeds in both arms")
        if self.log_ratio:
            diffs = [math.log(a / b) if a > 0 and b > 0 else math.nan for a, b in zip(t, c)]
        else:
            diffs = [a - b for a, b in zip(t, c)]
        kinds = _pair_kinds(_censored(m, self.treatment, self.metric), _censored(m, self.control, self.metric))
        iv = mean_ci(diffs, self.confidence)
        kind = "log-ratio" if self.log_ratio else "difference"
        op = ">" if self.direction == "greater" else "<"
        bound = f"log({math.exp(self.min_effect):.3g})" if self.log_ratio else f"{self.min_effect:g}"
        text = (f"{self.metric}: paired {kind} {self.treatment} vs {self.control}, "
                f"{_pct(self.confidence)} CI {op} {bound}")
        verdict, reason = decide(iv, self.min_effect, self.direction, kinds, self.confidence)
        return Evidence(verdict, text, iv.mean, (iv.low, iv.high), iv.n,
                        _arm_summary(m, self.metric, [self.treatment, self.control]),
                        effect_name=f"{kind} of {self.metric}, {self.treatment} vs {self.control}",
                        reason=reason, censored=sum(k != EXACT for k in kinds))


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

    def scaled(self, looks: int) -> "Equivalent":
        return dataclasses.replace(self, alpha=self.alpha / looks)

    def __call__(self, m: Measurements) -> Evidence:
        diffs = [x - y for x, y in zip(_series(m, self.a, self.metric), _series(m, self.b, self.metric))]
        kinds = _pair_kinds(_censored(m, self.a, self.metric), _censored(m, self.b, self.metric))
        conf = 1.0 - 2.0 * self.alpha
        iv = mean_ci(diffs, conf)
        inside = -self.margin < iv.low and iv.high < self.margin
        reason = undecidable(iv, kinds)
        if reason is not None:
            verdict = INCONCLUSIVE
        elif inside:
            verdict, reason = ((REPRODUCED, None) if all(k == EXACT for k in kinds) else
                               (INCONCLUSIVE, "censored values cannot show equivalence"))
        elif iv.low > self.margin or iv.high < -self.margin:  # shown different, if censoring allows
            above = iv.low > self.margin
            beyond, reason = decide(iv, self.margin if above else -self.margin, "greater" if above else "less",
                                    kinds, conf)
            verdict = NOT_REPRODUCED if beyond == REPRODUCED else INCONCLUSIVE
        else:
            verdict = INCONCLUSIVE
            reason = f"the {_pct(conf)} CI [{iv.low:.4g}, {iv.high:.4g}] is neither inside nor outside ±{self.margin:g}"
        text = (f"{self.metric}: {self.a} equivalent to {self.b} within ±{self.margin:g} "
                f"(TOST, {_pct(conf)} CI of the paired difference)")
        return Evidence(verdict, text, iv.mean, (iv.low, iv.high), iv.n,
                        _arm_summary(m, self.metric, [self.a, self.b]),
                        effect_name=f"difference of {self.metric}, {self.a} vs {self.b}",
                        reason=reason, censored=sum(k != EXACT for k in kinds))


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

    def scaled(self, looks: int) -> "Threshold":
        return dataclasses.replace(self, confidence=1 - (1 - self.confidence) / looks)

    def __call__(self, m: Measurements) -> Evidence:
        iv = mean_ci(_series(m, self.arm, self.metric), self.confidence)
        kinds = [LOWER if c else EXACT for c in _censored(m, self.arm, self.metric)]
        op = ">" if self.direction == "greater" else "<"
        text = f"{self.metric} of {self.arm}: {_pct(self.confidence)} CI {op} {self.value:g}"
        verdict, reason = decide(iv, self.value, self.direction, kinds, self.confidence)
        return Evidence(verdict, text, iv.mean, (iv.low, iv.high), iv.n, _arm_summary(m, self.metric, [self.arm]),
                        effect_name=f"mean {self.metric} of {self.arm}", reason=reason,
                        censored=sum(k != EXACT for k in kinds))


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

    def scaled(self, looks: int) -> "Trend":
        return dataclasses.replace(self, confidence=1 - (1 - self.confidence) / looks)

    def __call__(self, m: Measurements) -> Evidence:
        series = [_series(m, a, self.metric) for a in self.arms]
        op = ">" if self.direction == "greater" else "<"
        text = f"slope of {self.metric} vs {self.x_label}: {_pct(self.confidence)} CI {op} {self.min_slope:g}"
        name = f"slope of {self.metric} vs {self.x_label}"
        summary = _arm_summary(m, self.metric, self.arms)
        censored = sum(sum(_censored(m, a, self.metric)) for a in self.arms)
        if len(set(self.xs)) < 2:  # no trend can be measured from one x
            return Evidence(INCONCLUSIVE, text, None, None, len(series[0]), summary, effect_name=name,
                            reason="needs two or more distinct x")
        per_seed = [slope(self.xs, [s[k] for s in series]) for k in range(len(series[0]))]
        iv = mean_ci(per_seed, self.confidence)
        verdict, reason = decide(iv, self.min_slope, self.direction, [EXACT] * iv.n, self.confidence)
        if censored and verdict != INCONCLUSIVE:
            verdict, reason = INCONCLUSIVE, f"{censored} censored values: a slope through lower bounds proves nothing"
        return Evidence(verdict, text, iv.mean, (iv.low, iv.high), iv.n, summary, effect_name=name,
                        reason=reason, censored=censored)


@dataclass(frozen=True)
class AllOf:
    """Every part must hold. The headline effect is that of the part that decides the verdict:
    the first not reproduced, else the first inconclusive, else the first part."""
    tests: tuple[Callable[[Measurements], Evidence], ...]

    def arm_keys(self) -> tuple[str, ...]:
        return tuple(a for t in self.tests for a in t.arm_keys())

    def scaled(self, looks: int) -> "AllOf":
        return AllOf(tuple(t.scaled(looks) if hasattr(t, "scaled") else t for t in self.tests))

    def __call__(self, m: Measurements) -> Evidence:
        parts = [t(m) for t in self.tests]
        verdicts = {p.verdict for p in parts}
        verdict = (REPRODUCED if verdicts == {REPRODUCED}
                   else NOT_REPRODUCED if NOT_REPRODUCED in verdicts else INCONCLUSIVE)
        head = next(p for p in parts if p.verdict == verdict) if verdict != REPRODUCED else parts[0]
        arms: dict[str, Any] = {}
        for p in parts:
            arms.update(p.arms)
        reason = None
        if verdict != REPRODUCED:
            reason = "; ".join(f"part {i + 1} {p.verdict}" + (f": {p.reason}" if p.reason else "")
                               for i, p in enumerate(parts) if p.verdict != REPRODUCED)
        return Evidence(verdict, " AND ".join(p.statement for p in parts), head.effect, head.ci,
                        head.n, arms, [p.as_dict() for p in parts], effect_name=head.effect_name,
                        reason=reason, censored=sum(p.censored for p in parts))


@dataclass(frozen=True)
class Claim:
    """A claim an experiment tests: text, citation, the test its verdict uses, and the paper's
    own figure where there is one."""
    id: str
    text: str
    citation: str
    test: Callable[[Measurements], Evidence]
    paper: Paper | None = None

    def arm_keys(self) -> tuple[str, ...]:
        return self.test.arm_keys()

    def judge(self, m: Measurements, *, decides: bool = True, looks: int = 1) -> dict[str, Any]:
        """The claim's verdict and evidence. `decides`: whether the profile is meant to decide it
        (a smoke run's verdict is `smoke`); `looks`: the confidence is split over that many
        sequential looks (alpha spending, see `mlbench.core.sequential`)."""
        # alpha spending: tests with a confidence level split it over the looks; exact tests
        # (no sampling error: e.g. a count that must be zero) have nothing to split
        scaled = getattr(self.test, "scaled", None)
        test = scaled(looks) if looks > 1 and scaled is not None else self.test
        ev = test(m).as_dict()
        out: dict[str, Any] = {"id": self.id, "text": self.text, "citation": self.citation, **ev, "decides": decides}
        if not decides:
            _as_smoke(out)
            alone = f" (the test alone: {out['smoke_outcome']}" + (f", {ev['reason']})" if ev["reason"] else ")")
            out["reason"] = "smoke profile: it tests the plumbing, not the claim" + alone
        if self.paper is not None:
            out["paper"] = self.paper.as_dict()
            if self.paper.ours is not None:
                arm, metric = self.paper.ours
                out["paper"]["ours"] = {"value": statistics.fmean(_series(m, arm, metric)), "arm": arm, "metric": metric}
        return out


def _as_smoke(ev: dict[str, Any]) -> None:
    """A smoke run's evidence: every verdict (parts too) becomes `smoke`; what the test computed
    is kept as `smoke_outcome`, for debugging the plumbing."""
    ev["smoke_outcome"], ev["verdict"] = ev["verdict"], SMOKE
    for part in ev.get("parts", []):
        _as_smoke(part)


__all__ = ["AllOf", "Censored", "Claim", "Equivalent", "Evidence", "Interval", "Paired", "Paper", "Threshold",
           "Trend", "mean", "mean_ci", "slope", "t_cdf", "t_quantile", "REPRODUCED", "NOT_REPRODUCED",
           "INCONCLUSIVE", "SMOKE", "OUTCOMES"]
