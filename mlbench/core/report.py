"""Collect complete runs under a results root and render the report (md, html, json, csv).

Runs are grouped per experiment and experiment version: runs of an older version are shown
apart and never compared with current ones. Within a group, only the config keys that differ
between runs are shown; when one or two keys differ (a sweep), a pivot table of those keys
against the headline effect is added.
"""

from __future__ import annotations

import ast
import csv
import importlib.util
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbench.core import registry, store
from mlbench.core.errors import RunStoreError

FORMATS = ("md", "html", "json", "csv")


@dataclass
class RunRow:
    experiment: str
    run_id: str
    profile: str
    seeds: int
    verdict: str
    effect: float | None
    ci: list[float] | None
    test: str
    version: int
    path: Path
    config: dict[str, Any] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    ended: str = ""


@dataclass
class Group:
    experiment: str
    version: int
    current: bool
    summary: str
    citation: str
    runs: list[RunRow]
    varying: list[str]  # config keys (and profile/seeds) that differ between runs

    def values(self, run: RunRow) -> dict[str, Any]:
        return {k: _get(run, k) for k in self.varying}

    @property
    def swept(self) -> list[str]:
        """The varying config keys, without profile and seeds (which have columns of their own)."""
        return [k for k in self.varying if k not in ("profile", "seeds")]


def runs_text(groups: list[Group]) -> str:
    n = sum(len(g.runs) for g in groups)
    return f"{n} complete run{'' if n == 1 else 's'}"


def current_version(experiment: str) -> int:
    """The experiment module's VERSION, read from its source (no torch import)."""
    spec = importlib.util.find_spec(registry.EXPERIMENTS[experiment])
    if spec is None or spec.origin is None:
        return 1
    for node in ast.parse(Path(spec.origin).read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "VERSION" for t in node.targets):
            return int(ast.literal_eval(node.value))
    return 1


def collect(root: Path, experiment: str | None = None) -> tuple[list[RunRow], list[str]]:
    """Every complete run under `root` (sorted), plus one line per run folder that was skipped."""
    if experiment is not None:
        registry.check_name(experiment)
    if not root.is_dir():
        raise RunStoreError(f"results root not found: {root}")
    rows: list[RunRow] = []
    skipped: list[str] = []
    for manifest_path in sorted(root.glob("*/*/manifest.json")):
        run_dir = manifest_path.parent
        if experiment and run_dir.parent.name != experiment:
            continue
        try:
            manifest = store.read_json(manifest_path)
            if manifest.get("status") != "complete":
                skipped.append(f"{run_dir}: {manifest.get('status')}")
                continue
            rows.append(_row(run_dir, store.read_json(run_dir / "summary.json"),
                             store.read_json(run_dir / "config.json"), manifest))
        except (RunStoreError, KeyError, TypeError, ValueError, AttributeError) as exc:
            skipped.append(f"{run_dir}: unreadable ({exc})")
    return rows, skipped


def _row(run_dir: Path, s: dict[str, Any], cfg: dict[str, Any], manifest: dict[str, Any]) -> RunRow:
    head = s["headline"]
    return RunRow(s["experiment"], s["run_id"], s["profile"], int(s["seeds"]), s["verdict"],
                  head.get("effect"), head.get("ci"), head.get("test", ""), int(s.get("experiment_version", 1)),
                  run_dir, dict(cfg.get("config", {})), list(s.get("claims", [])), list(s.get("plots", [])),
                  str(manifest.get("ended") or ""))


