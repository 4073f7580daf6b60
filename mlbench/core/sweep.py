"""Sweeps: a grid of config overrides expanded into ordinary runs, handed to an executor.

Each point of the grid is exactly the run `mlbench run <exp> --set k=v ...` would make (same run
id, same folder), so complete points are skipped (before anything is submitted) and interrupted
ones resume. Points go to an executor behind one `concurrent.futures` seam (`executors`):
`local` (this process for `--jobs 1`, else N spawn workers), `slurm` (one submitit job array) or
`dask` (a dask.distributed cluster); finished points are read back from the shared run store.
Torch threads per point: the experiment's THREADS, else its worker's CPUs / the points beside it
(`points.point_threads`), recorded in each run's manifest.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from mlbench.core import executors, interrupt, points, registry, runner, store
from mlbench.core.config import as_set_value
from mlbench.core.errors import ConfigError, UsageError
from mlbench.core.executors.local import GUARD_HINT, UNGUARDED_EXIT  # noqa: F401 (GUARD_HINT: re-exported)

_run_point = points.run_point  # what `--jobs 1` calls for each point (in this process)


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
    executor: str = "local"  # local | slurm | dask (see mlbench.core.executors)
    scheduler: str | None = None  # dask: tcp://HOST:PORT or a scheduler file
    slurm: dict[str, Any] = field(default_factory=dict)  # partition, time, ... (executors.slurm.OPTIONS)


@dataclass
class Point:
    values: dict[str, str]
    spec: runner.RunSpec
    status: str = "pending"  # pending | skipped (already complete) | complete | failed | interrupted
    verdict: str | None = None
    effect: float | None = None
    error: str | None = None
    seconds: float = 0.0

    def args(self, plan: SweepPlan, slots: int, marker: str | None = None) -> dict[str, Any]:
        """What a worker needs to run this point: `slots` points share its host (for the thread
        count when the experiment fixes none); `marker` must be visible in its results root."""
        return {"experiment": plan.experiment, "profile": plan.profile, "seeds": plan.seeds,
                "sets": point_sets(plan, self.values), "device": self.spec.device,
                "threads": getattr(self.spec.module, "THREADS", None), "slots": slots,
                "results": str(self.spec.results.resolve()), "marker": marker}


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
    """A sweep as data: `experiment`, optional `profile`, `seeds`, `jobs`, `executor`, `[set]`,
    `[grid]`, `[slurm]` (partition, time, ...) and `[dask]` (scheduler). Every value is checked
    here (one clear ConfigError), before anything runs; `overrides` (the CLI's) win."""
    data = registry.read_toml(path)
    known = {"experiment", "profile", "seeds", "jobs", "executor", "set", "grid", "slurm", "dask"}
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
                     sets=fixed, jobs=data.get("jobs", 1), **executors.file_keys(data, path))
    slurm = overrides.pop("slurm", None) or {}
    for key, value in overrides.items():
        if value is not None:
            setattr(plan, key, value)
    plan.slurm.update(executors.check_slurm(slurm, "--slurm-"))
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
    executors.check_plan(plan)
    keys = list(plan.grid)
    out, seen = [], set()
    for combo in itertools.product(*(plan.grid[k] for k in keys)):
        values = dict(zip(keys, combo))
        spec = runner.resolve(plan.experiment, profile=plan.profile, seeds=plan.seeds,
                              sets=point_sets(plan, values), device=plan.device, results=plan.results,
                              check_device=plan.executor == "local")  # remote: the workers' GPUs count
        if spec.run_id not in seen:
            seen.add(spec.run_id)
            out.append(Point(values, spec))
    return out


def threads_per_job(jobs: int) -> int:
    """Torch threads of a point beside `jobs - 1` others on this machine (an experiment's own
    THREADS wins over this: see `points.point_threads`)."""
    return points.point_threads(None, jobs)


def threads_text(plan: SweepPlan, points_: list[Point]) -> str:
    """How many torch threads each point gets, and why (the CLI's sweep line)."""
    fixed = getattr(points_[0].spec.module, "THREADS", None) if points_ else None
    return points.threads_text(fixed, plan.executor, plan.jobs)


