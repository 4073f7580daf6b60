"""`mlbench check [BASELINE]`: fail when a claim's verdict flips against a stored baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console, err_console, user_errors, verdict_text
from mlbench.core import check as checklib
from mlbench.core import spec


@user_errors
def check(
    baseline: Optional[Path] = typer.Argument(None, help="Baseline file.", show_default=checklib.DEFAULT_BASELINE),
    results: Optional[Path] = typer.Option(None, "--results", help="Results root.", show_default="./results or $MLBENCH_RESULTS"),
    write: bool = typer.Option(False, "--write", help="Write the baseline from the latest runs instead of checking."),
    as_json: bool = typer.Option(False, "--json", help="Print the changes as JSON on stdout."),
) -> None:
    """Fail (exit 1) when a claim's verdict flipped against a stored baseline: compares the
    verdicts of the latest complete runs (strongest profile per experiment) with the baseline; a
    claim that flipped or went missing fails. A CI step for a research repo; --write stores one."""
    root, path = spec.results_root(results), checklib.baseline_path(baseline)
    if write:
        data = checklib.write_baseline(root, path)
        n = sum(len(e["claims"]) for e in data["experiments"].values())
        k = len(data["experiments"])
        console.print(f"wrote {escape(str(path))}: {n} claim{'s' * (n != 1)} of {k} experiment{'s' * (k != 1)}")
        return
    changes = checklib.compare(checklib.read_baseline(path), root)
    failing = [c for c in changes if c.failing]
    if as_json:
        typer.echo(json.dumps([c.__dict__ for c in changes], indent=2))
    elif changes:
        table = Table(title=f"changes against {path}", title_justify="left")
        for col in ("experiment", "claim", "baseline", "now", "change"):
            table.add_column(col)
        for c in changes:
            table.add_row(c.experiment, escape(c.claim), verdict_text(c.before) if c.kind == "flipped" else escape(c.before),
                          verdict_text(c.now) if c.kind in ("flipped", "new") else escape(c.now),
                          f"[red]{c.kind}[/]" if c.failing else c.kind)
        console.print(table)
    out = err_console if as_json else console
    if failing:
        out.print(f"[bold red]check failed[/]: {len(failing)} claim(s) changed against {escape(str(path))}")
        raise typer.Exit(1)
    if not as_json:
        console.print(f"[bold green]ok[/]: every baselined claim has the same verdict ({escape(str(path))})")
