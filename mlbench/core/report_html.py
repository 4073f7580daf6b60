"""The HTML report: one self-contained page (plots embedded as data URIs), everything escaped."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

from mlbench.core.results import Group, ci_text, num, pivot, provenance_text, runs_text
from mlbench.core.summary import evidence_text, paper_text, verdict_label

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
.reproduced{color:#176b17;font-weight:bold}.not_reproduced{color:#a11;font-weight:bold}
.inconclusive{color:#a60;font-weight:bold}.smoke{color:#888;font-style:italic}.old{opacity:.7}img{max-width:100%;border:1px solid #eee}
code{background:#f4f4f4;padding:1px 4px;word-break:break-all}.prov{color:#555;font-size:90%}
.wide{overflow-x:auto}.nowrap{white-space:nowrap}"""
EMBEDDED_RUNS = 3  # plots embedded for the latest runs of each group; older ones are linked


def _verdict(v: str) -> str:
    return f'<span class="{escape(v)}">{escape(verdict_label(v))}</span>'


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<div class="wide"><table><tr>{th}</tr>{body}</table></div>'


def _img(path: Path) -> str:
    try:
        data = base64.b64encode(path.read_bytes()).decode()
    except OSError:
        return f"<p>missing plot {escape(str(path))}</p>"
    return f'<p><img alt="{escape(path.name)}" src="data:image/png;base64,{data}"></p>'


def _group(g: Group) -> str:
    cls = "" if g.current else ' class="old"'
    tag = "" if g.current else f" — older version {g.version} (not compared with current runs)"
    parts = [f"<section{cls}><h2>{escape(g.experiment)} (v{g.version}){escape(tag)}</h2>",
             f"<p>{escape(g.summary)} <i>({escape(g.citation)})</i></p>"]
    head = ["run id", *g.swept, "profile", "seeds", "verdict", "headline effect", "95% CI", "date", "commit"]
    rows = []
    for r in g.runs:
        vals = g.values(r)
        rows.append([f'<a href="#{escape(r.run_id)}">{escape(r.run_id)}</a>', *[escape(str(vals[k])) for k in g.swept],
                     escape(r.profile), str(r.seeds), _verdict(r.verdict), escape(num(r.effect)), escape(ci_text(r.ci)),
                     escape(r.provenance.get("date", "")), escape(r.provenance.get("commit", ""))])
    parts.append(_table(head, rows))
    p = pivot(g)
    if p:
        rk, ck, rvals, cvals, cells = p
        parts.append(f"<p>Pivot: headline effect by {escape(rk)}" + (f" × {escape(ck)}" if ck else "") + "</p>")
        parts.append(_table([rk, *cvals], [[escape(rv), *[escape(cells.get((rv, cv), "")) for cv in cvals]]
                                           for rv in rvals]))
    for i, r in enumerate(reversed(g.runs)):
        smoke = "" if r.decides else " — smoke profile: plumbing only, not verdicts"
        parts.append(f'<h3 id="{escape(r.run_id)}">run {escape(r.run_id)} ({escape(r.profile)}, {r.seeds} seeds'
                     f'){escape(smoke)}</h3><p class="prov">{escape(provenance_text(r.provenance))}<br>'
                     f'recreate: <code>{escape(r.command)}</code></p><ul>')
        parts += [f"<li>{_verdict(c['verdict'])} — {escape(c['text'])} <i>({escape(c['citation'])})</i>: "
                  f"{escape(c.get('test', ''))}; {escape(evidence_text(c))}"
                  + (f"<br><b>{escape(paper_text(c))}</b>" if paper_text(c) else "") + "</li>"
                  for c in r.claims]
        parts.append("</ul>")
        for plot in r.plots:
            path = r.path / "plots" / plot
            parts.append(_img(path) if i < EMBEDDED_RUNS else f'<p><a href="{escape(path.as_uri())}">{escape(plot)}</a></p>')
    parts.append("</section>")
    return "\n".join(parts)


def _summary(groups: list[Group]) -> str:
    from mlbench.core.report import SUMMARY_HEAD, summary_rows

    rows = [[f'<a class="nowrap" href="#{escape(r["run_id"])}">{escape(r["experiment"])}</a>', escape(r["claim"]),
             _verdict(r["verdict"]), escape(r["paper vs measured"]), escape(str(r["seeds"])), escape(r["profile"])]
            for r in summary_rows(groups)]
    return ("<h2>Summary</h2><p>Latest run of each experiment (of its strongest profile); smoke runs test "
            "the plumbing only.</p>" + _table(list(SUMMARY_HEAD), rows))


def html(groups: list[Group], root: Path) -> str:
    body = "\n".join(_group(g) for g in groups)
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>mlbench report</title>"
            f"<style>{STYLE}</style></head><body><h1>mlbench report</h1>"
            f"<p>{runs_text(groups)} under {escape(str(root))}</p>{_summary(groups)}\n{body}</body></html>\n")
