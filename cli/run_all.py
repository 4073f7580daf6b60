"""`mlbench run --all`: every registered experiment in turn, then one summary table.

Complete runs are found and shown, not redone; an experiment that fails (or that its profile
refuses here, e.g. a GPU-only profile on a CPU) does not stop the others; exit 1 if any did not
produce a result. One process for the whole catalogue: torch is imported once.

`--jobs N` (N > 1): the experiments run N at a time in spawn worker processes (most pin one torch
thread, so a 2-core machine otherwise idles a core); an experiment whose face declares
`TIMED_METRICS` (its verdict rests on wall-clock timings) runs alone afterwards in this process,
so no other run shares the machine while it times. Each run gets the experiment's `THREADS`,
else `--threads`, else the CPUs divided by N.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from cli.common import console, err_console, stopped, verdict_text
from mlbench.core import registry, runner, store
from mlbench.core.errors import MlbenchError
from mlbench.core.summary import verdict_label


@dataclass
class Outcome:
    experiment: str
    status: str = "pending"  # complete | skipped (already complete) | refused | failed | interrupted | pending
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def verdicts(self) -> str:
        counts = Counter(verdict_label(c["verdict"]) for c in self.summary.get("claims", []))
        return ", ".join(f"{n} {v}" for v, n in counts.most_common())

    def as_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "status": self.status, "seconds": round(self.seconds, 3),
                "error": self.error, "summary": self.summary or None}


def run_every(*, profile: str | None, seeds: str | None, max_seeds: int | None, device: str, results: Path | None,
              threads: int | None, force: bool, dry_run: bool, as_json: bool, jobs: int = 1) -> None:
    root = runner.results_root(results)
    if dry_run:
        from cli.plan import plan_of

        plans = [plan_of(runner.resolve(n, profile=profile, seeds=seeds, max_seeds=max_seeds, device=device,
                                        threads=threads, results=root), [], None) for n in registry.names()]
        if as_json:
            typer.echo(json.dumps(plans, indent=2))
        for p in plans if not as_json else []:
            console.print(f"{p['experiment']}: {p['run_id']} ({'exists: ' + str(p['status']) if p['exists'] else 'not run yet'})")
        return
    store.ensure_writable_root(root)
    out = err_console if as_json else console
    outcomes = [Outcome(n) for n in registry.names()]
    start = time.perf_counter()
    args = dict(profile=profile, seeds=seeds, max_seeds=max_seeds, device=device, threads=threads, results=root)
    try:
        if jobs > 1:
            run_parallel(outcomes, args, force, jobs, out)
        else:
            for i, o in enumerate(outcomes, 1):
                out.print(f"\n[bold]{escape(f'[{i}/{len(outcomes)}]')} {o.experiment}[/]")
                run_outcome(o, args, force, out)
    except KeyboardInterrupt as exc:
        for o in outcomes:
            o.status = "interrupted" if o.status == "pending" else o.status
        render_outcomes(outcomes, time.perf_counter() - start, out)
        done = sum(o.status in ("complete", "skipped") for o in outcomes)
        stopped(exc, f"{done} of {len(outcomes)} experiments done: rerun the same command to finish the rest "
                     f"(finished work is kept)")
    if as_json:
        typer.echo(json.dumps([o.as_dict() for o in outcomes], indent=2))
    render_outcomes(outcomes, time.perf_counter() - start, out)
    if any(o.status in ("failed", "refused") for o in outcomes):
        raise typer.Exit(1)


def run_outcome(o: Outcome, args: dict[str, Any], force: bool, out) -> None:
    """One experiment: resolved (a refusal is `refused`), run (an error is `failed`), one line."""
    from cli.run import run_one

    t0 = time.perf_counter()
    try:
        spec = runner.resolve(o.experiment, **args)
    except MlbenchError as exc:
        o.status, o.error = "refused", str(exc)
    else:
        try:
            result = run_one(spec, force, out)
        except MlbenchError as exc:
            o.status, o.error = "failed", str(exc)
        except Exception as exc:  # an experiment's bug must not stop the others
            o.status, o.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            o.status = "skipped" if result.already_complete else "complete"
            o.summary = result.summary
    o.seconds = time.perf_counter() - t0
    _print_outcome(o, out)


def run_parallel(outcomes: list[Outcome], args: dict[str, Any], force: bool, jobs: int, out) -> None:
    """`--jobs N`: untimed experiments N at a time in worker processes, one line as each ends;
    then the timed ones alone, here, with their progress. Ctrl-C or SIGTERM stops the workers
    (each marks its run interrupted) and re-raises."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from types import SimpleNamespace

    from mlbench.core import interrupt, points
    from mlbench.core.executors.local import PoolBackend

    pooled, timed = [], []
    for o in outcomes:
        try:
            spec = runner.resolve(o.experiment, **args)
        except MlbenchError as exc:
            o.status, o.error = "refused", str(exc)
            _print_outcome(o, out, named=True)
            continue
        (timed if getattr(spec.module, "TIMED_METRICS", None) else pooled).append((o, spec))
    names = ", ".join(o.experiment for o, _ in timed)
    out.print(f"{len(pooled)} experiments {jobs} at a time in worker processes"
              + (f", then the timed ones alone: {names}" if timed else ""))
    backend = PoolBackend(SimpleNamespace(jobs=jobs))
    try:
        with interrupt.sigterm_raises():
            started = {}
            for o, spec in pooled:
                fixed = getattr(spec.module, "THREADS", None) or args["threads"]
                kwargs = {**args, "threads": points.point_threads(fixed, jobs), "results": str(spec.results.resolve())}
                started[backend.submit(work, o.experiment, kwargs, force)] = o
            pending = set(started)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    o = started[fut]
                    try:
                        outcome = fut.result()
                    except Exception as exc:  # a worker that died
                        outcome = backend.failure(exc)
                    o.status, o.error = outcome["status"], outcome.get("error")
                    o.summary, o.seconds = outcome.get("summary") or {}, outcome.get("seconds", 0.0)
                    _print_outcome(o, out, named=True)
    except KeyboardInterrupt:
        backend.stop()
        raise
    finally:
        backend.close()
    for i, (o, _) in enumerate(timed, 1):
        out.print(f"\n[bold]{escape(f'[timed {i}/{len(timed)}]')} {o.experiment}[/]")
        run_outcome(o, args, force, out)


