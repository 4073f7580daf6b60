"""`mlbench verify <run-dir>`: rerun from the stored config and compare."""

from __future__ import annotations

from pathlib import Path

import typer

from cli.common import console, user_errors
from cli.run import RichProgress, _progress
from mlbench.core import verify as verifylib


@user_errors
def verify(run_dir: Path = typer.Argument(..., help="A run folder, e.g. results/attn-scaling/<run-id>.")) -> None:
    """Rerun a stored run from its config.json; exit 0 if it reproduces (bitwise or within the
    experiment's tolerance), 1 if it does not."""
    console.print(f"verifying {run_dir} (rerunning from its config.json) ...")
    with _progress() as bar:
        result = verifylib.verify(run_dir, progress=RichProgress(bar))
    if result.outcome == "bitwise":
        console.print("[bold green]bitwise[/]: every compared file (metrics, table, summary, checkpoints) is byte-identical")
        return
    for line in result.differences:
        console.print(f"  {line}", markup=False)
    if result.outcome == "tolerance":
        console.print(f"[bold yellow]within tolerance[/]: max deviation {result.max_deviation:.3g} "
                      f"<= {result.tolerance:.3g}, same verdicts")
        return
    console.print(f"[bold red]differs[/]: max deviation {result.max_deviation:.3g} (tolerance {result.tolerance:.3g})")
    raise typer.Exit(1)
