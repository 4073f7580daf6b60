"""The end of a run: claims judged on the measurements, then summary.json, metrics.jsonl,
table.csv / table-<name>.csv and table.md written (each atomically)."""

from __future__ import annotations

import json
from typing import Any

from mlbench.core import store
from mlbench.core.context import Context
from mlbench.core.spec import RunSpec, claims_of, version_of


def finish(spec: RunSpec, ctx: Context, measurements: dict[str, Any], *,
           claims: list[dict[str, Any]] | None = None, sequential: dict[str, Any] | None = None) -> dict[str, Any]:
    """Judge (unless `claims` were judged already, by a sequence of looks) and write everything."""
    if claims is None:
        claims = [c.judge(measurements, decides=spec.decides) for c in claims_of(spec.module, spec.cfg)]
    head = claims[0]
    summary = {
        "experiment": spec.experiment, "experiment_version": version_of(spec.module),
        "run_id": spec.run_id, "profile": spec.profile, "seeds": len(ctx.seeds), "device": spec.device,
        "decides": spec.decides,
        "verdict": head["verdict"],
        "headline": {"claim": head["id"], "test": head["test"], "effect": head["effect"],
                     "effect_name": head["effect_name"], "ci": head["ci"], "reason": head["reason"]},
        "claims": claims,
        **({"sequential": sequential} if sequential else {}),
        "measurements": measurements,
        "tables": [t.name for t in ctx.tables], "plots": ctx.plots,
    }
    run_dir = spec.run_dir
    lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in ctx.records)
    store.atomic_write_text(run_dir / "metrics.jsonl", lines)
    if ctx.tables:
        store.atomic_write_text(run_dir / "table.csv", ctx.tables[0].csv())
        for extra in ctx.tables[1:]:
            store.atomic_write_text(run_dir / f"table-{extra.name}.csv", extra.csv())
    store.atomic_write_text(run_dir / "table.md", table_md(spec, ctx, claims))
    store.atomic_write_json(run_dir / "summary.json", summary)
    return summary


def num(x: Any) -> str:
    """A number for people: integers as integers, else 4 significant digits."""
    if x is None:
        return "-"
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def ci_text(ci: list[float] | None) -> str:
    return f"[{num(ci[0])}, {num(ci[1])}]" if ci else "-"


def verdict_label(verdict: str) -> str:
    return "smoke (not a verdict)" if verdict == "smoke" else verdict


def paper_text(claim: dict[str, Any]) -> str | None:
    """'paper 16 Var(q·k) ... (§3.2.1, confirmed); ours 16.1', or None without a paper figure."""
    paper = claim.get("paper")
    if not paper:
        return None
    value = num(paper["value"]) if isinstance(paper["value"], float) else str(paper["value"])
    where = paper["where"] + ("" if paper.get("confirmed") else ", not confirmed from the paper")
    text = f"paper: {value} {paper['unit']} ({where})"
    if paper.get("ours"):
        text += f"; ours: {num(paper['ours']['value'])}"
    elif claim.get("effect") is not None:
        text += f"; ours ({claim.get('effect_name') or 'effect'}): {num(claim['effect'])}"
    return text + (f". {paper['note']}" if paper.get("note") else "")


def evidence_text(claim: dict[str, Any], named: bool = True) -> str:
    """The evidence of a claim in one line: effect (named), CI, seeds, and why it is not decided."""
    name = (claim.get("effect_name") or "effect") if named else "effect"
    parts = [f"{name} {num(claim.get('effect'))}, CI {ci_text(claim.get('ci'))}", f"{claim.get('seeds', '?')} seeds"]
    if claim.get("decided_at_seeds"):
        parts.append(f"decided at {claim['decided_at_seeds']} seeds")
    if claim.get("reason"):
        parts.append(f"why: {claim['reason']}")
    return "; ".join(parts)


def table_md(spec: RunSpec, ctx: Context, claims: list[dict[str, Any]]) -> str:
    scale = "" if spec.decides else " — smoke profile: plumbing only, its verdicts are not results"
    parts = [f"# {spec.experiment} — run {spec.run_id}", "",
             f"profile `{spec.profile}`, {len(ctx.seeds)} seeds, device `{spec.device}`{scale}", ""]
    parts += [t.markdown() for t in ctx.tables]
    parts += ["### Verdicts", "", "| claim | verdict | evidence | paper vs ours | test |", "|---|---|---|---|---|"]
    for c in claims:
        cells = [f"{c['id']}: {c['text']}", f"**{verdict_label(c['verdict'])}**", evidence_text(c),
                 paper_text(c) or "-", c["test"]]
        parts.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    parts += ["", *[f"![{p}](plots/{p})" for p in ctx.plots], ""]
    return "\n".join(parts)
