"""`--executor local --jobs N`: N spawn worker processes on this machine (`ProcessPoolExecutor`)."""

from __future__ import annotations

import multiprocessing
import signal
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mlbench.core import points
from mlbench.core.errors import UsageError
from mlbench.core.executors import STOP_WAIT

UNGUARDED_EXIT = 78  # a worker that re-imported a script which starts a sweep at import (EX_CONFIG)
GUARD_HINT = ("a script that calls mlbench.sweep(..., jobs=N>1) must make that call under "
              "`if __name__ == \"__main__\":` (each worker process starts by importing the script again)")


def _worker_init() -> None:
    """Workers leave Ctrl-C to the parent (the terminal sends it to all of them): the parent stops
    each one with a single SIGTERM, which the runner turns into an interrupted, resumable run."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class PoolBackend:
    remote = False

    def __init__(self, plan: Any) -> None:
        self.jobs = plan.jobs
        self.pool = ProcessPoolExecutor(plan.jobs, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_worker_init)
        self.workers: list = []

    def prepare(self, marker: str | None) -> None:
        pass

    def describe(self) -> str:
        return f"{self.jobs} local worker processes"

    def submit(self, fn, *args: Any) -> Future:
        """`fn(*args)` in a worker (a module-level function: spawn workers import it by name)."""
        return self.pool.submit(fn, *args)

    def submit_all(self, args: list[dict[str, Any]]) -> list[Future]:
        futures = [self.submit(points.run_point, a, "exit") for a in args]
        self.workers = list(getattr(self.pool, "_processes", {}).values())  # all of them: spawn starts them on submit
        return futures

    def failure(self, exc: BaseException) -> dict[str, Any]:
        if isinstance(exc, BrokenProcessPool):  # a worker that died (e.g. killed): the point can be resumed
            return {"status": "failed", "error": f"worker died: {type(exc).__name__}: {exc}"}
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}

    def stop(self) -> None:
        """SIGTERM each live worker (it marks its run interrupted and exits), wait for them, and
        kill any that has not exited after STOP_WAIT seconds or on a second Ctrl-C: no worker outlives us."""
        workers = list(getattr(self.pool, "_processes", {}).values())
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
        self.pool.shutdown(wait=True, cancel_futures=True)

    def finish(self) -> None:
        self.pool.shutdown(wait=True)
        if any(w.exitcode == UNGUARDED_EXIT for w in self.workers):
            raise UsageError(f"the sweep's worker processes stopped before running any point: {GUARD_HINT}")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
