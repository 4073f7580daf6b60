"""`mlbench runs`: every run under the results root, one line each (any status)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import complete_experiment, console, err_console, user_errors, verdict_text
from mlbench.core import runs as runslib
from mlbench.core import spec
from mlbench.core.summary import num

STATUS_STYLE = {"complete": "green", "interrupted": "yellow", "failed": "red", "running": "cyan"}


def _complete_status(incomplete: str) -> list[str]:
    return [s for s in runslib.STATUSES if s.startswith(incomplete)]


@user_errors
def runs(
    experiment: Optional[str] = typer.Option(None, "--experiment", "-e", help="Only this experiment.",
                                             autocompletion=complete_experiment),
    status: Optional[str] = typer.Option(None, "--status", help="Only runs with this status.",
                                         metavar="|".join(runslib.STATUSES), autocompletion=_complete_status),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON on stdout."),
    commands: bool = typer.Option(False, "--commands", help="Also print the command that recreates each run."),
    results: Optional[Path] = typer.Option(None, "--results", help="Results root.", show_default="./results or $MLBENCH_RESULTS"),
) -> None:
    """List every run under the results root, newest first, whatever its status.

    One line each: experiment, run id, profile, seeds, status (a run whose process died shows as
    interrupted), headline verdict and effect, age."""
    entries, skipped = runslib.index(spec.results_root(results), experiment, status)
    if as_json:
        typer.echo(json.dumps([e.as_dict() for e in entries], indent=2))
    else:
        render(entries, commands)
    for line in skipped:
        err_console.print(f"[dim]skipped {escape(line)}[/]", soft_wrap=True)


FLAT = ("experiment", "run id", "profile", "seeds", "status", "verdict", "effect", "age")
FLAT_WIDTH = 124  # the one-line-per-run table fits from here on; narrower consoles get it grouped


def render(entries: list[runslib.RunEntry], commands: bool = False) -> None:
    if not entries:
        console.print("no runs (run one with `mlbench run <experiment>`)")
        return
    title = f"{len(entries)} run{'' if len(entries) == 1 else 's'}, newest first"
    console.print(flat(entries, title) if console.width >= FLAT_WIDTH else grouped(entries, title))
    if commands:
        for e in entries:
            console.print(f"{e.experiment}/{e.run_id}: {escape(e.command)}", soft_wrap=True)
    else:
        console.print("[dim]--commands: the command that recreates each run[/]")
        console.print("[dim]mlbench diff RUN_A RUN_B: compare two runs[/]")


def _cells(e: runslib.RunEntry) -> dict[str, str]:
    return {"experiment": e.experiment, "run id": e.run_id, "profile": e.profile,
            "seeds": escape(str(e.seeds if e.seeds is not None else "-")),
            "status": f"[{STATUS_STYLE.get(e.status, 'bold')}]{escape(e.status)}[/]",
            "verdict": verdict_text(e.verdict) if e.verdict else "-", "effect": num(e.effect),
            "age": runslib.age_text(e.ended or e.started)}


def flat(entries: list[runslib.RunEntry], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in FLAT:
        table.add_column(col, justify="right" if col in ("seeds", "effect", "age") else "left", no_wrap=True)
    for e in entries:
        cells = _cells(e)
        table.add_row(*(cells[c] for c in FLAT))
    return table


def grouped(entries: list[runslib.RunEntry], title: str) -> Table:
    """For 80 columns: a row per experiment, under it its runs (the run id starts with the profile)."""
    table = Table(title=title, title_justify="left", box=None, header_style="bold underline")
    table.add_column("experiment / run id", no_wrap=True)
    for col in ("seeds", "status", "verdict", "effect", "age"):
        table.add_column(col, justify="right" if col in ("seeds", "effect", "age") else "left",
                         no_wrap=col != "verdict", min_width=14 if col == "verdict" else None)
    by_experiment: dict[str, list[runslib.RunEntry]] = {}
    for e in entries:  # experiments in the order of their newest run
        by_experiment.setdefault(e.experiment, []).append(e)
    for name, group in by_experiment.items():
        table.add_row(f"[bold]{name}[/]")
        for e in group:
            cells = _cells(e)
            table.add_row(f"  {e.run_id}", *(cells[c] for c in ("seeds", "status", "verdict", "effect", "age")))
    return table