def run_sweep(plan: SweepPlan, points_: list[Point], on_done: Callable[[Point], None] = lambda p: None,
              on_start: Callable[[str], None] = lambda text: None) -> list[Point]:
    """Run every point not yet complete on the plan's executor; `on_start` gets the backend's
    description once it is ready, `on_done` each point as it finishes (complete points are
    skipped before anything is submitted). Ctrl-C or SIGTERM stops the workers, marks the
    unfinished points interrupted and re-raises (`interrupt.Terminated` for SIGTERM); rerunning
    the sweep resumes them."""
    if _unguarded_worker():
        sys.exit(UNGUARDED_EXIT)
    executors.check_executor(plan.executor)
    root = Path(plan.results) if plan.results is not None else points_[0].spec.results if points_ else None
    todo = [p for p in points_ if not _skip_complete(p, on_done)]
    if not todo:
        return points_
    backend = None
    try:
        with interrupt.sigterm_raises():
            if root is not None:
                store.ensure_writable_root(root)
            if plan.executor == "local" and plan.jobs == 1:
                return _serial(plan, points_, todo, on_done)
            backend = executors.open_backend(plan)
            with _marker(root if backend.remote else None) as marker:
                backend.prepare(marker)
                on_start(backend.describe())
                _drive(backend, plan, todo, on_done, marker)
                backend.finish()
    except KeyboardInterrupt:
        for p in points_:
            p.status = "interrupted" if p.status == "pending" else p.status
        raise
    finally:
        if backend is not None:
            backend.close()
    return points_


def _skip_complete(p: Point, on_done: Callable[[Point], None]) -> bool:
    found = points.stored(p.spec.run_dir)
    if found is not None:
        _apply(p, {**found, "status": "skipped"})
        on_done(p)
    return found is not None


@contextmanager
def _marker(root: Path | None) -> Iterator[str | None]:
    """A file that workers on other hosts must see in the results root (`points.marker_problem`)."""
    if root is None:
        yield None
        return
    name = f".mlbench-sweep-{uuid.uuid4().hex[:12]}"
    store.atomic_write_text(root / name, "a sweep is submitting runs here; removed when it ends\n")
    try:
        yield name
    finally:
        (root / name).unlink(missing_ok=True)


def _serial(plan: SweepPlan, points_: list[Point], todo: list[Point], on_done: Callable[[Point], None]) -> list[Point]:
    """`--jobs 1`: each point in this process, so Ctrl-C stops the run itself."""
    for p in todo:
        _apply(p, _run_point(p.args(plan, slots=1)))
        on_done(p)
    return points_


def _drive(backend: executors.Backend, plan: SweepPlan, todo: list[Point], on_done: Callable[[Point], None],
           marker: str | None) -> None:
    """Submit every point, settle each as its future finishes; on Ctrl-C / SIGTERM stop the backend
    (its runs are marked interrupted) and keep what had finished."""
    futures: dict[Future, Point] = {}
    slots = plan.jobs if plan.executor == "local" else 1
    try:
        submitted = backend.submit_all([p.args(plan, slots=slots, marker=marker) for p in todo])
        futures = dict(zip(submitted, todo))
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                _settle(backend, futures[fut], fut)
                on_done(futures[fut])
    except KeyboardInterrupt:
        backend.stop()
        for fut, p in futures.items():
            if p.status == "pending" and fut.done() and not fut.cancelled() and fut.exception() is None:
                _settle(backend, p, fut)
        raise


def _settle(backend: executors.Backend, point: Point, fut: Future) -> None:
    try:
        outcome = fut.result()
    except KeyboardInterrupt:
        outcome = {"status": "interrupted"}
    except BaseException as exc:
        outcome = backend.failure(exc)
    if backend.remote:
        outcome = points.read_back(point.spec.run_dir, outcome)
    _apply(point, outcome)


def _unguarded_worker() -> bool:
    """True in a spawn worker that is still importing the user's script: a script whose sweep
    call is not under `if __name__ == "__main__":` reaches it again there (the flag is the one
    multiprocessing itself checks before it refuses to start processes from such a worker)."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def _apply(point: Point, outcome: dict[str, Any]) -> None:
    point.status = outcome["status"]
    point.verdict = outcome.get("verdict")
    point.effect = outcome.get("effect")
    point.error = outcome.get("error")
    point.seconds = outcome.get("seconds", 0.0)


def sweep(experiment: str, grid: dict[str, list[Any]], *, jobs: int = 1, profile: str = "quick",
          seeds: int | None = None, sets: list[str] | None = None, device: str = "auto",
          results: str | os.PathLike | None = None, executor: str = "local", scheduler: str | None = None,
          slurm: dict[str, Any] | None = None) -> list[Point]:
    """Library entry point: `mlbench.sweep("attn-scaling", {"lr": [1e-3, 3e-3]}, jobs=2)`;
    `executor="dask", scheduler="tcp://host:8786"` or `executor="slurm", slurm={"partition": "gpu"}`.

    With `jobs` > 1 from a script, call it under `if __name__ == "__main__":` (workers import the
    script again; without the guard this raises a UsageError saying so)."""
    if _unguarded_worker():
        sys.exit(UNGUARDED_EXIT)
    plan = SweepPlan(experiment, {k: [as_set_value(v) for v in vs] for k, vs in grid.items()}, profile,
                     seeds, list(sets or []), device, runner.results_root(results), jobs, executor, scheduler,
                     executors.check_slurm(slurm or {}, "slurm: "))
    return run_sweep(plan, expand(plan))
