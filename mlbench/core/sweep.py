"""Sweeps: a grid of config overrides expanded into ordinary runs.

Each point of the grid is exactly the run `mlbench run <exp> --set k=v ...` would make (same run
id, same folder), so complete points are skipped and interrupted ones resume. Points run in N
local worker processes with `cpu_count // N` torch threads each (recorded in each manifest).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mlbench.core import interrupt, registry, runner, store
from mlbench.core.config import as_set_value
from mlbench.core.errors import ConfigError, MlbenchError, UsageError

STOP_WAIT = 30.0  # seconds a stopped worker gets to mark its run interrupted before it is killed
UNGUARDED_EXIT = 78  # a worker that re-imported a script which starts a sweep at import (EX_CONFIG)
GUARD_HINT = ("a script that calls mlbench.sweep(..., jobs=N>1) must make that call under "
              "`if __name__ == \"__main__\":` (each worker process starts by importing the script again)")


@dataclass
class SweepPlan:
    experiment: str
    grid: dict[str, list[str]]  # key -> values, each as a --set string
    profile: str = "quick"
    seeds: int | None = None
    sets: list[str] = field(default_factory=list)  # fixed overrides for every point
    device: str = "auto"
    results: Path | None = None
    jobs: int = 1


@dataclass
class Point:
    values: dict[str, str]
    spec: runner.RunSpec
    status: str = "pending"  # pending | skipped (already complete) | complete | failed | interrupted
    verdict: str | None = None
    effect: float | None = None
    error: str | None = None
    seconds: float = 0.0

    def args(self, plan: SweepPlan, threads: int) -> dict[str, Any]:
        return {"experiment": plan.experiment, "profile": plan.profile, "seeds": plan.seeds,
                "sets": point_sets(plan, self.values), "device": plan.device, "threads": threads,
                "results": str(self.spec.results)}


def point_sets(plan: SweepPlan, values: dict[str, str]) -> list[str]:
    """A point's `--set`s: the plan's fixed ones, then its grid values."""
    return [*plan.sets, *(f"{k}={v}" for k, v in values.items())]


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """`key=v1,v2,...` per item; list-valued fields separate their values with ';'
    (`head_dims=16,64;16,256`)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--grid expects key=v1,v2,..., got '{item}'")
        sep = ";" if ";" in values else ","
        parts = [v.strip() for v in values.split(sep) if v.strip()]
        if not parts:
            raise ConfigError(f"--grid '{key}' has no values")
        grid[key.strip()] = parts
    return grid


