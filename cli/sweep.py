"""`mlbench sweep`: a grid of configs as ordinary runs, in parallel local workers."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import (DEVICE_HELP, complete_device, complete_profile, console, err_console, fail, stopped,
                        user_errors, verdict_text)
from cli.progress import progress_for
from mlbench.core import registry, runner
from mlbench.core import sweep as sweeplib


@user_errors
def sweep(
    target: Optional[str] = typer.Argument(None, help="An experiment name (with --grid), or a sweep file: a path, "
                                           "or the name of a shipped one (attn-scaling.sweep).", show_default=False),
    sweep_file: Optional[str] = typer.Option(None, "--sweep-file", help="A sweep file: a path, or the name of one "
                                             "shipped in experiments/ (works from any directory)."),
    grid: list[str] = typer.Option([], "--grid", help="key=v1,v2,... (repeatable; list fields: key=1,2;3,4)."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="Profile for every point.", show_default="quick",
                                          metavar="smoke|quick|full", autocompletion=complete_profile),
    seeds: Optional[int] = typer.Option(None, "--seeds", "-s", help="Seeds per point.", show_default="the profile's"),
    sets: list[str] = typer.Option([], "--set", help="A fixed override for every point: key=value (repeatable)."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="Parallel worker processes.", show_default="1"),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP, metavar="auto|cpu|cuda",
                               autocompletion=complete_device),
    results: Optional[Path] = typer.Option(None, "--results", help="Results root.", show_default="./results or $MLBENCH_RESULTS"),
) -> None:
    """Run a grid of configs (or a sweep file) as ordinary runs, in parallel workers.

    The points get the same run ids as `mlbench run` with those --set values: complete ones are
    skipped, interrupted ones resume, and a failing point does not stop the others (exit 1 if
    any failed)."""
    root = runner.results_root(results)
    path = sweep_path(target, sweep_file)
    if path is not None:
        plan = sweeplib.load_plan(path, profile=profile, seeds=seeds, jobs=jobs, device=device, results=root)
        plan.sets += list(sets)
        plan.grid.update(sweeplib.parse_grid(grid))
    else:
        if not grid:
            raise fail("give at least one --grid key=v1,v2,... (or a sweep file)")
        plan = sweeplib.SweepPlan(target, sweeplib.parse_grid(grid), profile or "quick", seeds, list(sets),
                                  device, root, 1 if jobs is None else jobs)
    points = sweeplib.expand(plan)
    console.print(f"[bold cyan]{plan.experiment}[/] sweep: {len(points)} runs, {plan.jobs} jobs x "
                  f"{sweeplib.threads_per_job(plan.jobs)} threads, profile={plan.profile}")
    try:
        with progress_for(err_console) as sink, contextlib.closing(sink.task("runs", len(points))) as task:
            sweeplib.run_sweep(plan, points, on_done=lambda p: task.advance())
    except KeyboardInterrupt as exc:
        _summary(points)
        stopped(exc, _stop_text(points))
    _summary(points)
    failed = [p for p in points if p.status == "failed"]
    if failed:
        for p in failed:
            err_console.print(f"[red]failed[/] {p.spec.run_id} ({_values(p)}): {escape(p.error or '')}")
        raise typer.Exit(1)


def sweep_path(target: str | None, sweep_file: str | None) -> Path | None:
    """The sweep file to read (a path, else a shipped one of that name), or None for a grid sweep."""
    if sweep_file is not None and target is not None:
        raise fail("give an experiment (with --grid) or a sweep file, not both")
    ref = sweep_file or target
    if ref is None:
        raise fail("give an experiment name with --grid key=v1,v2,..., or a sweep file "
                   f"(shipped: {', '.join(registry.shipped_sweeps())})")
    if sweep_file is None and not ref.endswith((".toml", ".sweep")) and not Path(ref).is_file():
        return None  # an experiment name
    path = registry.shipped(ref)
    if not path.is_file():
        raise fail(f"sweep file not found: {ref} (nor among the shipped ones: {', '.join(registry.shipped_sweeps())})")
    return path


def _stop_text(points: list[sweeplib.Point]) -> str:
    """What the stop left: the runs to resume, or (it landed after the last one) nothing."""
    counts = {s: sum(p.status == s for p in points) for s in ("complete", "skipped", "failed", "interrupted")}
    done = ", ".join(f"{n} {s}" for s, n in counts.items() if n and s != "interrupted")
    if not counts["interrupted"]:
        return f"every run had finished before the stop ({done}): nothing to resume"
    return (f"{counts['interrupted']} of {len(points)} runs interrupted{f' ({done})' if done else ''}: "
            f"rerun the same sweep to resume them (finished runs are kept)")


def _values(p: sweeplib.Point) -> str:
    return " ".join(f"{k}={v}" for k, v in p.values.items())


def _summary(points: list[sweeplib.Point]) -> None:
    if not points:
        return
    table = Table(title="sweep summary", title_justify="left")
    for key in points[0].values:
        table.add_column(key)
    for col in ("run id", "status", "verdict", "effect", "s"):
        table.add_column(col, no_wrap=col == "run id")
    for p in points:
        effect = "-" if p.effect is None else f"{p.effect:.3g}"
        verdict = verdict_text(p.verdict) if p.verdict else "-"
        table.add_row(*map(escape, p.values.values()), p.spec.run_id, p.status, verdict, effect, f"{p.seconds:.1f}")
    console.print(table)
