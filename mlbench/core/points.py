"""One sweep point where it runs, and what it left in the run store.

Every executor runs a point the same way: `run_point(args)` in the worker's own process (the
local pool, a Slurm job), or the `mlbench run` command it stands for (`cli_args`; Dask workers
run it as a subprocess). Either way the run lands in the shared run store, and the parent reads
each finished point back from its run folder (`read_back`), so every backend shows the same results.

Torch threads per point (`point_threads`): the experiment's own `THREADS` (its measured best)
when it has one; else the CPUs this worker may use (`available_cpus`) shared by the points that
run beside it on the host. Each run records the count in its manifest; it is not in the run id.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

from mlbench.core import interrupt, runner, store
from mlbench.core.errors import MlbenchError, RunStoreError

ON_STOP = ("raise", "exit", "return")  # what a stopped point does: see run_point


def available_cpus() -> int:
    """CPUs this process may use: the CPU affinity mask (what cgroups / taskset / a Slurm job
    allow), bounded by SLURM_CPUS_PER_TASK where Slurm sets it; os.cpu_count() where neither is known."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks (macOS)
        cpus = os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        cpus = min(cpus, int(slurm))
    return max(1, cpus)


def point_threads(fixed: int | None, slots: int) -> int:
    """Torch threads for one point: `fixed` (the experiment's THREADS) when set, else this
    worker's CPUs divided among the `slots` points that run at once beside it."""
    if fixed is not None:
        return fixed
    return max(1, available_cpus() // max(1, slots))


def threads_text(fixed: int | None, executor: str, jobs: int) -> str:
    if fixed is not None:
        return f"{fixed} torch thread{'s' * (fixed > 1)} per run (the experiment's THREADS)"
    if executor == "local":
        return f"{point_threads(None, jobs)} torch threads per run (this machine's CPUs / {jobs} jobs)"
    return "torch threads per run: its worker's CPUs (SLURM_CPUS_PER_TASK, CPU affinity) / the runs beside it"


def marker_problem(results: str, marker: str | None) -> str | None:
    """Why this host cannot share the sweep's run store, or None. The parent writes `marker` in
    the results root before it submits: a worker that does not see it writes elsewhere."""
    if marker is None or (Path(results) / marker).exists():
        return None
    return (f"results root {results} is not the sweep's on host {platform.node()} (its marker {marker} is "
            f"missing): the results root must be on a filesystem every worker sees")


def run_kwargs(args: dict[str, Any], threads: int) -> dict[str, Any]:
    keys = ("experiment", "profile", "seeds", "sets", "device", "results")
    return {**{k: args[k] for k in keys}, "threads": threads}


def run_point(args: dict[str, Any], on_stop: str = "raise") -> dict[str, Any]:
    """Run one point in this process. A user-facing or experiment error is a failed point
    (reported at the end). Stopped (Ctrl-C, SIGTERM) the runner marks the run interrupted; then
    `on_stop` = "raise" re-raises (the sweep's own process), "exit" exits at once (a pool worker,
    which would otherwise pick up another queued point), "return" reports it (a Slurm job)."""
    start = time.perf_counter()
    problem = marker_problem(args["results"], args.get("marker"))
    if problem:
        return {"status": "failed", "error": problem, "seconds": 0.0}
    threads = point_threads(args["threads"], args["slots"])
    try:
        result = runner.run_experiment(**run_kwargs(args, threads))
    except KeyboardInterrupt as exc:
        if on_stop == "exit":
            os._exit(interrupt.exit_code(exc))
        if on_stop == "return":
            return {"status": "interrupted", "error": f"stopped by {interrupt.signal_name(exc)}",
                    "seconds": time.perf_counter() - start}
        raise
    except MlbenchError as exc:
        return {"status": "failed", "error": str(exc), "seconds": time.perf_counter() - start}
    except Exception as exc:  # an experiment bug must not stop the other points
        return {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "seconds": time.perf_counter() - start}
    head = result.summary["headline"]
    return {"status": "skipped" if result.already_complete else "complete", "verdict": result.summary["verdict"],
            "effect": head.get("effect"), "seconds": time.perf_counter() - start}


def cli_args(args: dict[str, Any], threads: int) -> list[str]:
    """The `mlbench run` arguments of a point: the same run (id, folder, threads) as run_point."""
    out = ["run", args["experiment"], "--profile", args["profile"], "--device", args["device"],
           "--threads", str(threads), "--results", args["results"]]
    if args["seeds"] is not None:
        out += ["--seeds", str(args["seeds"])]
    for s in args["sets"]:
        out += ["--set", s]
    return out


def stored(run_dir: Path) -> dict[str, Any] | None:
    """The outcome of a complete run read from its folder (verdict, headline effect), else None."""
    try:
        if store.read_status(run_dir) != "complete":
            return None
        summary = store.read_json(run_dir / "summary.json")
        return {"status": "complete", "verdict": summary["verdict"], "effect": summary["headline"].get("effect")}
    except (RunStoreError, KeyError, TypeError, AttributeError):
        return None


def read_back(run_dir: Path, outcome: dict[str, Any]) -> dict[str, Any]:
    """A remote point's outcome: its verdict from the run folder (the store every backend shares);
    the worker's own report gives only the status, seconds and error text."""
    if outcome["status"] not in ("complete", "skipped"):
        return outcome
    found = stored(run_dir)
    if found is None:
        return {**outcome, "status": "failed",
                "error": f"the worker reported this run complete, but {run_dir} holds no complete run here: "
                         f"the results root must be on a filesystem every worker sees"}
    return {**outcome, **found, "status": outcome["status"]}