def load_plan(path: Path, **overrides: Any) -> SweepPlan:
    """A sweep as data: `experiment`, optional `profile`, `seeds`, `jobs`, `[set]`, and `[grid]`.
    Every value is checked here (one clear ConfigError), before anything runs."""
    data = registry.read_toml(path)
    known = {"experiment", "profile", "seeds", "jobs", "set", "grid"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown sweep keys {', '.join(unknown)} (allowed: {', '.join(sorted(known))})")
    if not isinstance(data.get("experiment"), str) or not isinstance(data.get("grid"), dict) or not data["grid"]:
        raise ConfigError(f"{path}: a sweep file needs `experiment = \"...\"` and a non-empty [grid] table")
    if not isinstance(data.get("profile", ""), str):
        raise ConfigError(f"{path}: 'profile' must be a string, got {data['profile']!r}")
    for key in ("seeds", "jobs"):
        if key in data:
            positive_int(data[key], f"{path}: '{key}'")
    if not isinstance(data.get("set", {}), dict):
        raise ConfigError(f"{path}: 'set' must be a table ([set] with key = value lines), got {data['set']!r}")
    grid = {}
    for key, values in data["grid"].items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid.{key} must be a non-empty array")
        grid[key] = [_set_value(v, f"{path}: grid.{key}") for v in values]
    fixed = [f"{k}={_set_value(v, f'{path}: set.{k}')}" for k, v in data.get("set", {}).items()]
    plan = SweepPlan(data["experiment"], grid, profile=data.get("profile", "quick"), seeds=data.get("seeds"),
                     sets=fixed, jobs=data.get("jobs", 1))
    for key, value in overrides.items():
        if value is not None:
            setattr(plan, key, value)
    return plan


def positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{what} must be a positive integer, got {value!r}")
    return value


def _set_value(value: Any, what: str) -> str:
    """A TOML value as a `--set` string: a scalar, or an array of scalars (a list field)."""
    items = value if isinstance(value, list) else [value]
    if not items or any(isinstance(v, (list, dict)) for v in items) or isinstance(value, dict):
        raise ConfigError(f"{what}: expected a value or an array of values, got {value!r}")
    return as_set_value(value)


def expand(plan: SweepPlan) -> list[Point]:
    """Resolve every grid point (all validation happens here, before anything runs)."""
    if isinstance(plan.jobs, bool) or not isinstance(plan.jobs, int) or plan.jobs < 1:
        raise UsageError(f"--jobs must be a positive integer, got {plan.jobs!r}")
    keys = list(plan.grid)
    points, seen = [], set()
    for combo in itertools.product(*(plan.grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        spec = runner.resolve(plan.experiment, profile=plan.profile, seeds=plan.seeds,
                              sets=point_sets(plan, values),
                              device=plan.device, results=plan.results)
        if spec.run_id not in seen:
            seen.add(spec.run_id)
            points.append(Point(values, spec))
    return points


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def _run_point(args: dict[str, Any], in_worker: bool = False) -> dict[str, Any]:
    """One grid point. A user-facing or experiment error is a failed point (reported at the
    end). Stopped (Ctrl-C, SIGTERM): the runner marks the run interrupted; a worker process then
    exits at once, so it cannot pick up another queued point (pool workers survive task exceptions)."""
    start = time.perf_counter()
    try:
        result = runner.run_experiment(**args)
    except KeyboardInterrupt as exc:
        if in_worker:
            os._exit(interrupt.exit_code(exc))
        raise
    except MlbenchError as exc:
        return {"status": "failed", "error": str(exc), "seconds": time.perf_counter() - start}
    except Exception as exc:  # an experiment bug must not stop the other points
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - start}
    head = result.summary["headline"]
    return {"status": "skipped" if result.already_complete else "complete", "verdict": result.summary["verdict"],
            "effect": head.get("effect"), "seconds": time.perf_counter() - start}


def _worker_init() -> None:
    """Workers leave Ctrl-C to the parent (the terminal sends it to all of them): the parent stops
    each one with a single SIGTERM, which the runner turns into an interrupted, resumable run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _unguarded_worker() -> bool:
    """True in a spawn worker that is still importing the user's script: a script whose sweep
    call is not under `if __name__ == "__main__":` reaches it again there (the flag is the one
    multiprocessing itself checks before it refuses to start processes from such a worker)."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def run_sweep(plan: SweepPlan, points: list[Point],
              on_done: Callable[[Point], None] = lambda p: None) -> list[Point]:
    """Run every point; `on_done` is called as each finishes. Ctrl-C or SIGTERM stops the workers,
    marks the unfinished points interrupted and re-raises (`interrupt.Terminated` for SIGTERM);
    rerunning the sweep resumes them."""
    if _unguarded_worker():
        sys.exit(UNGUARDED_EXIT)
    if plan.results is not None:
        store.ensure_writable_root(Path(plan.results))
    threads = threads_per_job(plan.jobs)
    with interrupt.sigterm_raises():
        if plan.jobs == 1:
            return _serial(plan, points, threads, on_done)
        return _parallel(plan, points, threads, on_done)


def _serial(plan: SweepPlan, points: list[Point], threads: int, on_done: Callable[[Point], None]) -> list[Point]:
    for p in points:
        try:
            _apply(p, _run_point(p.args(plan, threads)))
        except KeyboardInterrupt:
            for q in points:
                q.status = "interrupted" if q.status == "pending" else q.status
            raise
        on_done(p)
    return points


def _parallel(plan: SweepPlan, points: list[Point], threads: int, on_done: Callable[[Point], None]) -> list[Point]:
    with ProcessPoolExecutor(plan.jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init) as pool:
        futures: dict[Future, Point] = {}
        try:
            futures = {pool.submit(_run_point, p.args(plan, threads), True): p for p in points}
            workers = list(getattr(pool, "_processes", {}).values())  # all of them: spawn starts them on submit
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    _apply(futures[fut], _outcome(fut))
                    on_done(futures[fut])
        except KeyboardInterrupt:
            _stop(list(getattr(pool, "_processes", {}).values()))
            pool.shutdown(wait=True, cancel_futures=True)
            for fut, p in futures.items():
                if p.status == "pending":
                    done_ok = fut.done() and not fut.cancelled() and fut.exception() is None
                    _apply(p, fut.result()) if done_ok else setattr(p, "status", "interrupted")
            for p in points:
                p.status = "interrupted" if p.status == "pending" else p.status
            raise
    if any(w.exitcode == UNGUARDED_EXIT for w in workers):
        raise UsageError(f"the sweep's worker processes stopped before running any point: {GUARD_HINT}")
    return points


def _stop(workers: list) -> None:
    """SIGTERM each live worker (it marks its run interrupted and exits), wait for them, and kill
    any that has not exited after STOP_WAIT seconds or on a second Ctrl-C: no worker outlives us."""
    for w in workers:
        if w.is_alive():
            w.terminate()
    try:
        deadline = time.monotonic() + STOP_WAIT
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
    except KeyboardInterrupt:
        pass
    for w in workers:
        if w.is_alive():
            w.kill()
            w.join()


def _outcome(fut: Future) -> dict[str, Any]:
    try:
        return fut.result()
    except KeyboardInterrupt:
        return {"status": "interrupted"}
    except BrokenProcessPool as exc:  # a worker that died (e.g. killed): the point can be resumed
        return {"status": "failed", "error": f"worker died: {type(exc).__name__}: {exc}"}
    except BaseException as exc:
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}


def _apply(point: Point, outcome: dict[str, Any]) -> None:
    point.status = outcome["status"]
    point.verdict = outcome.get("verdict")
    point.effect = outcome.get("effect")
    point.error = outcome.get("error")
    point.seconds = outcome.get("seconds", 0.0)


def sweep(experiment: str, grid: dict[str, list[Any]], *, jobs: int = 1, profile: str = "quick",
          seeds: int | None = None, sets: list[str] | None = None, device: str = "auto",
          results: str | os.PathLike | None = None) -> list[Point]:
    """Library entry point: `mlbench.sweep("attn-scaling", {"lr": [1e-3, 3e-3]}, jobs=2)`.

    With `jobs` > 1 from a script, call it under `if __name__ == "__main__":` (workers import the
    script again; without the guard this raises a UsageError saying so)."""
    if _unguarded_worker():
        sys.exit(UNGUARDED_EXIT)
    plan = SweepPlan(experiment, {k: [as_set_value(v) for v in vs] for k, vs in grid.items()}, profile,
                     seeds, list(sets or []), device, runner.results_root(results), jobs)
    return run_sweep(plan, expand(plan))
