"""`mlbench verify <run-dir>`: rerun from the stored config and compare."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from cli.common import console, err_console, user_errors
from cli.progress import progress_for
from mlbench.core import verify as verifylib


@user_errors
def verify(run_dir: Path = typer.Argument(..., help="A run folder, e.g. results/attn-scaling/<run-id>."),
           as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON on stdout.")) -> None:
    """Rerun a stored run from its config.json and compare every number.

    Outcomes: `bitwise`, `within tolerance` (the experiment's relative+absolute tolerance) or
    `differs` (naming the first file, row and column). Exit 0 if it reproduces, 1 if not, 2 for
    a corrupt run folder."""
    verifylib.check_folder(run_dir)  # a corrupt folder fails here, before the rerun
    out = err_console if as_json else console
    out.print(f"verifying {escape(str(run_dir))} (rerunning from its config.json) ...")
    with progress_for(err_console) as sink:
        result = verifylib.verify(run_dir, progress=sink)
    if as_json:
        typer.echo(json.dumps({"outcome": result.outcome, "max_deviation": result.max_deviation,
                               "tolerance": result.tolerance, "where": result.where,
                               "differences": result.differences, "timed": result.timed}, indent=2))
        if not result.ok:
            raise typer.Exit(1)
        return
    if result.timed:
        console.print(f"[dim]measured timings, compared by verdict only: {escape(', '.join(result.timed))}[/]")
    if result.outcome == "bitwise":
        console.print("[bold green]bitwise[/]: every compared file (metrics, tables, summary, checkpoints) "
                      "is byte-identical")
    elif result.outcome == "tolerance":
        console.print(f"[bold yellow]within tolerance[/] (max deviation {result.max_deviation:.3g} at "
                      f"{escape(result.where)}; tolerance {result.tolerance:.3g}, relative and absolute)")
    else:
        console.print(f"[bold red]differs[/] ({escape(result.differences[0])}; max deviation "
                      f"{result.max_deviation:.3g}, tolerance {result.tolerance:.3g})")
        for line in result.differences[1:6]:
            console.print(f"  {escape(line)}")
    if not result.ok:
        raise typer.Exit(1)
