"""The report: every complete run under a results root, as md, html, json or csv."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from mlbench.core import store
from mlbench.core.errors import RunStoreError
from mlbench.core.results import Group, ci_text, collect, group, num, pivot, runs_text
from mlbench.core.summary import evidence_text, paper_text, verdict_label

FORMATS = ("md", "html", "json", "csv")


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
                    "profile": r.profile, "seeds": r.seeds, "verdict": f"**{verdict_label(r.verdict)}**",
                    "headline effect": num(r.effect), "95% CI": ci_text(r.ci)}
            out.append("| " + " | ".join(str(vals[h]) for h in head) + " |")
        p = pivot(g)
        if p:
            rk, ck, rvals, cvals, cells = p
            out += ["", f"Pivot: headline effect by `{rk}`" + (f" x `{ck}`" if ck else ""), "",
                    "| " + rk + " | " + " | ".join(cvals) + " |", "|---|" + "---|" * len(cvals)]
            out += ["| " + rv + " | " + " | ".join(cells.get((rv, cv), "") for cv in cvals) + " |" for rv in rvals]
        latest = g.latest
        kind = "" if latest.decides else " — smoke profile: plumbing only, not verdicts"
        out += ["", f"Claims of the latest {latest.profile} run ({latest.run_id}){kind}:", ""]
        for c in latest.claims:
            paper = paper_text(c)
            out.append(f"- **{verdict_label(c['verdict'])}** — {c['text']} ({c['citation']}); {evidence_text(c)}"
                       + (f"; {paper}" if paper else ""))
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
