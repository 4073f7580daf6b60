"""The runner: resolve -> run id -> skip/resume -> seed -> run -> verdict -> write.

Everything a user can get wrong is checked in `resolve` before any file is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mlbench.core import config as cfglib
from mlbench.core import registry, store
from mlbench.core.context import Context, NoProgress, Progress
from mlbench.core.errors import DeviceError, RunStoreError, UsageError
from mlbench.core.verdict import Claim
from mlbench.data.cache import default_cache_dir

DEFAULT_RESULTS = "results"
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class RunSpec:
    experiment: str
    module: ModuleType
    profile: str
    cfg: Any
    seeds: int
    device: str  # resolved
    threads: int | None
    results: Path
    run_id: str

    @property
    def run_dir(self) -> Path:
        return self.results / self.experiment / self.run_id

    def config_record(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "experiment_version": version_of(self.module),
                "profile": self.profile, "seeds": self.seeds, "device": self.device,
                "config": cfglib.to_dict(self.cfg)}


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    already_complete: bool
    seconds: float


def version_of(module: ModuleType) -> int:
    return int(getattr(module, "VERSION", 1))


def results_root(results: str | os.PathLike | None) -> Path:
    return Path(results or os.environ.get("MLBENCH_RESULTS") or DEFAULT_RESULTS)


def resolve_device(device: str) -> str:
    if device not in DEVICES:
        raise UsageError(f"unknown device '{device}': use one of {', '.join(DEVICES)}")
    if device == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise DeviceError("--device cuda was requested but no CUDA GPU is available; use --device cpu")
    return "cpu"


def run_id_for(record: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:10]
    return f"{record['profile']}-{digest}"


def resolve(experiment: str, *, profile: str = "quick", seeds: int | None = None,
            sets: list[str] | tuple[str, ...] = (), config_file: str | os.PathLike | None = None,
            device: str = "auto", threads: int | None = None,
            results: str | os.PathLike | None = None) -> RunSpec:
    """Turn user input into a complete, validated run description (writes nothing)."""
    info = registry.info(experiment)
    if profile not in info.profiles:
        raise UsageError(f"unknown profile '{profile}' for {experiment}: choose from "
                         f"{', '.join(info.profiles)}")
    if seeds is not None and seeds < 1:
        raise UsageError(f"--seeds must be a positive integer, got {seeds}")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads must be a positive integer, got {threads}")
    overrides = cfglib.parse_sets(list(sets))  # syntax errors before the slow import
    module = registry.load(experiment)
    prof = dict(info.profiles[profile])
    n_seeds = int(prof.pop("seeds", 3))
    cfg = cfglib.apply(module.Config, module.Config(), prof, f"profile '{profile}'")
    if config_file is not None:
        user = registry.read_toml(Path(config_file))
        n_seeds = _seed_count(user.pop("seeds", n_seeds), str(config_file))
        cfg = cfglib.apply(module.Config, cfg, user, str(config_file))
    cfg = cfglib.apply(module.Config, cfg, overrides, "--set")
    n_seeds = seeds if seeds is not None else n_seeds
    spec = RunSpec(experiment, module, profile, cfg, n_seeds, resolve_device(device), threads,
                   results_root(results), run_id="")
    check = getattr(module, "check", None)  # optional: can this config run on this device?
    if check is not None:
        check(cfg, spec.device)
    spec.run_id = run_id_for(spec.config_record())
    return spec


def _seed_count(value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{source}: 'seeds' must be a positive integer, got {value!r}")
    return value


def claims_of(module: ModuleType, cfg: Any) -> list[Claim]:
    return list(module.claims(cfg)) if hasattr(module, "claims") else list(module.CLAIMS)


def _prepare_run_dir(spec: RunSpec, force: bool) -> str | None:
    """Take the run's lock and return the previous status (None for a new run)."""
    run_dir = spec.run_dir
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    if force and run_dir.exists():
        _lock(run_dir)  # refuse to delete a run another process is writing
        shutil.rmtree(run_dir)
    run_dir.mkdir(exist_ok=True)
    _lock(run_dir)
    for stale in run_dir.rglob(".*.tmp"):  # temp files of a writer that was killed mid-write
        stale.unlink(missing_ok=True)
    return store.read_status(run_dir)


