"""`mlbench.results(root)`: every complete run under a results root, as data.

    runs = mlbench.results("results")
    runs.to_pandas()                 # one row per run: identity, headline effect and CI, verdicts, config.<key>
    runs.to_pandas(claims=True)      # one row per (run, claim)
    runs[0].metrics()                # that run's metrics.jsonl as a DataFrame

`to_dataset()` gives the same rows as a Hugging Face `datasets.Dataset`; there the config is one
JSON text column (`config`), because Arrow needs one type per column and experiments use the
same key names for values of different types.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mlbench.core import store
from mlbench.core.results import collect
from mlbench.core.run_result import RunResult, _verdict_html, pandas
from mlbench.core.summary import ci_text, num


class Results(Sequence):
    """The complete runs under a root (oldest first), and the folders that were skipped."""

    def __init__(self, runs: list[RunResult], skipped: list[str], root: Path) -> None:
        self.runs, self.skipped, self.root = runs, skipped, root

    def __getitem__(self, i):
        return self.runs[i]

    def __len__(self) -> int:
        return len(self.runs)

    def rows(self, claims: bool = False) -> list[dict[str, Any]]:
        """One record per run (with `config.<key>` columns), or per (run, claim)."""
        if claims:
            return [row for r in self.runs for row in r.claim_rows()]
        return [{**r.row(), **{f"config.{k}": v for k, v in r.config.items()}} for r in self.runs]

    def to_pandas(self, claims: bool = False):
        """A pandas DataFrame of `rows(claims)`; columns a run lacks are missing (NaN) there."""
        rows = self.rows(claims)
        return pandas().DataFrame.from_records(rows, columns=_columns(rows))

    def to_dataset(self, claims: bool = False):
        """A `datasets.Dataset` of the same rows, the config as one JSON text column."""
        from datasets import Dataset

        rows = self.rows(claims)
        if not claims:
            rows = [{k: v for k, v in row.items() if not k.startswith("config.")}
                    | {"config": json.dumps(r.config, sort_keys=True)} for row, r in zip(rows, self.runs)]
        cols = _columns(rows)
        return Dataset.from_dict({c: [row.get(c) for row in rows] for c in cols})

    def __repr__(self) -> str:
        return f"Results({len(self.runs)} complete runs under {self.root})"

    def _repr_html_(self) -> str:
        from html import escape

        head = "".join(f"<th>{h}</th>" for h in ("experiment", "run id", "profile", "seeds", "verdict",
                                                   "headline effect", "95% CI"))
        body = "".join(f"<tr><td>{escape(r.experiment)}</td><td>{escape(r.run_id)}</td>"
                       f"<td>{escape(str(r.summary.get('profile')))}</td><td>{escape(str(r.summary.get('seeds')))}</td>"
                       f"<td>{_verdict_html(r.verdict or '-')}</td>"
                       f"<td>{escape(num(r.summary.get('headline', {}).get('effect')))}</td>"
                       f"<td>{escape(ci_text(r.summary.get('headline', {}).get('ci')))}</td></tr>" for r in self.runs)
        return f"<div>{escape(repr(self))}<table><tr>{head}</tr>{body}</table></div>"


def results(root: str | Path | None = None, experiment: str | None = None) -> Results:
    """Every complete run under `root` (default ./results or $MLBENCH_RESULTS), optionally of
    one experiment; incomplete or unreadable folders are listed in `.skipped`."""
    from mlbench.core.spec import results_root

    path = results_root(root)
    rows, skipped = collect(path, experiment)
    runs = [RunResult(row.path, store.read_json(row.path / "summary.json"))
            for row in sorted(rows, key=lambda r: (r.ended, r.experiment, r.run_id))]
    return Results(runs, skipped, path)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for row in rows for k in row))
