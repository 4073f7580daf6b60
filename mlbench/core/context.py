"""`ctx`: an experiment's one door to the outside world.

An experiment's `run(cfg, ctx)` gets from it: the device (and, lazily, the accelerate
`Accelerator`), a seed per (arm, seed index), resumable units of work, logging, checkpoints,
tables, plots and progress. It never prints, reads the environment or writes files itself.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence, TypeVar

from mlbench.core import store

T = TypeVar("T")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=@+-]{0,120}$")


class ProgressTask(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None) -> ProgressTask: ...


class _NoTask:
    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class NoProgress:
    def task(self, description: str, total: int | None) -> ProgressTask:
        return _NoTask()


def safe_name(name: str, what: str = "name") -> str:
    """Names become file names: no separators, no leading dot, nothing that escapes a folder."""
    if not _SAFE_NAME.match(name) or ".." in name:
        raise ValueError(f"invalid {what} {name!r}: use letters, digits and _ . = @ + -")
    return name


def derive_seed(*parts: Any) -> int:
    """A stable 63-bit seed from (experiment, arm, seed index): adding an arm shifts no other."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def canonical_safetensors(blob: bytes) -> bytes:
    """Re-emit a safetensors header with sorted keys: the library writes metadata from a hash map,
    so its order (and the file's bytes) would otherwise vary between processes."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section stays 8-byte aligned
    return len(text).to_bytes(8, "little") + text + blob[8 + size :]


def load_tensors(blob: bytes, name: str) -> dict[str, Any]:
    """The tensors of a safetensors file's bytes; a corrupt file is a RunStoreError naming `name`."""
    from safetensors.torch import load

    try:
        return load(blob)
    except Exception as exc:  # safetensors' own error types for corrupt files
        raise store.RunStoreError(f"corrupt checkpoint {name}: {exc}") from None


def _all_gather_json(payload: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """Every rank's `payload` on every rank, sent as JSON bytes (checkpoint bytes as base64):
    torch's object collectives would unpickle what the other ranks send."""
    import base64

    import torch
    import torch.distributed as dist

    def encode(unit: dict[str, Any]) -> dict[str, Any]:
        return {**unit, "checkpoints": {n: base64.b64encode(b).decode() for n, b in unit["checkpoints"].items()}}

    def decode(unit: dict[str, Any]) -> dict[str, Any]:
        return {**unit, "checkpoints": {n: base64.b64decode(b) for n, b in unit["checkpoints"].items()}}

    data = json.dumps({k: encode(v) for k, v in payload.items()}).encode()
    size = torch.tensor([len(data)], dtype=torch.int64)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world_size)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    buf = torch.zeros(longest, dtype=torch.uint8)
    buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    bufs = [torch.zeros(longest, dtype=torch.uint8) for _ in range(world_size)]
    dist.all_gather(bufs, buf)
    parts = [json.loads(b[: int(n.item())].numpy().tobytes()) for b, n in zip(bufs, sizes)]
    return [{k: decode(v) for k, v in part.items()} for part in parts]


def _cell(value: Any, fmt: str) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return format(value, fmt) if fmt else repr(value)
    return str(value)


@dataclass
class Table:
    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]

    def markdown(self) -> str:
        head = "| " + " | ".join(self.columns) + " |"
        rule = "|" + "|".join("---" for _ in self.columns) + "|"
        body = ["| " + " | ".join(_cell(r.get(c, ""), ".4g").replace("|", "\\|") for c in self.columns) + " |"
                for r in self.rows]
        return "\n".join([f"### {self.title}", "", head, rule, *body, ""])

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        for r in self.rows:
            writer.writerow([_cell(r.get(c, ""), "") for c in self.columns])
        return buf.getvalue()


