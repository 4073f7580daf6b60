"""The runner: spec -> skip/resume -> lock -> seed -> run -> verdict -> write.

Everything a user can get wrong is checked in `spec.resolve` before any file is written.
"""

from __future__ import annotations

import ctypes
import json
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlbench.core import config as cfglib
from mlbench.core import interrupt, lock, registry, sequential, store, trackers
from mlbench.core.artifacts import seed_record
from mlbench.core.context import Context, NoProgress, Progress
from mlbench.core.device import place
from mlbench.core.distributed import barrier, rank_and_world
from mlbench.core.errors import RunStoreError
from mlbench.core.run_result import RunResult
from mlbench.core.rerun import rerun_command
from mlbench.core.spec import (DEFAULT_RESULTS, DEVICES, RunSpec, claims_of, replace_cfg,  # noqa: F401
                               resolve, resolve_device, results_root, run_id_for, version_of)
from mlbench.core.summary import finish
from mlbench.data.cache import default_cache_dir


def _prepare_run_dir(spec: RunSpec, force: bool) -> str | None:
    """Take the run's lock and return the previous status (None for a new run). With `force`,
    everything but the lock is removed first (the lock stays held: no one can slip in)."""
    run_dir = spec.run_dir
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    run_dir.mkdir(exist_ok=True)
    lock.lock(run_dir)
    try:
        if force:
            for child in run_dir.iterdir():
                if child.name not in lock.FILES:
                    shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        for stale in run_dir.rglob(".*.tmp"):  # temp files of a writer that was killed mid-write
            stale.unlink(missing_ok=True)
        status = store.read_status(run_dir)
    except BaseException:
        lock.unlock(run_dir)
        raise
    return "interrupted" if status == "running" else status  # we hold the lock: its writer is gone


def _determinism(spec: RunSpec) -> dict[str, Any]:
    """Pin torch's CPU threads: --threads, else the experiment's THREADS (its measured best: many
    small batched LAPACK calls crawl with more threads), else torch's default."""
    import torch

    threads = spec.threads or getattr(spec.module, "THREADS", None)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)  # experiments seed their own generators; this pins any stray use
    _keep_freed_memory()
    return {"threads": torch.get_num_threads(), "device": spec.device,
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "bitwise_reproducible": spec.device == "cpu"}


def _keep_freed_memory(keep: int = 256 << 20) -> None:
    """glibc gives freed blocks back to the OS after each large free, so a training step that
    frees and re-allocates the same tensors pays a page fault per page every step (measured:
    4.6 s of system time in a 35 s CPU quick run of rectified-flow, 0.4 s with this). Keep up to
    `keep` bytes of freed memory for reuse (M_TRIM_THRESHOLD, M_MMAP_THRESHOLD; process-wide,
    results unchanged). Elsewhere than glibc: nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, keep)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, keep)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # musl or no libc.so.6
        pass


def _device_info(spec: RunSpec) -> dict[str, Any]:
    """accelerate's device of this process and its name; under a launch, every rank's."""
    return place(spec.device).manifest()


def execute(spec: RunSpec, *, force: bool = False, progress: Progress | None = None) -> RunResult:
    """Run (or resume, or find complete) the run described by `spec`.

    Under a multi-process launch every rank calls this; units are spread over the ranks and
    only rank 0 writes files. Other ranks return a result with an empty summary.
    """
    start = time.perf_counter()
    rank, world = rank_and_world(spec.device)
    main = rank == 0
    if main:
        store.ensure_writable_root(spec.results)
    run_dir = spec.run_dir
    if not force and run_dir.exists() and store.read_status(run_dir) == "complete":
        summary = store.read_json(run_dir / "summary.json")
        if not isinstance(summary, dict) or "verdict" not in summary:
            raise RunStoreError(f"corrupt summary.json in {run_dir}: rerun with --force")
        return RunResult(run_dir, summary, True, 0.0, _stored_threads(run_dir))
    if world > 1:
        barrier()  # every rank has looked before rank 0 touches anything
    if not main:
        with _caller_torch_state():
            return _execute_worker(spec, rank, world, start)
    fresh = not run_dir.exists()
    previous = _prepare_run_dir(spec, force)  # before torch is imported: a second writer learns at once
    try:
        with _caller_torch_state():
            return _execute_main(spec, previous, world, progress, start)
    except RunStoreError:
        if fresh and not (run_dir / "units").exists():  # nothing of value yet: leave no folder
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        lock.unlock(run_dir)


def _stored_threads(run_dir: Path) -> int | None:
    manifest = store.read_json(run_dir / "manifest.json")
    threads = manifest.get("determinism", {}).get("threads") if isinstance(manifest, dict) else None
    return threads if isinstance(threads, int) else None


@contextmanager
def _caller_torch_state():
    """A run pins torch's thread count and global seed; the caller (`mlbench.run` in a script or
    notebook) gets back its own afterwards, CUDA generators included where CUDA is in use."""
    import torch

    threads, cpu_rng = torch.get_num_threads(), torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def _new_context(spec: RunSpec, rank: int, world: int, progress: Progress | None, resumed: list[str],
                 seeds: int | None = None, unit_dir: str = "units", sink=None) -> Context:
    cfg_json = json.dumps(cfglib.to_dict(spec.cfg), sort_keys=True)
    return Context(spec.experiment, spec.run_dir, list(range(seeds or spec.seeds)), place(spec.device).device,
                   progress or NoProgress(), cfg_json, cache_dir=default_cache_dir(),
                   resumed_units=resumed, rank=rank, world_size=world, unit_dir=unit_dir, sink=sink)


def _measure(spec: RunSpec, rank: int, world: int, progress: Progress | None,
             resumed: list[str], tracking: trackers.Tracking | None = None) -> tuple[Context, dict, dict | None]:
    """Run the experiment: once, or (`--seeds auto`) once per look with ever more seeds, each
    look's units in units/look<j>-seeds<n>/ so that a resumed run redoes nothing (the trackers
    get each look's records under `look<j>/`).
    Returns the last look's context, the summary written and (sequential) its record."""
    run = registry.run_function(spec.experiment)
    if spec.max_seeds is None:
        ctx = _new_context(spec, rank, world, progress, resumed, sink=tracking and tracking.sink())
        measurements = run(spec.cfg, ctx)
        return ctx, (finish(spec, ctx, measurements) if rank == 0 else {}), None
    looks = sequential.Looks(claims_of(spec.module, spec.cfg), sequential.schedule(spec.seeds, spec.max_seeds))
    for j, n in enumerate(looks.looks, 1):
        ctx = _new_context(spec, rank, world, progress, resumed, seeds=n, unit_dir=f"units/look{j}-seeds{n}",
                           sink=tracking and tracking.sink(f"look{j}/"))
        with ctx.task(f"look {j} of at most {len(looks.looks)}: {n} seeds", None):
            measurements = run(spec.cfg, ctx)
        judged = looks.look(n, measurements)
        if rank == 0:
            store.atomic_write_json(spec.run_dir / "looks.json", looks.record(spec.max_seeds))
        if looks.done:
            break
    record = looks.record(spec.max_seeds)
    summary = finish(spec, ctx, measurements, claims=looks.final(judged), sequential=record) if rank == 0 else {}
    return ctx, summary, record


