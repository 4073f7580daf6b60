"""The report: every complete run under a results root, as md, html, json or csv.

It opens with a summary (one row per claim of each experiment's latest run: the latest of its
strongest profile, smoke runs marked as not verdicts), then one section per experiment and
version: its runs with their provenance, a pivot of swept keys, the latest run's claims and
plots, and the command that recreates each run. `--experiment X` writes `REPORT-X.<fmt>`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from mlbench.core import store
from mlbench.core.errors import RunStoreError
from mlbench.core.results import Group, ci_text, collect, group, num, pivot, provenance_text, runs_text
from mlbench.core.summary import evidence_text, paper_text, verdict_label

FORMATS = ("md", "html", "json", "csv")
SUMMARY_HEAD = ("experiment", "claim", "verdict", "paper vs measured", "seeds", "profile")


def paper_vs_measured(claim: dict[str, Any]) -> str:
    """'paper 1024 Var(q·k) ... vs ours 1019' where the paper gives a figure (ours in its units, or
    else our claim's effect, named so), else '-'."""
    paper = claim.get("paper")
    if not paper:
        return "-"
    value = num(paper["value"]) if isinstance(paper["value"], float) else str(paper["value"])
    if paper.get("ours"):  # our figure in the paper's units
        return f"paper {value} {paper['unit']} vs ours {num(paper['ours']['value'])}"
    return f"paper {value} {paper['unit']} vs our effect {num(claim.get('effect'))}"  # the claim's own measure


def summary_rows(groups: list[Group]) -> list[dict[str, Any]]:
    """One row per claim of each current experiment's latest run (see `Group.latest`)."""
    rows = []
    for g in (g for g in groups if g.current):
        latest = g.latest
        for c in latest.claims:
            rows.append({"experiment": g.experiment, "claim": c["id"], "verdict": c["verdict"],
                         "paper vs measured": paper_vs_measured(c), "seeds": c.get("seeds", latest.seeds),
                         "profile": latest.profile, "run_id": latest.run_id})
    return rows


def _md_row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def markdown(groups: list[Group], root: Path) -> str:
    out = ["# mlbench report", "", f"{runs_text(groups)} under `{root}`.", "", "## Summary", "",
           "Latest run of each experiment (of its strongest profile); smoke runs test the plumbing only.", "",
           _md_row(SUMMARY_HEAD), "|" + "---|" * len(SUMMARY_HEAD)]
    out += [_md_row([r["experiment"], r["claim"], f"**{verdict_label(r['verdict'])}**", r["paper vs measured"],
                     r["seeds"], r["profile"]]) for r in summary_rows(groups)]
    out.append("")
    for g in groups:
        out += _md_group(g)
    return "\n".join(out) + "\n"


def _md_group(g: Group) -> list[str]:
    tag = "" if g.current else f" — older version {g.version} (not compared with current runs)"
    out = [f"## {g.experiment} (v{g.version}){tag}", "", f"{g.summary} *({g.citation})*", ""]
    head = ["run id", *g.swept, "profile", "seeds", "verdict", "headline effect", "95% CI", "date", "commit"]
    out += [_md_row(head), "|" + "---|" * len(head)]
    for r in g.runs:
        vals = {**g.values(r), "run id": f"[{r.run_id}]({r.experiment}/{r.run_id}/table.md)",
                "profile": r.profile, "seeds": r.seeds, "verdict": f"**{verdict_label(r.verdict)}**",
                "headline effect": num(r.effect), "95% CI": ci_text(r.ci),
                "date": r.provenance.get("date", ""), "commit": r.provenance.get("commit", "")}
        out.append(_md_row([vals[h] for h in head]))
    p = pivot(g)
    if p:
        rk, ck, rvals, cvals, cells = p
        out += ["", f"Pivot: headline effect by `{rk}`" + (f" x `{ck}`" if ck else ""), "",
                _md_row([rk, *cvals]), "|---|" + "---|" * len(cvals)]
        out += [_md_row([rv, *(cells.get((rv, cv), "") for cv in cvals)]) for rv in rvals]
    latest = g.latest
    kind = "" if latest.decides else " — smoke profile: plumbing only, not verdicts"
    out += ["", f"Claims of the latest {latest.profile} run ({latest.run_id}){kind}:", ""]
    for c in latest.claims:
        paper = paper_text(c)
        out.append(f"- **{verdict_label(c['verdict'])}** — {c['text']} ({c['citation']}); {evidence_text(c)}"
                   + (f"; {paper}" if paper else ""))
    out += ["", f"Provenance: {provenance_text(latest.provenance)}.", "",
            "Plots: " + ", ".join(f"[{p}]({latest.experiment}/{latest.run_id}/plots/{p})" for p in latest.plots), "",
            "Commands that recreate each run:", ""]
    out += [f"- `{r.run_id}`: `{r.command}`" for r in g.runs]
    return out + [""]


def as_json(groups: list[Group]) -> str:
    return json.dumps([{"experiment": g.experiment, "version": g.version, "current": g.current, "claim": g.summary,
                        "citation": g.citation, "varying": g.varying,
                        "runs": [{"run_id": r.run_id, "profile": r.profile, "seeds": r.seeds, "verdict": r.verdict,
                                  "effect": r.effect, "ci": r.ci, "values": g.values(r), "claims": r.claims,
                                  "provenance": r.provenance, "command": r.command, "path": str(r.path)}
                                 for r in g.runs]} for g in groups], indent=2) + "\n"


def as_csv(groups: list[Group]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["experiment", "version", "current", "run_id", "profile", "seeds", "verdict", "effect",
                "ci_low", "ci_high", "varying", "commit", "date", "command"])
    for g in groups:
        for r in g.runs:
            lo, hi = r.ci if r.ci else (None, None)
            w.writerow([g.experiment, g.version, g.current, r.run_id, r.profile, r.seeds, r.verdict, r.effect, lo, hi,
                        json.dumps(g.values(r), sort_keys=True), r.provenance.get("commit", ""),
                        r.provenance.get("date", ""), r.command])
    return buf.getvalue()


def report_path(root: Path, experiment: str | None, fmt: str) -> Path:
    """`REPORT.<fmt>` for everything; `REPORT-<experiment>.<fmt>` for one experiment's report, so
    that it never overwrites the whole one."""
    return root / (f"REPORT-{experiment}.{fmt}" if experiment else f"REPORT.{fmt}")


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
    path = report_path(root, experiment, fmt)
    store.atomic_write_text(path, text)
    return path, groups, skipped