def work(experiment: str, kwargs: dict[str, Any], force: bool) -> dict[str, Any]:
    """One experiment in a `--jobs` worker process: its outcome (and summary) for the parent."""
    from mlbench.core import interrupt

    t0 = time.perf_counter()
    try:
        result = runner.run_experiment(experiment, force=force, **kwargs)
    except KeyboardInterrupt as exc:  # SIGTERM from the parent: the run is marked interrupted
        os._exit(interrupt.exit_code(exc))
    except MlbenchError as exc:
        return {"status": "failed", "error": str(exc), "seconds": time.perf_counter() - t0}
    except Exception as exc:  # an experiment's bug must not stop the others
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - t0}
    return {"status": "skipped" if result.already_complete else "complete", "summary": result.summary,
            "seconds": time.perf_counter() - t0}


def _print_outcome(o: Outcome, out, named: bool = False) -> None:
    """One line for a finished experiment; `named` (runs side by side) leads with its name and seconds."""
    if o.summary:
        verdict = verdict_text(o.summary["verdict"])
        head = (f"{o.experiment} ({o.seconds:.0f} s): headline {verdict}" if named
                else f"headline ({escape(o.summary['headline']['claim'])}): {verdict}")
        out.print(f"{head}; {len(o.summary['claims'])} claims: {escape(o.verdicts())}", soft_wrap=False)
    else:
        out.print(f"{o.experiment + ': ' if named else ''}[bold red]{o.status}[/]: {escape(o.error or '')}",
                  soft_wrap=False)


def render_outcomes(outcomes: list[Outcome], seconds: float, out=console) -> None:
    table = Table(title="every experiment", title_justify="left")
    for col in ("experiment", "claims", "verdicts", "s"):
        table.add_column(col, justify="right" if col in ("claims", "s") else "left",
                         no_wrap=col != "verdicts", overflow="fold")
    for o in outcomes:
        claims = str(len(o.summary["claims"])) if o.summary else "-"
        what = escape(o.verdicts()) if o.summary else f"[red]{o.status}[/]" if o.status != "pending" else "-"
        if o.status == "skipped":
            what += " [dim](already complete)[/]"
        table.add_row(o.experiment, claims, what, f"{o.seconds:.1f}")
    out.print(table)
    counts = Counter(o.status for o in outcomes)
    out.print(f"{len(outcomes)} experiments in {seconds:.0f} s: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
