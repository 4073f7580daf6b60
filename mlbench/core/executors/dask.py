"""`--executor dask --scheduler ADDRESS`: points on a dask.distributed cluster (`mlbench[dask]`).

Each point is one task (`client.submit(..., pure=False)`, through `Client.get_executor`, a
`concurrent.futures` executor). The task runs the point as a subprocess, `mlbench run ...`
(`points.cli_args`): PyTorch's own worker processes stay out of Dask's daemonic workers, and a
run that dies with its worker (`child.py`) is marked interrupted. Before anything is submitted,
every worker must see the sweep's marker in the results root (a shared filesystem) and import
mlbench. Torch threads per point: the experiment's THREADS, else the worker's CPUs / the Dask
worker threads on its host. Stopping the sweep cancels its tasks and SIGTERMs their runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from mlbench.core import points
from mlbench.core.errors import UsageError
from mlbench.core.executors import STOP_WAIT, require

CONNECT_TIMEOUT = "20s"
_LOCK = threading.Lock()  # on a worker: the point processes of each sweep (token), and the stopped sweeps
_RUNNING: dict[str, set[subprocess.Popen]] = {}
_STOPPED: set[str] = set()


def check_plan(plan: Any) -> dict[str, str]:
    """How to reach the scheduler (Client keywords), with distributed installed."""
    scheduler = plan.scheduler
    if not scheduler:
        raise UsageError("--executor dask needs --scheduler tcp://HOST:PORT, or a scheduler file "
                         "(`dask scheduler --scheduler-file FILE`)")
    where = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {"address": scheduler}
    if "address" in where and "://" not in scheduler and scheduler.count(":") != 1:
        raise UsageError(f"--scheduler {scheduler!r} is neither tcp://HOST:PORT nor an existing scheduler file")
    require("distributed")
    return where


def connect(plan: Any) -> Any:
    """A Client of the plan's scheduler (its address, or the one a scheduler file names)."""
    where = check_plan(plan)
    distributed = require("distributed")
    try:
        return distributed.Client(**where, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {plan.scheduler}: {exc}") from None


class DaskBackend:
    remote = True

    def __init__(self, plan: Any) -> None:
        self.scheduler = plan.scheduler
        self.results = str(Path(plan.results).resolve())
        self.client = connect(plan)
        self.token = uuid.uuid4().hex
        self.hosts: dict[str, int] = {}

    def prepare(self, marker: str | None) -> None:
        self.hosts = self._check_workers(self.results, marker)
        self.pool = self.client.get_executor(pure=False)

    def _check_workers(self, results: str, marker: str | None) -> dict[str, int]:
        """Every worker sees the results root and imports mlbench; returns worker threads per host."""
        try:
            workers = self.client.scheduler_info(n_workers=-1)["workers"]  # all of them (the default lists 5)
        except TypeError:  # distributed before n_workers: it lists them all
            workers = self.client.scheduler_info()["workers"]
        if not workers:
            raise UsageError(f"the Dask scheduler at {self.scheduler} has no workers: start some "
                             f"(`dask worker {self.scheduler}`)")
        seen = self.client.run(points.marker_problem, results, marker, on_error="return")
        bad = {w: p for w, p in seen.items() if p is not None}
        if bad:
            worker, problem = next(iter(bad.items()))
            if isinstance(problem, BaseException):
                problem = (f"it cannot run mlbench ({type(problem).__name__}: {problem}): install mlbench "
                           f"in the workers' environment")
            raise UsageError(f"Dask worker {worker} (and {len(bad) - 1} more): {problem}" if len(bad) > 1
                             else f"Dask worker {worker}: {problem}")
        hosts: dict[str, int] = {}
        for info in workers.values():
            hosts[info["host"]] = hosts.get(info["host"], 0) + int(info.get("nthreads", 1))
        return hosts

    def describe(self) -> str:
        threads, hosts = sum(self.hosts.values()), len(self.hosts)
        return (f"Dask scheduler {self.scheduler}: {threads} worker thread{'s' * (threads > 1)} on "
                f"{hosts} host{'s' * (hosts > 1)}")

    def submit_all(self, args: list[dict[str, Any]]) -> list:
        return [self.pool.submit(run_point_command, {**a, "slots_by_host": self.hosts}, self.token) for a in args]

    def failure(self, exc: BaseException) -> dict[str, Any]:
        return {"status": "failed", "error": f"the Dask task ended without a result ({type(exc).__name__}: {exc}); "
                                             f"its run is left interrupted: rerun the sweep to resume it"}

    def stop(self) -> None:
        """Cancel every task (queued ones never start), then SIGTERM the runs already started (each
        marks itself interrupted), killing any still alive after STOP_WAIT seconds."""
        if hasattr(self, "pool"):
            self.pool.shutdown(wait=False)
        try:
            self.client.run(_stop_points, self.token, STOP_WAIT, on_error="ignore")
        except Exception:  # the cluster is gone: its runs went with it
            pass

    def finish(self) -> None:
        pass

    def close(self) -> None:
        self.client.close()


def _host_slots(by_host: dict[str, int]) -> int:
    """Points that run at once on this worker's host: every Dask worker thread there."""
    from distributed import get_worker
    from distributed.comm import get_address_host

    try:
        worker = get_worker()
    except ValueError:  # not inside a worker
        return 1
    return by_host.get(get_address_host(worker.address), getattr(worker.state, "nthreads", 1))


def run_point_command(args: dict[str, Any], token: str) -> dict[str, Any]:
    """On a Dask worker: run one point as `mlbench run ...` in a subprocess; its exit code and
    last error line are the outcome (the run itself is read back from the run folder)."""
    start = time.perf_counter()
    problem = points.marker_problem(args["results"], args.get("marker"))
    if problem:
        return {"status": "failed", "error": problem, "seconds": 0.0}
    threads = points.point_threads(args["threads"], _host_slots(args.get("slots_by_host", {})))
    cmd = [sys.executable, "-m", "mlbench.core.executors.child", str(os.getpid()), *points.cli_args(args, threads)]
    with _LOCK:
        if token in _STOPPED:
            return {"status": "interrupted", "seconds": 0.0}
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, errors="replace")
        _RUNNING.setdefault(token, set()).add(proc)
    try:
        _, err = proc.communicate()
    finally:
        with _LOCK:
            _RUNNING[token].discard(proc)
    return exit_outcome(proc.returncode, err, time.perf_counter() - start)


def exit_outcome(code: int, stderr: str, seconds: float) -> dict[str, Any]:
    """`mlbench run`'s exit code as a point's outcome: 0 complete, 130/143 interrupted, else failed
    with its `error:` line (or its last line)."""
    if code == 0:
        return {"status": "complete", "seconds": seconds}
    if code in (130, 143):
        return {"status": "interrupted", "seconds": seconds}
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = next((line[len("error:"):].strip() for line in reversed(lines) if line.startswith("error:")),
                lines[-1] if lines else "")
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
    return {"status": "failed", "error": f"mlbench run {how}{': ' + said if said else ''}", "seconds": seconds}


async def _stop_points(token: str, wait_s: float) -> int:
    """On each worker (Client.run): SIGTERM this sweep's running points and refuse new ones."""
    with _LOCK:
        _STOPPED.add(token)
        procs = list(_RUNNING.get(token, ()))
    for proc in procs:
        proc.terminate()
    deadline = time.monotonic() + wait_s
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    return len(procs)
