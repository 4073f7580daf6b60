"""Where a sweep's points run: existing engines behind one `concurrent.futures` seam.

A backend is made from the plan (its settings checked, its engine imported and connected, nothing
written), `prepare`d once the results root exists (remote workers must see the sweep's marker
there), then turns each point's arguments into a `concurrent.futures.Future` (`submit_all`)
whose result is the point's outcome dict, and can stop what it started (`stop`): the sweep waits
on those futures and reads every finished point back from the shared run store. Backends:

- `local`: a spawn `ProcessPoolExecutor` of `--jobs N` workers (jobs = 1 runs in the sweep's
  own process, in `mlbench.core.sweep`);
- `slurm`: one job array through submitit (`mlbench[slurm]`), see `slurm.py`;
- `dask`: a dask.distributed cluster (`mlbench[dask]`), see `dask.py`.

The optional engines are imported only when used; a missing one is one UsageError naming the
`pip install` that adds it. This package imports nothing heavy at import time.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Protocol

from mlbench.core.errors import ConfigError, UsageError

EXECUTORS = ("local", "slurm", "dask")
EXTRAS = {"submitit": "slurm", "distributed": "dask"}
STOP_WAIT = 30.0  # seconds a stopped point gets to mark its run interrupted before it is killed


class Backend(Protocol):
    remote: bool  # True: points run on other hosts; outcomes are read back from the run store

    def prepare(self, marker: str | None) -> None: ...
    def describe(self) -> str: ...
    def submit_all(self, args: list[dict[str, Any]]) -> list[Any]: ...  # concurrent.futures.Future each
    def failure(self, exc: BaseException) -> dict[str, Any]: ...  # the outcome of a future that raised
    def stop(self) -> None: ...
    def finish(self) -> None: ...  # after every future is done: raise what the backend saw go wrong
    def close(self) -> None: ...


def require(module: str) -> ModuleType:
    """Import an optional engine, or say in one line which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS[module]
        raise UsageError(f"--executor {extra} needs {module} ({exc}): pip install 'mlbench[{extra}]'") from None


def check_executor(name: Any) -> str:
    if name not in EXECUTORS:
        raise UsageError(f"unknown executor {name!r}: use one of {', '.join(EXECUTORS)}")
    return name


def check_slurm(options: dict[str, Any], where: str) -> dict[str, Any]:
    """Slurm settings checked (`slurm.check_options`; submitit is not imported)."""
    from mlbench.core.executors.slurm import check_options

    return check_options(options, where)


def file_keys(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """`executor`, `[slurm]` and `[dask] scheduler` of a sweep file, checked."""
    out: dict[str, Any] = {}
    if "executor" in data:
        if data["executor"] not in EXECUTORS:
            raise ConfigError(f"{path}: 'executor' must be one of {', '.join(EXECUTORS)}, "
                              f"got {data['executor']!r}")
        out["executor"] = data["executor"]
    for table in ("slurm", "dask"):
        if not isinstance(data.get(table, {}), dict):
            raise ConfigError(f"{path}: '{table}' must be a table ([{table}] with key = value lines)")
    out["slurm"] = check_slurm(data.get("slurm", {}), f"{path}: slurm.")
    dask = data.get("dask", {})
    if set(dask) - {"scheduler"} or not isinstance(dask.get("scheduler", ""), str):
        raise ConfigError(f"{path}: [dask] takes one key, scheduler = \"tcp://HOST:PORT\" (or a scheduler file)")
    if "scheduler" in dask:
        out["scheduler"] = dask["scheduler"]
    return out


def check_plan(plan: Any) -> None:
    """Everything about the plan's executor that can be checked here and now (names, settings,
    the engine installed, Slurm present): before the sweep prints or writes anything."""
    name = check_executor(plan.executor)
    if name == "slurm":
        from mlbench.core.executors.slurm import check_plan as check
    elif name == "dask":
        from mlbench.core.executors.dask import check_plan as check
    else:
        return
    check(plan)


def open_backend(plan: Any) -> Backend:
    """The plan's backend: settings checked, engine imported and connected; nothing written yet."""
    check_plan(plan)
    name = plan.executor
    factory: Callable[..., Backend]
    if name == "local":
        from mlbench.core.executors.local import PoolBackend as factory
    elif name == "slurm":
        from mlbench.core.executors.slurm import SlurmBackend as factory
    else:
        from mlbench.core.executors.dask import DaskBackend as factory
    return factory(plan)
