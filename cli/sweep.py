"""`mlbench sweep`: a grid of configs as ordinary runs, on local workers, Slurm or a Dask cluster."""

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
from mlbench.core import executors, registry, runner
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
    results: Optional[Path] = typer.Option(None, "--results", help="Results root. With --executor slurm or dask it "
                                           "must be on a filesystem every worker sees (checked before submitting).",
                                           show_default="./results or $MLBENCH_RESULTS"),
    executor: Optional[str] = typer.Option(None, "--executor", "-x", help="Where the runs go: local (--jobs worker "
                                           "processes here), slurm (one job array, needs mlbench\\[slurm]) or dask "
                                           "(a Dask cluster, needs mlbench\\[dask]).", show_default="local"),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="--executor dask: the scheduler, "
                                            "tcp://HOST:PORT or a scheduler file."),
    slurm_partition: Optional[str] = typer.Option(None, "--slurm-partition", help="Slurm partition of the job array."),
    slurm_time: Optional[str] = typer.Option(None, "--slurm-time", help="Time limit of each run's job: minutes, "
                                             "HH:MM:SS or D-HH:MM:SS.", show_default="60"),
    slurm_gpus: Optional[int] = typer.Option(None, "--slurm-gpus-per-task", help="GPUs per run (with --device cuda)."),
    slurm_cpus: Optional[int] = typer.Option(None, "--slurm-cpus-per-task", help="CPUs per run: its torch "
                                             "threads, unless the experiment fixes THREADS."),
    slurm_parallel: Optional[int] = typer.Option(None, "--slurm-array-parallelism", help="Most runs of the array "
                                                 "running at once.", show_default="256"),
    slurm_cluster: Optional[str] = typer.Option(None, "--slurm-cluster", help="slurm, or local: the same job array "
                                                "through submitit's local executor on this machine (every run at "
                                                "once), to try a sweep before queueing it.", show_default="slurm"),
) -> None:
    """Expand a grid into ordinary runs (same run ids as `mlbench run`), skip complete ones,
    resume interrupted ones, and keep going past failures (exit 1 if any failed). Runs go to
    local worker processes, a Slurm job array or a Dask cluster; every backend writes into the
    same results root, so a sweep can be rerun on any of them to finish what is missing."""
    slurm = {k: v for k, v in {"partition": slurm_partition, "time": slurm_time, "gpus-per-task": slurm_gpus,
                               "cpus-per-task": slurm_cpus, "array-parallelism": slurm_parallel,
                               "cluster": slurm_cluster}.items() if v is not None}
    root = runner.results_root(results)
    path = sweep_path(target, sweep_file)
    if path is not None:
        plan = sweeplib.load_plan(path, profile=profile, seeds=seeds, jobs=jobs, device=device, results=root,
                                  executor=executor, scheduler=scheduler, slurm=slurm)
        plan.sets += list(sets)
        plan.grid.update(sweeplib.parse_grid(grid))
    else:
        if not grid:
            raise fail("give at least one --grid key=v1,v2,... (or a sweep file)")
        plan = sweeplib.SweepPlan(target, sweeplib.parse_grid(grid), profile or "quick", seeds, list(sets),
                                  device, root, 1 if jobs is None else jobs, executor or "local", scheduler,
                                  executors.check_slurm(slurm, "--slurm-"))
    points = sweeplib.expand(plan)
    where = f"{plan.jobs} job{'s' if plan.jobs > 1 else ''}" if plan.executor == "local" else f"executor={plan.executor}"
    console.print(f"[bold cyan]{plan.experiment}[/] sweep: {len(points)} runs, {where}, "
                  f"{sweeplib.threads_text(plan, points)}, profile={plan.profile}")
    try:
        with progress_for(err_console) as sink, contextlib.closing(sink.task("runs", len(points))) as task:
            sweeplib.run_sweep(plan, points, on_done=lambda p: task.advance(),
                               on_start=lambda text: console.print(f"[dim]{escape(text)}[/]"))
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
