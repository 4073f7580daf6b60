"""`ctx`: an experiment's one door to the outside world.

An experiment's `run(cfg, ctx)` gets from it: the device, a generator per (stream, seed),
resumable units of work, the step loop with its progress, logging, checkpoints, tables and
plots. It never prints, reads the environment or writes files itself.
"""

from __future__ import annotations

import io
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from mlbench.core import store
from mlbench.core.artifacts import canonical_safetensors, derive_seed, load_tensors, safe_name
from mlbench.core.distributed import all_gather_json
from mlbench.core.grid import Grid, _host
from mlbench.core.progress import NoProgress, Progress, ProgressTask
from mlbench.core.tables import Table

__all__ = ["Context", "NoProgress", "Progress", "Step", "load_tensors", "safe_name", "derive_seed"]

T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One iteration of `ctx.steps`: train at `index` unless `last`; evaluate first if `evaluate`."""
    index: int
    evaluate: bool
    last: bool


@dataclass
class Context:
    experiment: str
    run_dir: Path
    seeds: list[int]  # seed indices
    device_name: str = "cpu"  # accelerate's device for this process: "cpu", "cuda", "cuda:1" (core/device.py)
    progress: Progress = field(default_factory=NoProgress)
    config_json: str = "{}"  # stored in checkpoint metadata
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "mlbench")  # datasets
    records: list[dict[str, Any]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    resumed_units: list[str] = field(default_factory=list)
    rank: int = 0  # this process under a multi-process launch
    world_size: int = 1
    unit_dir: str = "units"  # where units are stored, relative to run_dir
    streams: dict[str, set[int]] = field(default_factory=dict)  # (stream, seed index) drawn from (manifest)
    sink: Callable[[list[dict[str, Any]]], None] | None = None  # --log-with trackers (main process)
    _unit_log: list[dict[str, Any]] | None = None
    _blobs: dict[str, bytes] | None = None
    _unit_streams: dict[str, set[int]] | None = None  # streams drawn by the unit being computed
    _saved: dict[str, bytes] = field(default_factory=dict)  # checkpoints of this run, by name

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- device and seeds ----------------------------------------------------------------
    @property
    def device(self):
        import torch

        return torch.device(self.device_name)

    def accelerator(self, mixed_precision: str = "no", **kwargs: Any):
        """An `accelerate.Accelerator` on this run's device (`mixed_precision` "no", "fp16" or
        "bf16"), for code that trains as users of accelerate do (see `mlbench.core.device`)."""
        from mlbench.core.device import accelerator

        return accelerator(self.device.type, mixed_precision, **kwargs)

    def seed(self, stream: str, index: int) -> int:
        """The seed of (this experiment, `stream`, seed index): adding a stream shifts no other."""
        self.streams.setdefault(stream, set()).add(int(index))
        if self._unit_streams is not None:
            self._unit_streams.setdefault(stream, set()).add(int(index))
        return derive_seed(self.experiment, stream, index)

    def generator(self, stream: str, index: int, device: Any = "cpu"):
        import torch

        g = torch.Generator(device=device)
        g.manual_seed(self.seed(stream, index))
        return g

    def generators(self, stream: str, device: Any = "cpu") -> list:
        """One generator of `stream` per seed, in seed order."""
        return [self.generator(stream, k, device) for k in self.seeds]

    def grid(self, arms: Sequence[str], labels: Sequence[str] | None = None, **coords: Any) -> Grid:
        """The stacked models of `arms` × this run's seeds (see `mlbench.core.grid`); `labels`
        name the arms in logs and checkpoints when the arm keys are not what a reader wants."""
        return Grid(tuple(arms), tuple(self.seeds), coords, labels)

    # -- units of work -------------------------------------------------------------------
    def unit(self, key: str, fn: Callable[[], T]) -> T:
        """Run `fn` once per run: its JSON-able result and log lines are stored under
        `units/<key>.json`, so an interrupted run resumes without redoing finished units."""
        return self.map_units({key: fn})[key]

    def map_units(self, units: dict[str, Callable[[], Any]]) -> dict[str, Any]:
        """Several independent units: on one process, one after another (each stored as it
        finishes); under a multi-process launch, spread over the ranks, results gathered to all
        ranks, and only the main process writes. Logs keep the order of `units`."""
        done = {k: self._load_unit(k) for k in units}
        pending = [k for k in units if done[k] is None]
        mine = pending[self.rank :: self.world_size]
        computed = {}
        for key in mine:
            computed[key] = self._compute_unit(key, units[key])
            if self.world_size == 1:
                self._store_unit(key, computed[key])
        if self.world_size > 1:
            computed = {k: v for part in all_gather_json(computed, self.world_size) for k, v in part.items()}
            for key in pending:
                self._store_unit(key, computed[key])
        results = {}
        for key in units:
            saved = done[key] or computed[key]
            self.records.extend(saved["log"])
            if self.sink is not None and key not in mine:  # resumed, or another rank's: not sent yet
                self.sink(saved["log"])
            results[key] = saved["result"]
        return results

    def _unit_path(self, key: str) -> Path:
        return self.run_dir / self.unit_dir / f"{safe_name(key, 'unit key')}.json"

    def _load_unit(self, key: str) -> dict[str, Any] | None:
        path = self._unit_path(key)
        if not path.exists():
            return None
        self.resumed_units.append(key)
        saved = store.read_json(path)
        self._note_streams(saved)
        return saved

    def _note_streams(self, saved: dict[str, Any]) -> None:
        """Streams a unit drew from, kept in its record: a resumed run still lists them."""
        for stream, indices in (saved.get("streams") or {}).items():
            self.streams.setdefault(stream, set()).update(indices)

    def _compute_unit(self, key: str, fn: Callable[[], Any]) -> dict[str, Any]:
        outer, outer_streams = self._unit_log, self._unit_streams
        self._unit_log, self._blobs, self._unit_streams = [], {}, {}
        try:
            result = fn()
            streams = {s: sorted(k) for s, k in sorted(self._unit_streams.items())}
            return {"result": result, "log": self._unit_log, "checkpoints": self._blobs, "streams": streams}
        finally:
            if outer_streams is not None:  # a unit inside a unit: the outer one drew them too
                for stream, indices in self._unit_streams.items():
                    outer_streams.setdefault(stream, set()).update(indices)
            self._unit_log, self._blobs, self._unit_streams = outer, None, outer_streams

    def _store_unit(self, key: str, saved: dict[str, Any]) -> None:
        """Checkpoints first, then the unit record: a unit file means its weights are on disk."""
        blobs = saved.pop("checkpoints", {})
        self._saved.update(blobs)  # every rank can load them, whoever trained them
        self._note_streams(saved)  # units other ranks computed
        if not self.is_main:
            return
        for name, blob in blobs.items():
            store.atomic_write_bytes(self.run_dir / "checkpoints" / f"{name}.safetensors", blob)
        store.atomic_write_json(self._unit_path(key), saved)

    # -- the step loop -------------------------------------------------------------------
    def steps(self, total: int, *, every: int | None = None, desc: str = "train") -> Iterator[Step]:
        """Steps 0..total with a progress bar: `evaluate` at every `every`-th step and at the last
        one (index == total, where nothing is trained). Breaking out early completes the bar."""
        with self.task(desc, total) as bar:
            done = 0
            try:
                for index in range(total + 1):
                    last = index == total
                    yield Step(index, last or (every is not None and index % every == 0), last)
                    if last:
                        break
                    bar.advance()
                    done += 1
            finally:
                if done < total:
                    bar.advance(total - done)

    # -- logging and artefacts -----------------------------------------------------------
    def log(self, **record: Any) -> None:
        """One line of metrics.jsonl (give it `arm`, `seed` and `step` where they apply)."""
        rec = {k: (float(v) if hasattr(v, "item") else v) for k, v in record.items()}
        json.dumps(rec)  # fail here, not at the end of the run, if it is not serialisable
        (self._unit_log if self._unit_log is not None else self.records).append(rec)
        if self.sink is not None:  # live, as it is logged
            self.sink([rec])

    def log_models(self, grid: Grid, step: int | None = None, **per_model: Any) -> None:
        """One metrics line per member of `grid`: its arm and coordinates, seed, step, and each
        per-model value ((M,) tensors or lists: one host transfer per tensor)."""
        cols = {k: _host(v) for k, v in per_model.items()}
        at = {} if step is None else {"step": step}
        for m, _, seed in grid.members():
            self.log(**grid.fields(m), seed=seed, **at, **{k: c[m] for k, c in cols.items()})

    def watch(self, grid: Grid, step: int, **loss: Any) -> list[int]:
        """Divergence watch on one per-model loss (`ctx.watch(grid, step, train_loss=losses)`):
        members newly NaN/inf are marked diverged and logged with `diverged: true`."""
        (name, values), = loss.items()
        values = _host(values)
        new = grid.watch(values, step)
        for m in new:
            self.log(**grid.fields(m), seed=grid.seed_of(m), step=step, diverged=True, **{name: values[m]})
        return new

    def save_checkpoint(self, name: str, weights: Any, metadata: dict[str, str] | None = None) -> Path:
        """Write `checkpoints/<name>.safetensors` (a module's state_dict or a dict of tensors)."""
        from safetensors.torch import save

        tensors = weights.state_dict() if hasattr(weights, "state_dict") else dict(weights)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        meta = {"experiment": self.experiment, "config": self.config_json, **(metadata or {})}
        path = self.run_dir / "checkpoints" / f"{safe_name(name, 'checkpoint name')}.safetensors"
        blob = canonical_safetensors(save(tensors, metadata={k: str(v) for k, v in meta.items()}))
        self._saved[path.stem] = blob
        if self._blobs is not None:  # inside a unit: written with the unit record (main process)
            self._blobs[path.stem] = blob
        elif self.is_main:
            store.atomic_write_bytes(path, blob)
        return path

    def save_models(self, grid: Grid, params: dict[str, Any], *,
                    metadata: Callable[[int], dict[str, Any]] | None = None,
                    name: Callable[[int], str] | None = None,
                    tensors: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None) -> None:
        """One checkpoint per member of stacked `params` ({name: (M, ...)}): by default named
        `<arm>-<coords>-seed<k>` with metadata arm, coordinates and seed index; `tensors` may
        convert a member's weights (e.g. to its storage dtype) before they are saved."""
        for m, _, seed in grid.members():
            f = grid.fields(m)
            label, coords = f.pop("arm"), f
            default_name = "-".join([label, *(f"{k}{v}" for k, v in coords.items()), f"seed{seed}"])
            member = {n: p[m] for n, p in params.items()}
            meta = metadata(m) if metadata else {"arm": label, **{k: str(v) for k, v in coords.items()},
                                                 "seed_index": str(seed)}
            self.save_checkpoint(name(m) if name else default_name, tensors(m, member) if tensors else member, meta)

    def load_checkpoint(self, name: str) -> dict[str, Any]:
        """Tensors of `checkpoints/<name>.safetensors` saved by this run (also by a unit that a
        resumed run skipped, or one another rank trained), read with safetensors."""
        blob = self._saved.get(name)
        if blob is None:
            path = self.run_dir / "checkpoints" / f"{safe_name(name, 'checkpoint name')}.safetensors"
            try:
                blob = path.read_bytes()
            except OSError as exc:
                raise store.RunStoreError(f"missing checkpoint {path}: {exc.strerror or exc}") from None
        return load_tensors(blob, name)

    def table(self, rows: Sequence[dict[str, Any]], *, title: str, name: str = "main",
              columns: Sequence[str] | None = None) -> None:
        """Add a result table; the first one added is `table.csv`, all go into `table.md`."""
        cols = list(columns) if columns else list(dict.fromkeys(k for r in rows for k in r))
        self.tables.append(Table(safe_name(name, "table name"), title, cols, [dict(r) for r in rows]))

    def plot(self, name: str, fig: Any) -> Path:
        """Save a figure (`mlbench.core.plotting.figure`) as `plots/<name>.png` at 150 dpi (no
        timestamps: same bytes each run)."""
        path = self.run_dir / "plots" / f"{safe_name(name, 'plot name')}.png"
        self.plots.append(path.name)
        if self.is_main:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
            store.atomic_write_bytes(path, buf.getvalue())
        return path

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[ProgressTask]:
        """A progress bar: `with ctx.task("train", total=steps) as bar: ... bar.advance()`."""
        handle = self.progress.task(description, total)
        try:
            yield handle
        finally:
            handle.close()

    def shown(self, description: str, fn: Callable[[], T]) -> Callable[[], T]:
        """`fn` as a unit of work with its own one-step progress line, for `unit`/`map_units`:
        `ctx.unit("counts", ctx.shown("counting FLOPs", lambda: counts(cfg, ctx)))`."""
        def unit() -> T:
            with self.task(description, 1) as bar:
                out = fn()
                bar.advance()
            return out
        return unit

    def track(self, iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        with self.task(description, total) as bar:
            for item in iterable:
                yield item
                bar.advance()