@dataclass
class Context:
    experiment: str
    run_dir: Path
    seeds: list[int]  # seed indices 0..n-1
    device_name: str = "cpu"  # resolved: "cpu" or "cuda"
    progress: Progress = field(default_factory=NoProgress)
    config_json: str = "{}"  # stored in checkpoint metadata
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "mlbench")  # datasets
    records: list[dict[str, Any]] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    resumed_units: list[str] = field(default_factory=list)
    rank: int = 0  # this process under a multi-process launch
    world_size: int = 1
    _unit_log: list[dict[str, Any]] | None = None
    _blobs: dict[str, bytes] | None = None
    _saved: dict[str, bytes] = field(default_factory=dict)  # checkpoints of this run, by name
    _accelerator: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- device -------------------------------------------------------------------------
    @property
    def device(self):
        import torch

        return torch.device(self.device_name)

    @property
    def accelerator(self):
        """The accelerate `Accelerator` (created on first use: importing accelerate costs ~2 s)."""
        if self._accelerator is None:
            from accelerate import Accelerator

            self._accelerator = Accelerator(cpu=self.device_name == "cpu")
        return self._accelerator

    # -- seeds ---------------------------------------------------------------------------
    def seed(self, arm: str, index: int) -> int:
        return derive_seed(self.experiment, arm, index)

    def generator(self, arm: str, index: int, device: Any = "cpu"):
        import torch

        g = torch.Generator(device=device)
        g.manual_seed(self.seed(arm, index))
        return g

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
            computed = {k: v for part in _all_gather_json(computed, self.world_size) for k, v in part.items()}
            for key in pending:
                self._store_unit(key, computed[key])
        results = {}
        for key in units:
            saved = done[key] or computed[key]
            self.records.extend(saved["log"])
            results[key] = saved["result"]
        return results

    def _unit_path(self, key: str) -> Path:
        return self.run_dir / "units" / f"{safe_name(key, 'unit key')}.json"

    def _load_unit(self, key: str) -> dict[str, Any] | None:
        path = self._unit_path(key)
        if not path.exists():
            return None
        self.resumed_units.append(key)
        return store.read_json(path)

    def _compute_unit(self, key: str, fn: Callable[[], Any]) -> dict[str, Any]:
        outer, self._unit_log, self._blobs = self._unit_log, [], {}
        try:
            result = fn()
            return {"result": result, "log": self._unit_log, "checkpoints": self._blobs}
        finally:
            self._unit_log, self._blobs = outer, None

    def _store_unit(self, key: str, saved: dict[str, Any]) -> None:
        """Checkpoints first, then the unit record: a unit file means its weights are on disk."""
        blobs = saved.pop("checkpoints", {})
        self._saved.update(blobs)  # every rank can load them, whoever trained them
        if not self.is_main:
            return
        for name, blob in blobs.items():
            store.atomic_write_bytes(self.run_dir / "checkpoints" / f"{name}.safetensors", blob)
        store.atomic_write_json(self._unit_path(key), saved)

    # -- logging and artefacts ------------------------------------------------------------
    def log(self, **record: Any) -> None:
        """One line of metrics.jsonl (give it `arm`, `seed` and `step` where they apply)."""
        rec = {k: (float(v) if hasattr(v, "item") else v) for k, v in record.items()}
        json.dumps(rec)  # fail here, not at the end of the run, if it is not serialisable
        (self._unit_log if self._unit_log is not None else self.records).append(rec)

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
        """Save a matplotlib figure as `plots/<name>.png` (no timestamps: same bytes each run)."""
        path = self.run_dir / "plots" / f"{safe_name(name, 'plot name')}.png"
        self.plots.append(path.name)
        import matplotlib.pyplot as plt

        if not self.is_main:
            plt.close(fig)
            return path
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
        store.atomic_write_bytes(path, buf.getvalue())
        plt.close(fig)
        return path

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[ProgressTask]:
        """A progress bar: `with ctx.task("train", total=steps) as bar: ... bar.advance()`."""
        handle = self.progress.task(description, total)
        try:
            yield handle
        finally:
            handle.close()

    def track(self, iterable: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        with self.task(description, total) as bar:
            for item in iterable:
                yield item
                bar.advance()
