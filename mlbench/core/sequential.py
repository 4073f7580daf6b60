"""Sequential seeds (`--seeds auto`): add seeds in batches until every claim is decided.

Looking at the data after each batch and stopping once a confidence interval clears its bound
("optional stopping") inflates the false-positive rate: every look is another chance for noise
to cross. The looks are fixed in advance (`schedule`) and the error rate is spent across them
(Bonferroni alpha spending): with K looks each test runs at level alpha/K, so by the union
bound the chance of any wrong decision over all K looks stays at most alpha, whenever the run
stops. A claim is decided at the first look at which its verdict is reproduced or
not_reproduced, and keeps that verdict; the run stops when every claim is decided or the
seed budget is spent. `tests/test_sequential.py` checks the false-positive rate by simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from mlbench.core.verdict import INCONCLUSIVE, Claim, Measurements


def schedule(start: int, max_seeds: int, batch: int | None = None) -> list[int]:
    """Seed counts at each look: start, start + batch, ..., max_seeds (batch: half the start)."""
    step = batch or max(1, start // 2)
    looks = list(range(start, max_seeds, step))
    return looks + [max_seeds] if not looks or looks[-1] != max_seeds else looks


@dataclass
class Looks:
    """The decisions of a sequence of looks at the claims (one `look` per batch of seeds)."""
    claims: Sequence[Claim]
    looks: list[int]  # planned seed counts
    decided: dict[str, dict[str, Any]] = field(default_factory=dict)  # claim id -> judged claim
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.decided) == len(self.claims)

    def look(self, seeds: int, m: Measurements) -> list[dict[str, Any]]:
        """Judge every claim at level alpha/K on this look's measurements; newly decided claims
        keep their verdict. Returns the judged claims of this look."""
        judged = [c.judge(m, looks=len(self.looks)) for c in self.claims]
        for c in judged:
            if c["id"] not in self.decided and c["verdict"] != INCONCLUSIVE:
                self.decided[c["id"]] = {**c, "decided_at_seeds": seeds, "decided_at_look": len(self.history) + 1}
        self.history.append({"look": len(self.history) + 1, "seeds": seeds,
                             "claims": {c["id"]: {"verdict": c["verdict"], "effect": c["effect"], "ci": c["ci"]}
                                        for c in judged}})
        return judged

    def final(self, last: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each claim's verdict: from the look that decided it, else the last look (undecided)."""
        seeds = self.history[-1]["seeds"]
        out = []
        for c in last:
            if c["id"] in self.decided:
                out.append(self.decided[c["id"]])
            else:
                reason = f"undecided after {seeds} seeds (the budget); last look: {c['reason']}"
                out.append({**c, "reason": reason, "decided_at_seeds": None, "decided_at_look": None})
        return out

    def record(self, max_seeds: int) -> dict[str, Any]:
        stopped = ("every claim decided" if self.done else
                   "seed budget spent" if self.history and self.history[-1]["seeds"] >= max_seeds else "running")
        return {"rule": "Bonferroni alpha spending over the planned looks: each look tests at alpha/K",
                "planned_looks": self.looks, "max_seeds": max_seeds, "stopped": stopped, "looks": self.history}
