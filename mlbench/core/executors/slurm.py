"""`--executor slurm`: the sweep's points as one Slurm job array, through submitit (`mlbench[slurm]`).

Each array task runs one point in its own process (`points.run_point`), writing into the shared
results root; submitit's logs go to `<results>/slurm-logs/`. Torch threads per point: the
experiment's THREADS, else the job's SLURM_CPUS_PER_TASK (`--slurm-cpus-per-task`) / CPU
affinity mask. The jobs use this process's Python (`sys.executable`): the environment, like the
results root, must be on a filesystem the compute nodes see. `cluster = "local"` runs the same
array through submitit's local executor (every point at once on this machine, no Slurm needed).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from mlbench.core import points
from mlbench.core.errors import ConfigError, UsageError
from mlbench.core.executors import STOP_WAIT, require

OPTIONS = ("partition", "time", "gpus-per-task", "cpus-per-task", "array-parallelism", "cluster")
DEFAULTS: dict[str, Any] = {"time": 60, "cluster": "slurm"}  # minutes: sbatch's --time for each point
CLUSTERS = ("slurm", "local")


def parse_time(value: Any, what: str) -> int:
    """Slurm's --time as whole minutes (seconds rounded up): M, M:S, H:M:S, D-H, D-H:M, D-H:M:S."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(value).strip())
    if m is None or isinstance(value, bool):
        raise ConfigError(f"{what} must be a Slurm time (minutes, H:M:S or D-H:M:S), got {value!r}")
    d, a, b, c = m.groups()
    if d is not None:
        h, mins, s = a, b or 0, c or 0  # D-H[:M[:S]]
    else:
        h, mins, s = (a, b, c) if c is not None else (0, a, b or 0)  # H:M:S, M:S or M
    minutes = (int(d or 0) * 24 + int(h)) * 60 + int(mins) + math.ceil(int(s) / 60)
    if minutes < 1:
        raise ConfigError(f"{what} must be at least a minute, got {value!r}")
    return minutes


def check_options(table: dict[str, Any], where: str) -> dict[str, Any]:
    """Slurm settings, checked: a sweep file's [slurm] table (`where` = "FILE: slurm.") or the
    --slurm-* options (`where` = "--slurm-"); every message names the key as its source spells it."""
    unknown = sorted(set(table) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"{where.rstrip('.-: ')}: unknown keys {', '.join(unknown)} (allowed: {', '.join(OPTIONS)})")
    out = dict(table)
    if "partition" in out and (not isinstance(out["partition"], str) or not out["partition"].strip()):
        raise ConfigError(f"{where}partition must be a partition name, got {out['partition']!r}")
    if "time" in out:
        out["time"] = parse_time(out["time"], f"{where}time")
    for key in ("gpus-per-task", "cpus-per-task", "array-parallelism"):
        value = out.get(key, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}{key} must be a positive integer, got {value!r}")
    if out.get("cluster", "slurm") not in CLUSTERS:
        raise ConfigError(f"{where}cluster must be one of {', '.join(CLUSTERS)}, got {out['cluster']!r}")
    return out


def parameters(opts: dict[str, Any], experiment: str) -> dict[str, Any]:
    """submitit's names for our settings (AutoExecutor: generic ones bare, Slurm's prefixed)."""
    named = {"slurm_partition": opts.get("partition"), "cpus_per_task": opts.get("cpus-per-task"),
             "slurm_gpus_per_task": opts.get("gpus-per-task"),
             "slurm_array_parallelism": opts.get("array-parallelism")}
    return {"name": f"mlbench-{experiment}", "timeout_min": opts["time"],
            **{k: v for k, v in named.items() if v is not None}}


def check_plan(plan: Any) -> dict[str, Any]:
    """The plan's Slurm settings (defaults filled in), with submitit installed and Slurm present."""
    opts = {**DEFAULTS, **check_options(plan.slurm, "slurm: ")}
    require("submitit")
    if opts["cluster"] == "slurm" and shutil.which("srun") is None:
        raise UsageError("--executor slurm: no Slurm here (srun not found): submit from a Slurm login node, "
                         "or try the sweep on this machine with --slurm-cluster local")
    return opts


class JobEnded(Exception):
    """A job that ended without a result: killed, cancelled, out of time or memory."""


class SlurmBackend:
    remote = True

    def __init__(self, plan: Any) -> None:
        self.opts = check_plan(plan)
        self.submitit = require("submitit")
        self.experiment = plan.experiment
        self.logs = Path(plan.results).resolve() / "slurm-logs"
        self.jobs: list = []
        self.closed = threading.Event()
        self.poll_s = 0.2 if self.opts["cluster"] == "local" else 10.0

    def prepare(self, marker: str | None) -> None:
        self.executor = self.submitit.AutoExecutor(folder=self.logs, cluster=self.opts["cluster"])
        self.executor.update_parameters(**parameters(self.opts, self.experiment))

    def describe(self) -> str:
        where = "submitit's local executor" if self.opts["cluster"] == "local" else "Slurm"
        return f"one job array on {where}, logs in {self.logs}"

    def submit_all(self, args: list[dict[str, Any]]) -> list[Future]:
        try:
            with self.executor.batch():
                jobs = [self.executor.submit(points.run_point, a, "return") for a in args]
        except Exception as exc:  # sbatch refused it (bad partition, time over the limit, ...)
            said = (str(exc).strip().splitlines() or [type(exc).__name__])[-1]
            raise UsageError(f"the job array was not submitted: {said}") from None
        self.jobs = jobs
        futures: list[Future] = [Future() for _ in jobs]
        for fut in futures:
            fut.set_running_or_notify_cancel()
        threading.Thread(target=self._watch, args=(dict(zip(jobs, futures)),), daemon=True).start()
        return futures

    def _watch(self, pending: dict) -> None:
        """Turn finished jobs into finished futures (submitit rate-limits its sacct calls)."""
        while pending and not self.closed.is_set():
            for job, fut in list(pending.items()):
                if not _ended(job, unknown=False):  # sacct could not say: ask again later
                    continue
                try:
                    fut.set_result(job.result())
                except Exception as exc:  # the job left no result
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    fut.set_exception(JobEnded(f"job {job.job_id} ended without a result ({first}); log: "
                                               f"{job.paths.stderr}"))
                del pending[job]
            self.closed.wait(self.poll_s)

    def failure(self, exc: BaseException) -> dict[str, Any]:
        return {"status": "failed", "error": f"{exc}: rerun the sweep to resume its run"}

    def stop(self) -> None:
        """Cancel every job (scancel: Slurm's SIGTERM marks a running point interrupted, and it
        returns that) and wait up to STOP_WAIT seconds for them to end."""
        for job in self.jobs:
            try:
                if self.opts["cluster"] == "local":  # its job id is the pid of the job's controller,
                    os.kill(int(job.job_id), signal.SIGTERM)  # which forwards SIGTERM as Slurm would
                else:
                    job.cancel(check=False)
            except Exception:  # already ended
                pass
        deadline = time.monotonic() + STOP_WAIT
        try:
            while time.monotonic() < deadline and not all(_ended(j) for j in self.jobs):
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        self.closed.set()

    def finish(self) -> None:
        pass

    def close(self) -> None:
        self.closed.set()


def _ended(job: Any, unknown: bool = True) -> bool:
    """Whether a job has ended; `unknown` where Slurm could not be asked."""
    try:
        return job.done()
    except Exception:
        return unknown
