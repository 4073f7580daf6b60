"""Verdict tests that read every seed, not a mean (torch-free: the face imports them).

- `EverySeed(metric, arm, op, value)`: an exact statement (no sampling error: the arithmetic of
  a layer at initialisation), so one failing seed refutes it: reproduced iff every seed holds.
- `SignOnEverySeed(metric, treatment, control, direction)`: treatment − control has the claimed
  sign on every seed; on no seed: not reproduced; on some: inconclusive (a seed flipped).
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from mlbench.core.verdict import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, Evidence

OPS = {"==": operator.eq, "<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def _values(m, arm: str, metric: str) -> list[float]:
    try:
        return [float(v) for v in m[arm][metric]]
    except KeyError:
        raise KeyError(f"measurements lack arm {arm!r} metric {metric!r}") from None


@dataclass(frozen=True)
class EverySeed:
    metric: str
    arm: str
    op: str
    value: float

    def arm_keys(self) -> tuple[str, ...]:
        return (self.arm,)

    def __call__(self, m) -> Evidence:
        vals = _values(m, self.arm, self.metric)
        held = sum(OPS[self.op](v, self.value) for v in vals)
        text = f"{self.metric} of {self.arm} {self.op} {self.value:g} on every seed ({held}/{len(vals)})"
        worst = max(vals, key=lambda v: abs(v - self.value)) if vals else math.nan
        arms = {f"{self.arm}:{self.metric}": {"values": vals}}
        if not vals or any(math.isnan(v) for v in vals):
            return Evidence(INCONCLUSIVE, text, worst, None, len(vals), arms, effect_name=f"{self.metric} of {self.arm}",
                            reason="NaN values (a diverged or undefined measurement)")
        verdict = REPRODUCED if held == len(vals) else NOT_REPRODUCED
        return Evidence(verdict, text, worst, None, len(vals), arms,
                        effect_name=f"{self.metric} of {self.arm} (the seed farthest from {self.value:g})",
                        reason=None if verdict == REPRODUCED else f"{len(vals) - held} of {len(vals)} seeds fail")


@dataclass(frozen=True)
class SignOnEverySeed:
    metric: str
    treatment: str
    control: str
    direction: str = "greater"

    def arm_keys(self) -> tuple[str, ...]:
        return (self.treatment, self.control)

    def __call__(self, m) -> Evidence:
        diffs = [t - c for t, c in zip(_values(m, self.treatment, self.metric), _values(m, self.control, self.metric))]
        sign = 1.0 if self.direction == "greater" else -1.0
        held = sum(sign * d > 0 for d in diffs)
        op = ">" if self.direction == "greater" else "<"
        text = f"{self.metric}: {self.treatment} − {self.control} {op} 0 on every seed ({held}/{len(diffs)})"
        name = f"smallest {self.metric} difference in the claimed direction, {self.treatment} − {self.control}"
        arms = {f"{self.treatment}-{self.control}:{self.metric}": {"differences": diffs}}
        if not diffs or any(math.isnan(d) for d in diffs):
            return Evidence(INCONCLUSIVE, text, None, None, len(diffs), arms, effect_name=name,
                            reason="NaN values (a diverged or undefined measurement)")
        worst = min(diffs, key=lambda d: sign * d)
        if held == len(diffs):
            return Evidence(REPRODUCED, text, worst, None, len(diffs), arms, effect_name=name)
        if held == 0:
            return Evidence(NOT_REPRODUCED, text, worst, None, len(diffs), arms, effect_name=name,
                            reason="no seed goes the claimed way")
        return Evidence(INCONCLUSIVE, text, worst, None, len(diffs), arms, effect_name=name,
                        reason=f"{len(diffs) - held} of {len(diffs)} seeds go the other way")
