"""The end of a run: claims judged on the measurements, then summary.json, metrics.jsonl,
table.csv / table-<name>.csv and table.md written (each atomically)."""

from __future__ import annotations

import json
from typing import Any

from mlbench.core import store
from mlbench.core.context import Context
from mlbench.core.spec import RunSpec, claims_of, version_of


def finish(spec: RunSpec, ctx: Context, measurements: dict[str, Any]) -> dict[str, Any]:
    claims = [c.judge(measurements) for c in claims_of(spec.module, spec.cfg)]
    head = claims[0]
    summary = {
        "experiment": spec.experiment, "experiment_version": version_of(spec.module),
        "run_id": spec.run_id, "profile": spec.profile, "seeds": spec.seeds, "device": spec.device,
        "verdict": head["verdict"],
        "headline": {"claim": head["id"], "test": head["test"], "effect": head["effect"], "ci": head["ci"]},
        "claims": claims,
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


def _fmt_ci(ci: list[float] | None) -> str:
    return f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "-"


def table_md(spec: RunSpec, ctx: Context, claims: list[dict[str, Any]]) -> str:
    parts = [f"# {spec.experiment} — run {spec.run_id}", "",
             f"profile `{spec.profile}`, {spec.seeds} seeds, device `{spec.device}`", ""]
    parts += [t.markdown() for t in ctx.tables]
    parts += ["### Verdicts", "", "| claim | verdict | test | effect | 95% CI |", "|---|---|---|---|---|"]
    for c in claims:
        eff = "-" if c["effect"] is None else f"{c['effect']:.4g}"
        text, test = (c["text"].replace("|", "\\|"), c["test"].replace("|", "\\|"))
        parts.append(f"| {c['id']}: {text} | **{c['verdict']}** | {test} | {eff} | {_fmt_ci(c['ci'])} |")
    parts += ["", *[f"![{p}](plots/{p})" for p in ctx.plots], ""]
    return "\n".join(parts)
