"""`mlbench run <exp>`: run an experiment and print its table and verdict (`--all`: every one;
`--dry-run`: what would run, writing nothing; `--json`: the summary on stdout)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cli.common import (DEVICE_HELP, PROFILE_HELP, complete_experiment, complete_device, complete_profile, console,
                        err_console, fail, stopped, user_errors, verdict_text)
from cli.progress import RichProgress, progress_for  # noqa: F401  (RichProgress: for other commands)
from cli.tables import render_csv
from mlbench.core import registry, rerun, runner, runs, store
from mlbench.core import summary as summarylib


def render_summary(result: runner.RunResult, out: Console = console) -> None:
    """The run's main table, its claims with their evidence, and the headline verdict. Claim lines
    wrap at spaces (never inside a number); paths are printed whole."""
    s = result.summary
    scale = "" if s.get("decides", True) else " — smoke profile: tests the plumbing, its verdicts are not results"
    render_csv(result.run_dir / "table.csv", f"{s['experiment']} — {s['profile']} profile, {s['seeds']} seeds{scale}", out)
    seq = s.get("sequential")
    if seq:
        out.print(f"\n[bold]sequential seeds[/]: looks at {', '.join(str(x['seeds']) for x in seq['looks'])} "
                  f"seeds (planned {seq['planned_looks']}); stopped: {seq['stopped']}; {escape(seq['rule'])}",
                  soft_wrap=False)
    for claim in s["claims"]:
        out.print(f"\n[bold]{escape(claim['id'])}[/]: {escape(claim['text'])} [dim]({escape(claim['citation'])})[/]",
                  soft_wrap=False)
        indented(out, f"verdict: {verdict_text(claim['verdict'])}; {escape(summarylib.evidence_text(claim))}", 2)
        paper = summarylib.paper_text(claim)
        if paper:
            indented(out, escape(paper), 2)
        for p in claim.get("parts") or []:
            indented(out, f"{verdict_text(p['verdict'])} {escape(p['test'])}: "
                          f"{escape(summarylib.evidence_text(p, named=False))}", 2, "- ")
    head = s["headline"]
    out.print(f"\n[bold]verdict ({escape(head['claim'])}):[/] {verdict_text(s['verdict'])}")
    out.print(f"run folder: {escape(str(result.run_dir))}")


def indented(out: Console, markup: str, left: int, bullet: str = "") -> None:
    """A line of evidence wrapped at spaces (never inside a number), every wrapped line indented
    under the text, not under the bullet."""
    grid = Table.grid()
    grid.add_column(width=left + len(bullet), no_wrap=True)
    grid.add_column()
    grid.add_row(" " * left + bullet, Text.from_markup(markup))
    out.print(grid)


@user_errors
def run(
    experiment: Optional[str] = typer.Argument(None, help="Experiment name (see `mlbench list`); or --all.",
                                               autocompletion=complete_experiment, show_default=False),
    run_all: bool = typer.Option(False, "--all", help="Run every registered experiment in turn (complete runs "
                                 "are skipped), then one summary table; exit 1 if any failed."),
    profile: Optional[str] = typer.Option(None, "--profile", "-p", help=PROFILE_HELP, metavar="smoke|quick|full",
                                          autocompletion=complete_profile,
                                          show_default="quick, or the profile of a run's config.json"),
    seeds: Optional[str] = typer.Option(None, "--seeds", "-s", help="Number of seeds, or 'auto': add seeds in "
                                        "batches until every claim is decided (error rate kept under optional stopping).",
                                        metavar="N|auto", show_default="the profile's"),
    max_seeds: Optional[int] = typer.Option(None, "--max-seeds", help="With --seeds auto: the most seeds to use.",
                                            show_default="the profile's max_seeds, else twice its seeds"),
    sets: list[str] = typer.Option([], "--set", help="Override a config field: key=value (repeatable).",
                                   metavar="key=value"),
    config: Optional[Path] = typer.Option(None, "--config", help="A TOML file of config overrides, or a run's "
                                          "config.json (reruns that run: its profile, seeds and every field)."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP, metavar="auto|cpu|cuda",
                               autocompletion=complete_device),
    results: Optional[Path] = typer.Option(None, "--results", help="Results root.", show_default="./results or $MLBENCH_RESULTS"),
    threads: Optional[int] = typer.Option(None, "--threads", help="Torch CPU threads (recorded; pin for bitwise "
                                          "reproducibility).", show_default="the experiment's own, else one per core"),
    force: bool = typer.Option(False, "--force", help="Rerun even if a complete run exists."),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="With --all: experiments run this many at a time in "
                             "worker processes (those timing wall clock run alone, last)."),
    log_with: list[str] = typer.Option([], "--log-with", help="Also send every logged metric and the verdicts to "
                                       "an accelerate tracker: tensorboard | mlflow | trackio | wandb (repeatable; "
                                       "offline, files under <run>/trackers/; pip install 'mlbench\\[tensorboard]' etc.)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the resolved config (each value's source), seeds, "
                                 "device, run id and whether that run exists; run and write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the run's summary.json on stdout (human output on stderr)."),
) -> None:
    """Run an experiment: a table, plots, checkpoints and a verdict under <results>/<exp>/<run-id>/."""
    if run_all:
        from cli.run_all import run_every

        if experiment is not None or sets or config is not None:
            raise fail("--all runs every experiment with its profile's values: give no experiment, --set or --config")
        return run_every(profile=profile, seeds=seeds, max_seeds=max_seeds, device=device, results=results,
                         threads=threads, force=force, dry_run=dry_run, as_json=as_json, jobs=jobs)
    if jobs != 1:
        raise fail("--jobs runs several experiments at once: use it with --all (a sweep takes --jobs too)")
    if experiment is None:
        raise fail("give an experiment name (see `mlbench list`), or --all for every experiment")
    if config is not None and not config.exists():  # a file shipped in experiments/, from any directory
        config = registry.shipped(config, config.suffix or ".toml")
    spec = runner.resolve(experiment, profile=profile, seeds=seeds, sets=sets, config_file=config,
                          device=device, threads=threads, results=results, max_seeds=max_seeds,
                          log_with=log_with)
    if dry_run:
        from cli.plan import show_plan

        return show_plan(spec, sets, config, as_json)
    if os.environ.get("RANK", "0") != "0":  # a secondary rank of a multi-process launch: rank 0 reports
        runner.execute(spec, force=force)
        return
    store.ensure_writable_root(spec.results)  # a bad root is one line, before the header
    out = err_console if as_json else console
    result = run_one(spec, force, out)
    try:
        if as_json:
            typer.echo(store.dumps(result.summary), nl=False)
        else:
            render_summary(result)
        out.print(f"recreate: {escape(rerun.rerun_command(spec))}", soft_wrap=True)
    except KeyboardInterrupt as exc:
        stopped(exc, f"the run is complete (only its display was cut short): {result.run_dir}")


def run_one(spec: runner.RunSpec, force: bool, out: Console) -> runner.RunResult:
    """Header, resume note, progress, and the line that says how it ended."""
    seeds_text = f"auto ({spec.seeds}..{spec.max_seeds})" if spec.max_seeds else str(spec.seeds)
    out.print(f"[bold cyan]{spec.experiment}[/] profile={spec.profile} seeds={seeds_text} "
              f"device={spec.device} run={spec.run_id}")
    state = runs.resume_state(spec.run_dir)
    before = state[1] if state and state[0] != "complete" and not force else 0
    if before:
        out.print(f"resuming: {before} unit{'' if before == 1 else 's'} done (by the {state[0]} run); "
                  f"computing the rest")
    with progress_for(err_console) as sink:
        result = runner.execute(spec, force=force, progress=sink)
    if result.already_complete:
        out.print(f"[dim]already complete (the stored run used {threads_text(result.threads)}): "
                  f"showing the stored result (use --force to rerun)[/]")
        asked = spec.threads or getattr(spec.module, "THREADS", None)
        if asked is not None and result.threads is not None and asked != result.threads:
            err_console.print(f"note: the stored run used {threads_text(result.threads)}, not {asked}: its numbers "
                              f"can differ from a {asked}-thread run in the last bits (--force reruns it "
                              f"with {asked})")
    else:
        resumed = f"; resumed {before} of {runs.units_done(spec.run_dir)} units" if before else ""
        out.print(f"[dim]finished in {result.seconds:.1f} s with {threads_text(result.threads)}{resumed}[/]")
    return result


def threads_text(threads: int | None) -> str:
    return "torch threads unknown" if threads is None else f"{threads} torch thread{'' if threads == 1 else 's'}"
