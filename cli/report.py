"""`mlbench report`: every complete run under the results root, in REPORT.md."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cli.common import console, err_console, user_errors, verdict_text
from mlbench.core import report as reportlib
from mlbench.core import runner


@user_errors
def report(
    results: Optional[Path] = typer.Option(None, "--results", help="Results root [default: ./results or $MLBENCH_RESULTS]."),
    experiment: Optional[str] = typer.Option(None, "--experiment", help="Only this experiment."),
) -> None:
    """Aggregate every complete run into <results>/REPORT.md and print it."""
    root = runner.results_root(results)
    path, rows, skipped = reportlib.write_report(root, experiment)
    table = Table(title=f"mlbench report ({len(rows)} complete runs)", title_justify="left")
    for col in ("experiment", "run id", "profile", "seeds", "verdict", "effect", "95% CI"):
        table.add_column(col)
    for r in rows:
        ci = f"[{r.ci[0]:.3g}, {r.ci[1]:.3g}]" if r.ci else "-"
        eff = "-" if r.effect is None else f"{r.effect:.3g}"
        table.add_row(r.experiment, r.run_id, r.profile, str(r.seeds), verdict_text(r.verdict), eff, ci)
    console.print(table)
    for line in skipped:
        err_console.print(f"[dim]skipped {line}[/]")
    console.print(f"wrote {path}")
