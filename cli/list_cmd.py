"""`mlbench list`: the experiments, each with its claim and source."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from cli.common import console, user_errors
from mlbench.core import registry


@user_errors
def list_experiments(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """List every registered experiment with its one-line claim and source."""
    infos = [registry.info(n) for n in registry.names()]
    if as_json:
        typer.echo(json.dumps([{"name": i.name, "claim": i.summary, "citation": i.citation,
                                "profiles": list(i.profiles)} for i in infos], indent=2))
        return
    table = Table(title="mlbench experiments", show_lines=False)
    table.add_column("experiment", style="bold cyan", no_wrap=True)
    table.add_column("claim")
    table.add_column("source", style="dim")
    for i in infos:
        table.add_row(i.name, i.summary, i.citation)
    console.print(table)
    console.print("Run one with [bold]mlbench run <experiment>[/]; details with [bold]mlbench show <experiment>[/].")
