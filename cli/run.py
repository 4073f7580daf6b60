"""`mlbench run <exp>`: run an experiment and print its table and verdict."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from rich.markup import escape

from cli.common import console, err_console, stopped, user_errors, verdict_text
from mlbench.core import runner
from mlbench.core import summary as summarylib


class RichProgress:
    """Adapts rich's Progress to the library's `Progress` protocol."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar

    def task(self, description: str, total: int | None):
        bar, task_id = self.bar, self.bar.add_task(description, total=total)

        class _Task:
            def advance(self, n: int = 1) -> None:
                bar.advance(task_id, n)

            def close(self) -> None:
                bar.refresh()

        return _Task()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=False)


def render_table(path: Path, title: str) -> None:
    if not path.exists():
        return
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    table = Table(title=title, title_justify="left")
    body = [[_short(c) for c in row] for row in rows[1:]]
    for i, col in enumerate(rows[0]):
        numeric = all(_is_number(r[i]) for r in body if i < len(r))
        table.add_column(col, justify="right" if numeric else "left", no_wrap=True,
                         min_width=max(min(len(col), 9), 5))
    for row in body:
        table.add_row(*row)
    console.print(table)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _short(cell: str) -> str:
    try:
        value = float(cell)
    except ValueError:
        return cell
    return cell if value.is_integer() and "e" not in cell.lower() else f"{value:.3g}"


def render_summary(result: runner.RunResult) -> None:
    s = result.summary
    scale = "" if s.get("decides", True) else " — smoke profile: tests the plumbing, its verdicts are not results"
    render_table(result.run_dir / "table.csv", f"{s['experiment']} — {s['profile']} profile, {s['seeds']} seeds{scale}")
    seq = s.get("sequential")
    if seq:
        console.print(f"\n[bold]sequential seeds[/]: looks at {', '.join(str(x['seeds']) for x in seq['looks'])} "
                      f"seeds (planned {seq['planned_looks']}); stopped: {seq['stopped']}; {escape(seq['rule'])}")
    for claim in s["claims"]:
        console.print(f"\n[bold]{escape(claim['id'])}[/]: {escape(claim['text'])} [dim]({escape(claim['citation'])})[/]")
        console.print(f"  verdict: {verdict_text(claim['verdict'])}; {escape(summarylib.evidence_text(claim))}")
        paper = summarylib.paper_text(claim)
        if paper:
            console.print(f"  {escape(paper)}")
        for p in claim.get("parts") or []:
            console.print(f"  - {verdict_text(p['verdict'])} {escape(p['test'])}: {escape(summarylib.evidence_text(p, named=False))}",
                          soft_wrap=True)
    head = s["headline"]
    console.print(f"\n[bold]verdict ({escape(head['claim'])}):[/] {verdict_text(s['verdict'])}")
    console.print(f"run folder: {escape(str(result.run_dir))}")


@user_errors
def run(
    experiment: str = typer.Argument(..., help="Experiment name (see `mlbench list`)."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help="smoke | quick | full (see `mlbench show`).",
                                          show_default="quick, or the profile of a run's config.json"),
    seeds: Optional[str] = typer.Option(None, "--seeds", "-s", help="Number of seeds, or 'auto': add seeds in "
                                        "batches until every claim is decided (error rate kept under optional stopping).",
                                        show_default="the profile's"),
    max_seeds: Optional[int] = typer.Option(None, "--max-seeds", help="With --seeds auto: the most seeds to use.",
                                            show_default="the profile's max_seeds, else twice its seeds"),
    sets: list[str] = typer.Option([], "--set", help="Override a config field: key=value (repeatable)."),
    config: Optional[Path] = typer.Option(None, "--config", help="A TOML file of config overrides, or a run's "
                                          "config.json (reruns that run: its profile, seeds and every field)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    results: Optional[Path] = typer.Option(None, "--results", help="Results root.", show_default="./results or $MLBENCH_RESULTS"),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch CPU threads (recorded; pin for bitwise reproducibility)."),
    force: bool = typer.Option(False, "--force", help="Rerun even if a complete run exists."),
    log_with: list[str] = typer.Option([], "--log-with", help="Also send every logged metric and the verdicts to "
                                       "an accelerate tracker: tensorboard | mlflow | trackio | wandb (repeatable; "
                                       "offline, files under <run>/trackers/; pip install 'mlbench\\[tensorboard]' etc.)."),
) -> None:
    """Run an experiment: a table, plots, checkpoints and a verdict under <results>/<exp>/<run-id>/."""
    spec = runner.resolve(experiment, profile=profile, seeds=seeds, sets=sets, config_file=config,
                          device=device, threads=threads, results=results, max_seeds=max_seeds,
                          log_with=log_with)
    if os.environ.get("RANK", "0") != "0":  # a secondary rank of a multi-process launch: rank 0 reports
        runner.execute(spec, force=force)
        return
    seeds_text = f"auto ({spec.seeds}..{spec.max_seeds})" if spec.max_seeds else str(spec.seeds)
    console.print(f"[bold cyan]{spec.experiment}[/] profile={spec.profile} seeds={seeds_text} "
                  f"device={spec.device} run={spec.run_id}")
    with _progress() as bar:
        result = runner.execute(spec, force=force, progress=RichProgress(bar))
    try:
        if result.already_complete:
            console.print(f"[dim]already complete (the stored run used {threads_text(result.threads)}): "
                          f"showing the stored result (use --force to rerun)[/]")
            asked = spec.threads or getattr(spec.module, "THREADS", None)
            if asked is not None and result.threads is not None and asked != result.threads:
                err_console.print(f"note: the stored run used {threads_text(result.threads)}, not {asked}: its numbers "
                                  f"can differ from a {asked}-thread run in the last bits (--force reruns it "
                                  f"with {asked})")
        else:
            console.print(f"[dim]finished in {result.seconds:.1f} s with {threads_text(result.threads)}[/]")
        render_summary(result)
    except KeyboardInterrupt as exc:
        stopped(exc, f"the run is complete (only its display was cut short): {result.run_dir}")


def threads_text(threads: int | None) -> str:
    return "torch threads unknown" if threads is None else f"{threads} torch thread{'' if threads == 1 else 's'}"