def _lock(run_dir: Path) -> None:
    """An O_EXCL lock file holding our pid; a stale one (dead pid) is taken over."""
    lock = run_dir / ".lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid == os.getpid():
                return
            if pid and _alive(pid):
                raise RunStoreError(f"run {run_dir} is being written by another mlbench process "
                                    f"(pid {pid}); wait for it to finish") from None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return
    raise RunStoreError(f"could not lock {run_dir}")


def _unlock(run_dir: Path) -> None:
    lock = run_dir / ".lock"
    try:
        if lock.read_text() == str(os.getpid()):
            lock.unlink()
    except OSError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _distributed(device: str) -> tuple[int, int]:
    """(rank, world size) under `accelerate launch` / `torchrun`; (0, 1) otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")  # initialises the process group (gloo on CPU)
    return state.process_index, state.num_processes


def _determinism(spec: RunSpec) -> dict[str, Any]:
    """Pin torch's CPU threads: --threads, else the experiment's THREADS (its measured best: many
    small batched LAPACK calls crawl with more threads), else torch's default."""
    import torch

    threads = spec.threads or getattr(spec.module, "THREADS", None)
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(0)  # experiments seed their own generators; this pins any stray use
    return {"threads": torch.get_num_threads(), "device": spec.device,
            "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
            "bitwise_reproducible": spec.device == "cpu"}


def _device_info(spec: RunSpec) -> dict[str, Any]:
    import torch

    if spec.device == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(0)}
    return {"type": "cpu", "name": "cpu"}


def execute(spec: RunSpec, *, force: bool = False, progress: Progress | None = None) -> RunResult:
    """Run (or resume, or find complete) the run described by `spec`.

    Under a multi-process launch every rank calls this; units are spread over the ranks and
    only rank 0 writes files. Other ranks return a result with an empty summary.
    """
    start = time.perf_counter()
    rank, world = _distributed(spec.device)
    main = rank == 0
    if main:
        store.ensure_writable_root(spec.results)
    run_dir = spec.run_dir
    if not force and run_dir.exists() and store.read_status(run_dir) == "complete":
        summary = store.read_json(run_dir / "summary.json")
        if not isinstance(summary, dict) or "verdict" not in summary:
            raise RunStoreError(f"corrupt summary.json in {run_dir}: rerun with --force")
        return RunResult(run_dir, summary, True, 0.0)
    if world > 1:
        _barrier()  # every rank has looked before rank 0 touches anything
    if not main:
        return _execute_worker(spec, rank, world, start)
    fresh = not run_dir.exists()
    previous = _prepare_run_dir(spec, force)
    try:
        return _execute_main(spec, previous, world, progress, start)
    except RunStoreError:
        if fresh and not (run_dir / "units").exists():  # nothing of value yet: leave no folder
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        _unlock(run_dir)


def _barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def _new_context(spec: RunSpec, rank: int, world: int, progress: Progress | None) -> Context:
    cfg_json = json.dumps(cfglib.to_dict(spec.cfg), sort_keys=True)
    return Context(spec.experiment, spec.run_dir, list(range(spec.seeds)), spec.device,
                   progress or NoProgress(), cfg_json, cache_dir=default_cache_dir(),
                   rank=rank, world_size=world)


def _execute_worker(spec: RunSpec, rank: int, world: int, start: float) -> RunResult:
    _determinism(spec)
    ctx = _new_context(spec, rank, world, None)
    with _sigterm_as_interrupt():
        spec.module.run(spec.cfg, ctx)
    return RunResult(spec.run_dir, {}, False, time.perf_counter() - start)


