"""Sweeps: a grid of config overrides expanded into ordinary runs.

Each point of the grid is exactly the run `mlbench run <exp> --set k=v ...` would make (same run
id, same folder), so complete points are skipped and interrupted ones resume. Points run in N
local worker processes with `cpu_count // N` torch threads each (recorded in each manifest).
"""

from __future__ import annotations

import itertools
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable

from mlbench.core import registry, runner, store
from mlbench.core.config import as_set_value
from mlbench.core.errors import ConfigError, MlbenchError, UsageError


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
    """A sweep as data: `experiment`, optional `profile`, `seeds`, `jobs`, `[set]`, and `[grid]`."""
    data = registry.read_toml(path)
    known = {"experiment", "profile", "seeds", "jobs", "set", "grid"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown sweep keys {', '.join(unknown)} (allowed: {', '.join(sorted(known))})")
    if "experiment" not in data or not isinstance(data.get("grid"), dict) or not data["grid"]:
        raise ConfigError(f"{path}: a sweep file needs `experiment = \"...\"` and a non-empty [grid] table")
    grid = {}
    for key, values in data["grid"].items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid.{key} must be a non-empty array")
        grid[key] = [as_set_value(v) for v in values]
    plan = SweepPlan(str(data["experiment"]), grid, profile=str(data.get("profile", "quick")),
                     seeds=data.get("seeds"), sets=[f"{k}={as_set_value(v)}" for k, v in data.get("set", {}).items()],
                     jobs=int(data.get("jobs", 1)))
    for key, value in overrides.items():
        if value is not None:
            setattr(plan, key, value)
    return plan


def expand(plan: SweepPlan) -> list[Point]:
    """Resolve every grid point (all validation happens here, before anything runs)."""
    if plan.jobs < 1:
        raise UsageError(f"--jobs must be a positive integer, got {plan.jobs}")
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
    end). Ctrl-C: the run is marked interrupted by the runner; a worker process then exits at
    once, so it cannot pick up another queued point (pool workers survive task exceptions)."""
    start = time.perf_counter()
    try:
        result = runner.run_experiment(**args)
    except KeyboardInterrupt:
        if in_worker:
            os._exit(130)
        raise
    except MlbenchError as exc:
        return {"status": "failed", "error": str(exc), "seconds": time.perf_counter() - start}
    except Exception as exc:  # an experiment bug must not stop the other points
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - start}
    head = result.summary["headline"]
    return {"status": "skipped" if result.already_complete else "complete", "verdict": result.summary["verdict"],
            "effect": head.get("effect"), "seconds": time.perf_counter() - start}


def run_sweep(plan: SweepPlan, points: list[Point],
              on_done: Callable[[Point], None] = lambda p: None) -> list[Point]:
    """Run every point; `on_done` is called as each finishes. Ctrl-C marks the unfinished
    points interrupted and re-raises (rerunning the sweep resumes them)."""
    if plan.results is not None:
        store.ensure_writable_root(Path(plan.results))
    threads = threads_per_job(plan.jobs)
    if plan.jobs == 1:
        for p in points:
            try:
                _apply(p, _run_point(p.args(plan, threads)))
            except KeyboardInterrupt:
                for q in points:
                    q.status = "interrupted" if q.status == "pending" else q.status
                raise
            on_done(p)
        return points
    with ProcessPoolExecutor(plan.jobs, mp_context=get_context("spawn")) as pool:
        futures: dict[Future, Point] = {pool.submit(_run_point, p.args(plan, threads), True): p for p in points}
        try:
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    _apply(futures[fut], _outcome(fut))
                    on_done(futures[fut])
        except KeyboardInterrupt:
            pool.shutdown(wait=True, cancel_futures=True)
            for fut, p in futures.items():
                if p.status == "pending":
                    done_ok = fut.done() and not fut.cancelled() and fut.exception() is None
                    _apply(p, fut.result()) if done_ok else setattr(p, "status", "interrupted")
            raise
    return points


def _outcome(fut: Future) -> dict[str, Any]:
    try:
        return fut.result()
    except KeyboardInterrupt:
        return {"status": "interrupted"}
    except BaseException as exc:  # a worker that died (e.g. killed): the point can be resumed
        return {"status": "failed", "error": f"worker died: {type(exc).__name__}: {exc}"}


def _apply(point: Point, outcome: dict[str, Any]) -> None:
    point.status = outcome["status"]
    point.verdict = outcome.get("verdict")
    point.effect = outcome.get("effect")
    point.error = outcome.get("error")
    point.seconds = outcome.get("seconds", 0.0)


def sweep(experiment: str, grid: dict[str, list[Any]], *, jobs: int = 1, profile: str = "quick",
          seeds: int | None = None, sets: list[str] | None = None, device: str = "auto",
          results: str | os.PathLike | None = None) -> list[Point]:
    """Library entry point: `mlbench.sweep("attn-scaling", {"lr": [1e-3, 3e-3]}, jobs=2)`."""
    plan = SweepPlan(experiment, {k: [as_set_value(v) for v in vs] for k, vs in grid.items()}, profile,
                     seeds, list(sets or []), device, runner.results_root(results), jobs)
    return run_sweep(plan, expand(plan))
