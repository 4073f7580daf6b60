"""`mlbench report`: every complete run under the results root, as md, html, json or csv."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console, err_console, user_errors, verdict_text
from mlbench.core import report as reportlib
from mlbench.core import spec as runner


@user_errors
def report(
    results: Optional[Path] = typer.Option(None, "--results", help="Results root.", show_default="./results or $MLBENCH_RESULTS"),
    fmt: str = typer.Option("md", "--format", "-f", help="md | html | json | csv (written to <results>/REPORT.<fmt>)."),
    experiment: Optional[str] = typer.Option(None, "--experiment", help="Only this experiment."),
) -> None:
    """Aggregate every complete run: claims, verdicts, evidence, config differences, sweep pivots, plots."""
    root = runner.results_root(results)
    path, groups, skipped = reportlib.write_report(root, experiment, fmt)
    for g in groups:
        title = f"{g.experiment} v{g.version}" + ("" if g.current else " (older version)")
        table = Table(title=title, title_justify="left")
        for col in ("run id", *g.swept, "profile", "seeds", "verdict", "effect", "95% CI"):
            table.add_column(col, no_wrap=col == "run id")
        for r in g.runs:
            vals = g.values(r)
            table.add_row(r.run_id, *[escape(str(vals[k])) for k in g.swept],
                          r.profile, str(r.seeds), verdict_text(r.verdict), reportlib.num(r.effect),
                          reportlib.ci_text(r.ci))
        console.print(table)
    for line in skipped:
        err_console.print(f"[dim]skipped {escape(line)}[/]")
    console.print(f"{reportlib.runs_text(groups)}; wrote {path}")