def group(rows: list[RunRow]) -> list[Group]:
    groups = []
    by_key: dict[tuple[str, int], list[RunRow]] = {}
    for r in rows:
        by_key.setdefault((r.experiment, r.version), []).append(r)
    for (name, version), runs in sorted(by_key.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        known = name in registry.EXPERIMENTS
        info = registry.info(name) if known else None
        current = known and version == current_version(name)
        keys = ["profile", "seeds", *dict.fromkeys(k for r in runs for k in r.config)]
        varying = [k for k in keys if len({json.dumps(_get(r, k), sort_keys=True) for r in runs}) > 1]
        groups.append(Group(name, version, current, info.summary if info else "", info.citation if info else "",
                            sorted(runs, key=lambda r: (r.ended, r.run_id)), varying))
    return groups


def _get(run: RunRow, key: str) -> Any:
    return {"profile": run.profile, "seeds": run.seeds}.get(key, run.config.get(key))


def pivot(g: Group) -> tuple[str, str | None, list[str], list[str], dict[tuple[str, str], str]] | None:
    """(row key, column key, row values, column values, cells) when one or two keys vary."""
    if not 1 <= len(g.varying) <= 2 or len(g.runs) < 2:
        return None
    rk, ck = g.varying[0], (g.varying[1] if len(g.varying) == 2 else None)
    fmt = lambda v: ",".join(map(str, v)) if isinstance(v, list) else str(v)  # noqa: E731
    rvals = list(dict.fromkeys(fmt(_get(r, rk)) for r in g.runs))
    cvals = list(dict.fromkeys(fmt(_get(r, ck)) for r in g.runs)) if ck else ["effect"]
    cells = {}
    for r in g.runs:
        cells[(fmt(_get(r, rk)), fmt(_get(r, ck)) if ck else "effect")] = f"{num(r.effect)} ({r.verdict})"
    return rk, ck, rvals, cvals, cells


def num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def ci_text(ci: list[float] | None) -> str:
    return f"[{num(ci[0])}, {num(ci[1])}]" if ci else "-"


def markdown(groups: list[Group], root: Path) -> str:
    out = ["# mlbench report", "", f"{runs_text(groups)} under `{root}`.", ""]
    for g in groups:
        tag = "" if g.current else f" — older version {g.version} (not compared with current runs)"
        out += [f"## {g.experiment} (v{g.version}){tag}", "", f"{g.summary} *({g.citation})*", ""]
        head = ["run id", *g.varying, "profile", "seeds", "verdict", "headline effect", "95% CI"]
        head = list(dict.fromkeys(head))
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in g.runs:
            vals = {**g.values(r), "run id": f"[{r.run_id}]({r.experiment}/{r.run_id}/table.md)",
                    "profile": r.profile, "seeds": r.seeds, "verdict": f"**{r.verdict}**",
                    "headline effect": num(r.effect), "95% CI": ci_text(r.ci)}
            out.append("| " + " | ".join(str(vals[h]) for h in head) + " |")
        p = pivot(g)
        if p:
            rk, ck, rvals, cvals, cells = p
            out += ["", f"Pivot: headline effect by `{rk}`" + (f" x `{ck}`" if ck else ""), "",
                    "| " + rk + " | " + " | ".join(cvals) + " |", "|---|" + "---|" * len(cvals)]
            out += ["| " + rv + " | " + " | ".join(cells.get((rv, cv), "") for cv in cvals) + " |" for rv in rvals]
        latest = g.runs[-1]
        out += ["", f"Claims of the latest run ({latest.run_id}):", ""]
        out += [f"- **{c['verdict']}** — {c['text']} ({c['citation']}); effect {num(c.get('effect'))}, "
                f"CI {ci_text(c.get('ci'))}" for c in latest.claims]
        out += ["", "Plots: " + ", ".join(f"[{p}]({latest.experiment}/{latest.run_id}/plots/{p})" for p in latest.plots), ""]
    return "\n".join(out) + "\n"


def as_json(groups: list[Group]) -> str:
    return json.dumps([{"experiment": g.experiment, "version": g.version, "current": g.current,
                        "claim": g.summary, "citation": g.citation, "varying": g.varying,
                        "runs": [{"run_id": r.run_id, "profile": r.profile, "seeds": r.seeds, "verdict": r.verdict,
                                  "effect": r.effect, "ci": r.ci, "values": g.values(r), "claims": r.claims,
                                  "path": str(r.path)} for r in g.runs]} for g in groups], indent=2) + "\n"


def as_csv(groups: list[Group]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["experiment", "version", "current", "run_id", "profile", "seeds", "verdict", "effect",
                "ci_low", "ci_high", "varying"])
    for g in groups:
        for r in g.runs:
            lo, hi = r.ci if r.ci else (None, None)
            w.writerow([g.experiment, g.version, g.current, r.run_id, r.profile, r.seeds, r.verdict, r.effect, lo, hi,
                        json.dumps(g.values(r), sort_keys=True)])
    return buf.getvalue()


def write_report(root: Path, experiment: str | None = None, fmt: str = "md") -> tuple[Path, list[Group], list[str]]:
    if fmt not in FORMATS:
        raise RunStoreError(f"unknown report format '{fmt}': use one of {', '.join(FORMATS)}")
    rows, skipped = collect(root, experiment)
    groups = group(rows)
    if fmt == "html":
        from mlbench.core.report_html import html

        text = html(groups, root)
    else:
        text = {"md": lambda: markdown(groups, root), "json": lambda: as_json(groups), "csv": lambda: as_csv(groups)}[fmt]()
    path = root / f"REPORT.{fmt}"
    store.atomic_write_text(path, text)
    return path, groups, skipped
