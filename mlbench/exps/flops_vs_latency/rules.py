"""Verdict rules for latency ratios judged pass by pass, behind a noise gate.

A pass times every group once; in a pass each variant has the median r̃ and the interquartile
range [q1, q3] of its per-round ratios r_j = t_variant,j / t_baseline,j (j = 1..rounds).

`EveryPass(arm, null)`, a claimed slow-down (direction "greater", bounds 1.10 / 1.05 / 1.03):
- timings at more than one CPU thread decide nothing (inconclusive, saying so);
- noise gate first: the null arm (two identical networks) must have 0.97 ≤ r̃ ≤ 1.03 in every
  pass, else the claim is inconclusive, "timing too noisy: null ratio x in pass k". A verdict
  is never drawn from a run whose identical networks do not time alike;
- reproduced if r̃ ≥ 1.10 and q1 ≥ 1.05 in every pass (the IQR's near end: most rounds agree);
- not_reproduced if r̃ ≤ 1.03 in every pass; else inconclusive.
A claimed speed-up (direction "less") mirrors it: r̃ ≤ 1/1.10 and q3 ≤ 1/1.05; refuted at ≥ 0.97.
There is no confidence level to spend under sequential seeds: more passes only make it harder.
The effect shown is the mean of the per-pass medians with its 95 % t-interval over passes.

`Both(a, b)`: reproduced iff both are, not_reproduced iff both are, else inconclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlbench.core.verdict import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Evidence, mean_ci

NULL_BAND = (0.97, 1.03)  # two identical networks must time within this in every pass


def noise_reason(m, null: str) -> str | None:
    """Why the timings of this run cannot decide anything (None when the null arm is quiet).
    Timings at more than one CPU thread are refused outright: the process clock then counts
    what every thread spends, spinning included, and identical networks can still time alike
    (in a 2-thread sweep the null held while 1:12 G1 came out 7× slower)."""
    threads = max(int(t) for t in m[null].get("cpu_threads", [1]))
    if threads > 1:
        return (f"timing at {threads} CPU threads cannot decide: rerun at one thread (--threads 1; "
                "a sweep gets one thread per job with --jobs 2 on 2 cores)")
    lo, hi = NULL_BAND
    for k, r in enumerate(float(v) for v in m[null]["ratio"]):
        if not lo <= r <= hi:
            return (f"timing too noisy: null ratio {r:.3f} in pass {k + 1} (two identical networks must "
                    f"time within {lo:g}–{hi:g})")
    return None


def _summary(m, arm: str, metric: str) -> dict:
    values = [float(v) for v in m[arm][metric]]
    return {**mean_ci(values).as_dict(), "per_pass": values}


@dataclass(frozen=True)
class EveryPass:
    arm: str
    null: str
    direction: str = "greater"  # "greater": the variant is slower; "less": faster
    reproduce_at: float = 1.10
    iqr_at: float | None = 1.05  # None: the median alone decides
    refute_at: float = 1.03
    metric: str = "ratio"
    reported: tuple[str, ...] = ()  # arms shown beside it in the evidence (same metric)

    def arm_keys(self) -> tuple[str, ...]:
        return (self.arm, self.null, *self.reported)

    def scaled(self, looks: int) -> "EveryPass":
        return self  # an every-pass rule has no error rate to split over looks

    def _beyond(self, x: float, bound: float) -> bool:
        return x >= bound if self.direction == "greater" else x <= bound

    def _short(self, x: float, bound: float) -> bool:
        return x <= bound if self.direction == "greater" else x >= bound

    def __call__(self, m) -> Evidence:
        medians = [float(v) for v in m[self.arm][self.metric]]
        near_key = f"{self.metric}_{'q1' if self.direction == 'greater' else 'q3'}"
        near = [float(v) for v in m[self.arm][near_key]] if self.iqr_at is not None else medians
        op = "≥" if self.direction == "greater" else "≤"
        back = "≤" if self.direction == "greater" else "≥"
        iqr = f" and the IQR's {'lower' if self.direction == 'greater' else 'upper'} end {op} {self.iqr_at:.3g}" \
            if self.iqr_at is not None else ""
        text = (f"{self.metric} of {self.arm}: median over rounds {op} {self.reproduce_at:.3g}{iqr} in every pass "
                f"(not reproduced: {back} {self.refute_at:.3g} in every pass), if the null ratio of {self.null} "
                f"lies in [{NULL_BAND[0]:g}, {NULL_BAND[1]:g}] in every pass")
        arms = {f"{a}:{self.metric}": _summary(m, a, self.metric) for a in (self.arm, *self.reported)}
        arms[f"{self.null}:ratio"] = _summary(m, self.null, "ratio")
        iv = mean_ci(medians)
        name = f"median {self.metric} of {self.arm} (mean over passes)"
        noisy = noise_reason(m, self.null)
        if noisy is not None or any(math.isnan(v) for v in medians + near):
            reason = noisy or "NaN ratios: these passes cannot decide"
            return Evidence(INCONCLUSIVE, text, iv.mean, (iv.low, iv.high), iv.n, arms, effect_name=name,
                            reason=reason)
        per_pass = ", ".join(f"{v:.3f}" for v in medians)
        if all(self._beyond(r, self.reproduce_at) and self._beyond(q, self.iqr_at or self.reproduce_at)
               for r, q in zip(medians, near)):
            verdict, reason = REPRODUCED, None
        elif all(self._short(r, self.refute_at) for r in medians):
            verdict, reason = NOT_REPRODUCED, None
        else:
            verdict = INCONCLUSIVE
            reason = (f"medians per pass {per_pass}" + (f", IQR near ends {', '.join(f'{v:.3f}' for v in near)}"
                                                        if self.iqr_at is not None else "")
                      + f": neither all {op} {self.reproduce_at:.3g} nor all {back} {self.refute_at:.3g}")
        return Evidence(verdict, text, iv.mean, (iv.low, iv.high), iv.n, arms, effect_name=name, reason=reason)


@dataclass(frozen=True)
class Both:
    first: EveryPass
    second: EveryPass

    def arm_keys(self) -> tuple[str, ...]:
        return (*self.first.arm_keys(), *self.second.arm_keys())

    def scaled(self, looks: int) -> "Both":
        return self

    def __call__(self, m) -> Evidence:
        parts = [self.first(m), self.second(m)]
        verdicts = {p.verdict for p in parts}
        verdict = REPRODUCED if verdicts == {REPRODUCED} else NOT_REPRODUCED if verdicts == {NOT_REPRODUCED} \
            else INCONCLUSIVE
        reasons = sorted({p.reason for p in parts if p.reason})
        noisy = [r for r in reasons if r.startswith("timing ")]  # the gate's reasons
        if verdict != INCONCLUSIVE:
            reason = None
        elif noisy:
            reason = noisy[0]
        else:
            reason = "; ".join(f"part {i + 1} {p.verdict}" + (f": {p.reason}" if p.reason else "")
                               for i, p in enumerate(parts)) + " (both must agree)"
        head = parts[0]
        arms = {**parts[0].arms, **parts[1].arms}
        return Evidence(verdict, " AND ".join(p.statement for p in parts), head.effect, head.ci, head.n, arms,
                        [p.as_dict() for p in parts], effect_name=head.effect_name, reason=reason)
