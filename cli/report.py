"""`mlbench report`: every complete run under the results root, as md, html, json or csv."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import complete_experiment, console, err_console, user_errors, verdict_text
from cli.tables import wrap_name
from mlbench.core import report as reportlib
from mlbench.core import spec as runner


CLAIM_WIDTH = 24  # longer claim ids wrap after a hyphen


def _complete_format(incomplete: str) -> list[str]:
    return [f for f in reportlib.FORMATS if f.startswith(incomplete)]


@user_errors
def report(
    results: Optional[Path] = typer.Option(None, "--results", help="Results root.", show_default="./results or $MLBENCH_RESULTS"),
    fmt: str = typer.Option("md", "--format", "-f", help="Written to <results>/REPORT.<format> "
                            "(REPORT-<experiment>.<format> with --experiment).", metavar="md|html|json|csv",
                            autocompletion=_complete_format),
    experiment: Optional[str] = typer.Option(None, "--experiment", "-e", help="Only this experiment.",
                                             autocompletion=complete_experiment),
) -> None:
    """Write a report of every complete run (md, html, json or csv) and print its tables.

    A summary first (each experiment's latest run of its strongest profile: claims, verdicts,
    paper vs measured), then per experiment its runs with provenance, config differences, sweep
    pivots, claims, plots and the command that recreates each run."""
    root = runner.results_root(results)
    path, groups, skipped = reportlib.write_report(root, experiment, fmt)
    summary_table(groups)
    for g in groups:
        title = f"{g.experiment} v{g.version}" + ("" if g.current else " (older version)")
        table = Table(title=title, title_justify="left")
        for col in ("run id", *g.swept, "profile", "seeds", "verdict", "effect", "95% CI"):
            table.add_column(escape(col), no_wrap=col in ("run id", "effect", "95% CI"), overflow="fold")
        for r in g.runs:
            vals = g.values(r)
            table.add_row(r.run_id, *[escape(str(vals[k])) for k in g.swept],
                          r.profile, str(r.seeds), verdict_text(r.verdict), reportlib.num(r.effect),
                          reportlib.ci_text(r.ci))
        console.print(table)
    for line in skipped:
        err_console.print(f"[dim]skipped {escape(line)}[/]", soft_wrap=True)
    console.print(f"{reportlib.runs_text(groups)}; wrote {escape(str(path))}", soft_wrap=True)


def summary_table(groups) -> None:
    """Per experiment a row (its latest run's profile and seeds), then one row per claim: verdict
    and the paper's figure beside ours. Narrow enough for 80 columns: only the last column wraps."""
    rows = reportlib.summary_rows(groups)
    if not rows:
        return
    table = Table(title="summary: latest run of each experiment (strongest profile)", title_justify="left")
    table.add_column("experiment / claim", no_wrap=True, max_width=CLAIM_WIDTH + 2)
    table.add_column("verdict", min_width=14, max_width=16)
    table.add_column("paper vs measured", overflow="fold")
    current = None
    for r in rows:
        if r["experiment"] != current:
            if current is not None:
                table.add_section()
            current = r["experiment"]
            table.add_row(f"[bold]{r['experiment']}[/]", f"[dim]{r['profile']}, {r['seeds']} seeds[/]", "")
        table.add_row(escape(wrap_name(f"  {r['claim']}", CLAIM_WIDTH, "-").replace("\n", "\n    ")), verdict_text(r["verdict"]), escape(r["paper vs measured"]))
    console.print(table)
