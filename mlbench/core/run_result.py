"""One run as data: what `mlbench.run` returns and `mlbench.results` lists.

`summary` is the run's summary.json; `config` and `manifest` are read from its folder when
asked for; `metrics()` is its metrics.jsonl as a pandas DataFrame. In a notebook a RunResult
shows as an HTML table of its verdicts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from mlbench.core import store
from mlbench.core.errors import UsageError
from mlbench.core.summary import ci_text, evidence_text, num, verdict_label

VERDICT_COLOUR = {"reproduced": "#176b17", "not_reproduced": "#a11", "inconclusive": "#a60", "smoke": "#888"}


@dataclass(repr=False)
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    already_complete: bool = True
    seconds: float = 0.0  # of this call (0 when the run was found complete)
    threads: int | None = None  # the torch CPU threads the (stored) run used: bitwise equality needs the same

    # -- what a reader asks first ---------------------------------------------------------
    @property
    def experiment(self) -> str:
        return self.summary.get("experiment", self.run_dir.parent.name)

    @property
    def run_id(self) -> str:
        return self.summary.get("run_id", self.run_dir.name)

    @property
    def verdict(self) -> str | None:
        """The headline claim's verdict ('smoke' for a smoke run: plumbing, not a result)."""
        return self.summary.get("verdict")

    @property
    def claims(self) -> list[dict[str, Any]]:
        return list(self.summary.get("claims", []))

    @property
    def config(self) -> dict[str, Any]:
        """The experiment's resolved config fields (config.json's `config`)."""
        return dict(store.read_json(self.run_dir / "config.json").get("config", {}))

    @property
    def manifest(self) -> dict[str, Any]:
        return store.read_json(self.run_dir / "manifest.json")

    # -- as rows and frames ---------------------------------------------------------------
    def row(self) -> dict[str, Any]:
        """One flat record: identity, headline claim, effect and CI, each claim's verdict."""
        s, head = self.summary, self.summary.get("headline", {})
        low, high = head.get("ci") or (None, None)
        return {"experiment": self.experiment, "experiment_version": s.get("experiment_version"),
                "run_id": self.run_id, "profile": s.get("profile"), "seeds": s.get("seeds"),
                "device": s.get("device"), "decides": s.get("decides", s.get("profile") != "smoke"),
                "verdict": self.verdict, "headline": head.get("claim"), "effect_name": head.get("effect_name"),
                "effect": head.get("effect"), "ci_low": low, "ci_high": high, "path": str(self.run_dir),
                **{f"verdict.{c['id']}": c["verdict"] for c in self.claims}}

    def claim_rows(self) -> list[dict[str, Any]]:
        """One record per claim: the run's identity, then the claim's verdict, effect and CI."""
        ident = {"experiment": self.experiment, "run_id": self.run_id, "profile": self.summary.get("profile")}
        rows = []
        for c in self.claims:
            low, high = c.get("ci") or (None, None)
            rows.append({**ident, "claim": c["id"], "verdict": c["verdict"], "effect_name": c.get("effect_name"),
                         "effect": c.get("effect"), "ci_low": low, "ci_high": high, "seeds": c.get("seeds"),
                         "test": c.get("test"), "reason": c.get("reason"), "text": c.get("text")})
        return rows

    def metrics_records(self) -> list[dict[str, Any]]:
        """metrics.jsonl, one dict per line (NaN and Infinity as floats)."""
        path = self.run_dir / "metrics.jsonl"
        try:
            return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        except FileNotFoundError:
            raise store.RunStoreError(f"missing file: {path}") from None
        except json.JSONDecodeError as exc:
            raise store.RunStoreError(f"corrupt JSON in {path}: {exc}") from None

    def metrics(self):
        """metrics.jsonl as a pandas DataFrame: one row per logged line, a column per field
        (missing where a line lacks it)."""
        return pandas().DataFrame.from_records(self.metrics_records())

    # -- display --------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"RunResult({self.experiment}/{self.run_id}, verdict={self.verdict})"

    def _repr_html_(self) -> str:
        s = self.summary
        rows = "".join(f"<tr><td>{escape(c['id'])}</td><td>{_verdict_html(c['verdict'])}</td>"
                       f"<td>{escape(num(c.get('effect')))}</td><td>{escape(ci_text(c.get('ci')))}</td>"
                       f"<td>{escape(evidence_text(c))}</td></tr>" for c in self.claims)
        scale = "" if s.get("decides", True) else " — smoke profile: plumbing, its verdicts are not results"
        return (f"<div><b>{escape(self.experiment)}</b> run <code>{escape(self.run_id)}</code>: "
                f"{escape(str(s.get('profile')))} profile, {escape(str(s.get('seeds')))} seeds, device "
                f"{escape(str(s.get('device')))}{escape(scale)}<br>headline verdict: "
                f"{_verdict_html(self.verdict or '-')}"
                f"<table><tr><th>claim</th><th>verdict</th><th>effect</th><th>95% CI</th><th>evidence</th></tr>"
                f"{rows}</table><small>{escape(str(self.run_dir))}</small></div>")


def _verdict_html(verdict: str) -> str:
    colour = VERDICT_COLOUR.get(verdict, "#222")
    return f'<span style="color:{colour};font-weight:bold">{escape(verdict_label(verdict))}</span>'


def pandas():
    """pandas, or one clear line naming the extra that installs it."""
    try:
        import pandas as pd
    except ImportError:
        raise UsageError("results as DataFrames need pandas: pip install 'mlbench[pandas]'") from None
    return pd
