"""Result tables: what `table.md` / `table.csv` hold, and the cells every experiment shares.

Columns of a per-arm statistic are named one way everywhere: `<name>` is the mean over seeds,
`<name>_ci_low` / `<name>_ci_high` its 95 % confidence interval (`mean_ci_cells`).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any, Sequence


def cell_text(value: Any, fmt: str) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return format(value, fmt) if fmt else repr(value)
    return str(value)


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]

    def markdown(self) -> str:
        head = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.columns) + "|"
        body = ["| " + " | ".join(cell_text(r.get(c, ""), ".4g").replace("|", "\\|") for c in self.columns) + " |"
                for r in self.rows]
        return "\n".join([f"### {self.title}", "", head, rule, *body, ""])

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for r in self.rows:
            writer.writerow([cell_text(r.get(c, ""), "") for c in self.columns])
        return buf.getvalue()


def mean_ci_cells(name: str, values: Sequence[float], *, lower: float | None = None,
                  upper: float | None = None) -> dict[str, float]:
    """{name: mean, name_ci_low, name_ci_high} over seeds (NaN seeds make every cell NaN).
    `lower`/`upper` clip the interval to what the quantity can be (a count is never negative)."""
    from mlbench.core.verdict import mean_ci

    iv = mean_ci(values)
    low = iv.low if lower is None or math.isnan(iv.low) else max(iv.low, lower)
    high = iv.high if upper is None or math.isnan(iv.high) else min(iv.high, upper)
    return {name: iv.mean, f"{name}_ci_low": low, f"{name}_ci_high": high}
