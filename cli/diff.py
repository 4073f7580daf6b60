"""`mlbench diff RUN_A RUN_B`: config keys that differ, claims side by side, main-table numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console, user_errors, verdict_text
from mlbench.core import config as cfglib
from mlbench.core import diff as rundiff
from mlbench.core import runs, spec
from mlbench.core.summary import ci_text, num

SHOWN_CELLS = 40  # differing table cells printed (all of them with --json)


def _value(v: Any) -> str:
    return "-" if v is None else cfglib.as_set_value(v)


@user_errors
def diff(
    run_a: str = typer.Argument(..., help="A run: its folder, <experiment>/<run-id>, or a run id (or its start)."),
    run_b: str = typer.Argument(..., help="Another run of the same experiment."),
    results: Optional[Path] = typer.Option(None, "--results", help="Results root (for run ids).",
                                           show_default="./results or $MLBENCH_RESULTS"),
    as_json: bool = typer.Option(False, "--json", help="Print the differences as JSON on stdout."),
) -> None:
    """Compare two runs of one experiment.

    The config keys that differ, each claim's verdict, effect and CI side by side, then the main
    table's numeric cells that differ (A, B, B - A)."""
    root = spec.results_root(results)
    d = rundiff.diff(runs.find_run(root, run_a), runs.find_run(root, run_b))
    if as_json:
        typer.echo(json.dumps(as_dict(d), indent=2))
        return
    console.print(f"[bold]A[/] {escape(d.a.name)} ({d.a.status})\n[bold]B[/] {escape(d.b.name)} ({d.b.status})")
    _config(d)
    _claims(d)
    _cells(d)
    for note in d.notes:
        console.print(f"[dim]note: {escape(note)}[/]", soft_wrap=False)


def _config(d: rundiff.RunDiff) -> None:
    if not d.config:
        console.print("config: identical (same profile, seeds, device and fields)")
        return
    table = Table(title="config keys that differ", title_justify="left")
    for col in ("key", "A", "B"):
        table.add_column(col, overflow="fold")
    for key, a, b in d.config:
        table.add_row(escape(key), escape(_value(a)), escape(_value(b)))
    console.print(table)


def _claims(d: rundiff.RunDiff) -> None:
    if not d.claims:
        return
    table = Table(title="claims (verdict; effect [95% CI])", title_justify="left")
    for col in ("claim", "A", "B"):
        table.add_column(col, overflow="fold")
    cell = lambda c: "-" if c is None else (f"{verdict_text(c['verdict'])}\n{escape(num(c.get('effect')))} "  # noqa: E731
                                            f"{escape(ci_text(c.get('ci')))}")
    for cid, a, b in d.claims:
        table.add_row(escape(cid), cell(a), cell(b))
    console.print(table)


def _cells(d: rundiff.RunDiff) -> None:
    if not d.a.summary or not d.b.summary:
        return
    if not d.cells:
        console.print(f"main table: all {d.equal_cells} shared numeric cells are equal")
        return
    table = Table(title=f"main table: {len(d.cells)} numeric cells differ ({d.equal_cells} equal)", title_justify="left")
    for col in ("row", "column", "A", "B", "B - A"):
        table.add_column(col, justify="left" if col in ("row", "column") else "right",
                         no_wrap=col not in ("row", "column"), overflow="fold")
    for c in d.cells[:SHOWN_CELLS]:
        table.add_row(escape(c.row), escape(c.column), num(c.a), num(c.b), num(c.delta))
    console.print(table)
    if len(d.cells) > SHOWN_CELLS:
        console.print(f"[dim]... and {len(d.cells) - SHOWN_CELLS} more (--json lists every one)[/]")


def as_dict(d: rundiff.RunDiff) -> dict[str, Any]:
    side = lambda s: {"run": s.name, "path": str(s.path), "status": s.status}  # noqa: E731
    claim = lambda c: None if c is None else {k: c.get(k) for k in ("verdict", "effect", "effect_name", "ci", "seeds")}  # noqa: E731
    return {"a": side(d.a), "b": side(d.b),
            "config": [{"key": k, "a": a, "b": b} for k, a, b in d.config],
            "claims": [{"id": cid, "a": claim(a), "b": claim(b)} for cid, a, b in d.claims],
            "table": {"differ": [{"row": c.row, "column": c.column, "a": c.a, "b": c.b, "delta": c.delta}
                                 for c in d.cells], "equal": d.equal_cells},
            "notes": d.notes}