def _execute_main(spec: RunSpec, previous: str | None, world: int, progress: Progress | None,
                  start: float) -> RunResult:
    run_dir = spec.run_dir
    store.atomic_write_json(run_dir / "config.json", spec.config_record())
    manifest = store.new_manifest(experiment=spec.experiment, experiment_version=version_of(spec.module),
                                  run_id=spec.run_id, device=_device_info(spec),
                                  determinism=_determinism(spec))
    manifest.update(resumed_from=previous, processes=world)
    store.atomic_write_json(run_dir / "manifest.json", manifest)
    ctx = _new_context(spec, 0, world, progress)
    try:
        with _sigterm_as_interrupt():
            measurements = spec.module.run(spec.cfg, ctx)
            summary = _finish(spec, ctx, measurements)
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt)
        manifest.update(status="interrupted" if interrupted else "failed", ended=store.now(),
                        error=None if interrupted else f"{type(exc).__name__}: {exc}",
                        resumed_units=ctx.resumed_units)
        store.atomic_write_json(run_dir / "manifest.json", manifest)
        raise
    manifest.update(status="complete", ended=store.now(), resumed_units=ctx.resumed_units)
    store.atomic_write_json(run_dir / "manifest.json", manifest)
    return RunResult(run_dir, summary, False, time.perf_counter() - start)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a scheduler or `kill`) stops the run like Ctrl-C: marked interrupted, resumable."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _finish(spec: RunSpec, ctx: Context, measurements: dict[str, Any]) -> dict[str, Any]:
    claims = [c.judge(measurements) for c in claims_of(spec.module, spec.cfg)]
    head = claims[0]
    summary = {
        "experiment": spec.experiment, "experiment_version": version_of(spec.module),
        "run_id": spec.run_id, "profile": spec.profile, "seeds": spec.seeds, "device": spec.device,
        "verdict": head["verdict"],
        "headline": {"claim": head["id"], "test": head["test"], "effect": head["effect"], "ci": head["ci"]},
        "claims": claims,
        "measurements": measurements,
        "tables": [t.name for t in ctx.tables], "plots": ctx.plots,
    }
    run_dir = spec.run_dir
    lines = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in ctx.records)
    store.atomic_write_text(run_dir / "metrics.jsonl", lines)
    if ctx.tables:
        store.atomic_write_text(run_dir / "table.csv", ctx.tables[0].csv())
        for extra in ctx.tables[1:]:
            store.atomic_write_text(run_dir / f"table-{extra.name}.csv", extra.csv())
    store.atomic_write_text(run_dir / "table.md", _table_md(spec, ctx, claims))
    store.atomic_write_json(run_dir / "summary.json", summary)
    return summary


def _fmt_ci(ci: list[float] | None) -> str:
    return f"[{ci[0]:.4g}, {ci[1]:.4g}]" if ci else "-"


def _table_md(spec: RunSpec, ctx: Context, claims: list[dict[str, Any]]) -> str:
    parts = [f"# {spec.experiment} — run {spec.run_id}", "",
             f"profile `{spec.profile}`, {spec.seeds} seeds, device `{spec.device}`", ""]
    parts += [t.markdown() for t in ctx.tables]
    parts += ["### Verdicts", "", "| claim | verdict | test | effect | 95% CI |", "|---|---|---|---|---|"]
    for c in claims:
        eff = "-" if c["effect"] is None else f"{c['effect']:.4g}"
        text, test = (c["text"].replace("|", "\\|"), c["test"].replace("|", "\\|"))
        parts.append(f"| {c['id']}: {text} | **{c['verdict']}** | {test} | {eff} | {_fmt_ci(c['ci'])} |")
    parts += ["", *[f"![{p}](plots/{p})" for p in ctx.plots], ""]
    return "\n".join(parts)


def run_experiment(experiment: str, *, force: bool = False, progress: Progress | None = None,
                   **kwargs: Any) -> RunResult:
    """Library entry point: `mlbench.run("attn-scaling", profile="smoke", seeds=2)`."""
    return execute(resolve(experiment, **kwargs), force=force, progress=progress)


def replace_cfg(spec: RunSpec, **changes: Any) -> RunSpec:
    out = dataclasses.replace(spec, cfg=dataclasses.replace(spec.cfg, **changes))
    out.run_id = run_id_for(out.config_record())
    return out