def _execute_worker(spec: RunSpec, rank: int, world: int, start: float) -> RunResult:
    threads = _determinism(spec)["threads"]
    with interrupt.sigterm_raises():
        _measure(spec, rank, world, None, [])
    return RunResult(spec.run_dir, {}, False, time.perf_counter() - start, threads)


def _execute_main(spec: RunSpec, previous: str | None, world: int, progress: Progress | None,
                  start: float) -> RunResult:
    run_dir = spec.run_dir
    store.atomic_write_json(run_dir / "config.json", spec.config_record())
    determinism = _determinism(spec)
    manifest = store.new_manifest(experiment=spec.experiment, experiment_version=version_of(spec.module),
                                  run_id=spec.run_id, device=_device_info(spec), determinism=determinism)
    manifest.update(resumed_from=previous, processes=world, seeds=seed_record(spec.experiment, spec.seeds, {}),
                    rerun=rerun_command(spec))
    store.atomic_write_json(run_dir / "manifest.json", manifest)
    resumed: list[str] = []
    tracking = None
    try:
        with interrupt.sigterm_raises():
            tracking = trackers.start(spec, world)
            ctx, summary, _ = _measure(spec, 0, world, progress, resumed, tracking)
            if tracking:
                tracking.claims(summary)
            manifest.update(status="complete", ended=store.now(), resumed_units=resumed,
                            seeds=seed_record(spec.experiment, len(ctx.seeds), ctx.streams))
            store.atomic_write_json(run_dir / "manifest.json", manifest)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        manifest.update(status="interrupted" if interrupted else "failed", ended=store.now(),
                        error=None if interrupted else f"{type(exc).__name__}: {exc}",
                        resumed_units=resumed)
        with interrupt.ignored():  # a second Ctrl-C / SIGTERM must not cut this write short
            store.atomic_write_json(run_dir / "manifest.json", manifest)
        raise
    finally:
        if tracking:
            tracking.end()
    return RunResult(run_dir, summary, False, time.perf_counter() - start, determinism["threads"])


def run_experiment(experiment: str, *, force: bool = False, progress: Progress | None = None,
                   **kwargs: Any) -> RunResult:
    """Library entry point: `mlbench.run("attn-scaling", profile="smoke", seeds=2)`."""
    return execute(resolve(experiment, **kwargs), force=force, progress=progress)
