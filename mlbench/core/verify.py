"""`verify`: rerun a stored run from its config.json and compare what it wrote.

Outcomes: `bitwise` (every compared file byte-identical), `tolerance` (every number within the
experiment's VERIFY_TOLERANCE, relative and absolute, text and verdicts equal), or `differs`,
naming the first file, row and column (or JSON path, or tensor) that differs. The folder is
checked before anything is rerun: a missing or corrupt file is one clear error.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbench.core import config as cfglib
from mlbench.core import registry, runner, store
from mlbench.core.artifacts import load_tensors
from mlbench.core.errors import RunStoreError
from mlbench.core.progress import Progress

JSON_FILES = ("metrics.jsonl", "summary.json")


@dataclass
class Verification:
    outcome: str  # bitwise | tolerance | differs
    max_deviation: float
    tolerance: float
    differences: list[str] = field(default_factory=list)  # the first differing place first
    where: str = ""  # the place of the largest deviation
    timed: list[str] = field(default_factory=list)  # compared by verdict only: measured timings

    @property
    def ok(self) -> bool:
        return self.outcome != "differs"


def _table_names(run_dir: Path) -> list[str]:
    return ["table.csv", *sorted(p.name for p in run_dir.glob("table-*.csv"))]


def _checkpoint_names(run_dir: Path) -> list[str]:
    return sorted(f"checkpoints/{p.name}" for p in (run_dir / "checkpoints").glob("*.safetensors"))


def check_folder(run_dir: Path) -> dict[str, Any]:
    """Everything verify reads, checked before any rerun; returns config.json. RunStoreError otherwise."""
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise RunStoreError(f"corrupt run folder {run_dir}: {what}")

    if not (run_dir / "config.json").is_file():
        raise RunStoreError(f"not a run folder (no config.json): {run_dir}")
    record, manifest = store.read_json(run_dir / "config.json"), store.read_json(run_dir / "manifest.json")
    need(isinstance(record, dict) and isinstance(record.get("config"), dict), "config.json is not a run's config")
    need(isinstance(record.get("experiment"), str) and isinstance(record.get("profile"), str),
         "config.json lacks experiment/profile")
    seeds = record.get("seeds")
    need(seeds == "auto" or (isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1),
         f"config.json has seeds {seeds!r} (a positive integer or 'auto')")
    need(isinstance(manifest, dict), "manifest.json is not an object")
    if manifest.get("status") != "complete":
        raise RunStoreError(f"run is not complete (status {manifest.get('status')!r}): {run_dir}")
    need(isinstance(manifest.get("determinism"), dict), "manifest.json lacks its determinism record")
    summary = store.read_json(run_dir / "summary.json")
    need(isinstance(summary, dict) and isinstance(summary.get("claims"), list)
         and all(isinstance(c, dict) and "verdict" in c and "id" in c for c in summary["claims"]),
         "summary.json has no list of claims")
    _read_jsonl(run_dir / "metrics.jsonl")
    for name in _table_names(run_dir):
        _read_csv(run_dir / name)
    for name in _checkpoint_names(run_dir):
        load_tensors((run_dir / name).read_bytes(), name)
    return record


def _read_jsonl(path: Path) -> list[Any]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise RunStoreError(f"missing file: {path} ({exc.strerror or exc})") from None
    out = []
    for i, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            raise RunStoreError(f"corrupt {path}: line {i} is not JSON (truncated?)") from None
    return out


def _read_csv(path: Path) -> list[list[str]]:
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunStoreError(f"missing or unreadable table: {path} ({exc})") from None
    if not rows:
        raise RunStoreError(f"corrupt table {path}: empty")
    return rows


def spec_from_run(run_dir: Path, results: Path) -> runner.RunSpec:
    """The RunSpec that reproduces `run_dir`, writing under `results`."""
    record = check_folder(run_dir)
    manifest = store.read_json(run_dir / "manifest.json")
    name = record["experiment"]
    module = registry.load(name)
    if record.get("experiment_version") != runner.version_of(module):
        raise RunStoreError(f"{run_dir} was made by {name} version {record.get('experiment_version')}; "
                            f"this mlbench has version {runner.version_of(module)}: rerun it instead")
    cfg = cfglib.apply(module.Config, module.Config(), record["config"], f"{run_dir}/config.json")
    sequential = record["seeds"] == "auto"
    spec = runner.RunSpec(name, module, record["profile"], cfg,
                          int(record["start_seeds"] if sequential else record["seeds"]),
                          runner.resolve_device(record["device"]), manifest["determinism"].get("threads"),
                          results, run_id="", max_seeds=record.get("max_seeds") if sequential else None,
                          decides=record["profile"] != "smoke")
    spec.run_id = runner.run_id_for(spec.config_record())
    return spec


def verify(run_dir: Path, progress: Progress | None = None) -> Verification:
    run_dir = Path(run_dir)
    tmp = Path(tempfile.mkdtemp(prefix="mlbench-verify-"))
    try:
        spec = spec_from_run(run_dir, tmp)
        rerun = runner.execute(spec, progress=progress).run_dir
        return compare(run_dir, rerun, float(getattr(spec.module, "VERIFY_TOLERANCE", 1e-6)),
                       timed_files=tuple(getattr(spec.module, "TIMED_FILES", ())),
                       timed_metrics=tuple(getattr(spec.module, "TIMED_METRICS", ())))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Diff:
    """Collects differences: the first one that exceeds the tolerance, and the largest one."""

    def __init__(self, tolerance: float) -> None:
        self.tol, self.max_dev, self.where, self.fails = tolerance, 0.0, "", []

    def number(self, a: float, b: float, where: str) -> None:
        if a == b or (math.isnan(a) and math.isnan(b)):
            return
        dev = abs(a - b) if math.isfinite(a) and math.isfinite(b) else math.inf
        if dev > self.max_dev:
            self.max_dev, self.where = dev, where
        if not math.isclose(a, b, rel_tol=self.tol, abs_tol=self.tol):
            self.fails.append(f"{where}: {a!r} vs {b!r}")

    def text(self, a: Any, b: Any, where: str) -> None:
        if a != b:
            self.max_dev, self.where = math.inf, where
            self.fails.append(f"{where}: {a!r} vs {b!r}")


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _compare_csv(a: Path, b: Path, name: str, diff: _Diff) -> None:
    ra, rb = _read_csv(a), _read_csv(b)
    if ra[0] != rb[0] or len(ra) != len(rb):
        diff.text(f"{len(ra) - 1} rows {ra[0]}", f"{len(rb) - 1} rows {rb[0]}", f"{name}: shape")
        return
    for i, (row_a, row_b) in enumerate(zip(ra[1:], rb[1:]), 1):
        for col, x, y in zip(ra[0], row_a, row_b):
            where = f"{name} row {i} column {col}"
            fx, fy = _as_number(x), _as_number(y)
            diff.number(fx, fy, where) if fx is not None and fy is not None else diff.text(x, y, where)


def _compare_json(a: Any, b: Any, where: str, diff: _Diff) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            diff.text(sorted(a), sorted(b), f"{where} keys")
        for k in a:
            if k in b:
                _compare_json(a[k], b[k], f"{where}.{k}", diff)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            diff.text(len(a), len(b), f"{where} length")
        for i, (x, y) in enumerate(zip(a, b)):
            _compare_json(x, y, f"{where}[{i}]", diff)
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        diff.number(float(a), float(b), where)
    else:
        diff.text(a, b, where)


def _compare_tensors(a: Path, b: Path, name: str, diff: _Diff) -> None:
    ta, tb = load_tensors(a.read_bytes(), name), load_tensors(b.read_bytes(), name)
    if ta.keys() != tb.keys() or any(ta[k].shape != tb[k].shape for k in ta):
        diff.text(sorted(ta), sorted(tb), f"{name}: tensors")
        return
    for k in ta:
        x, y = ta[k].double().flatten(), tb[k].double().flatten()
        if x.numel() and not bool((x == y).all()):
            i = int((x - y).abs().nan_to_num(math.inf).argmax())
            diff.number(float(x[i]), float(y[i]), f"{name} tensor {k}[{i}]")


def _untimed(summary: Any, timed: tuple[str, ...]) -> Any:
    """summary.json without what measured timings decide: timed metrics' measurements, and the
    numbers (not the verdict) of claims that read a timed metric."""
    if not timed or not isinstance(summary, dict):
        return summary
    reads = lambda c: any(k.split(":", 1)[-1] in timed for k in c.get("arms", {}))  # noqa: E731
    out = dict(summary)
    out["measurements"] = {arm: {k: v for k, v in ms.items() if k.split(".")[0] not in timed}
                           for arm, ms in summary.get("measurements", {}).items()}
    out["claims"] = [{"id": c.get("id"), "verdict": c.get("verdict")} if reads(c) else c for c in summary["claims"]]
    out["headline"] = {k: v for k, v in summary.get("headline", {}).items() if k == "claim"} \
        if summary.get("claims") and reads(summary["claims"][0]) else summary.get("headline")
    return out


def compare(a: Path, b: Path, tolerance: float, *, timed_files: tuple[str, ...] = (),
            timed_metrics: tuple[str, ...] = ()) -> Verification:
    """Compare run folders a (stored) and b (rerun). Files in `timed_files` are skipped and
    claims that read `timed_metrics` are compared by verdict only: measured timings differ
    from run to run by nature."""
    names = [n for n in (*JSON_FILES, *_table_names(a), *_checkpoint_names(a)) if n not in timed_files]
    other = {n for n in (*JSON_FILES, *_table_names(b), *_checkpoint_names(b)) if n not in timed_files}
    missing = sorted(set(names) ^ other)
    timed = [*timed_files, *(f"metric {m}" for m in timed_metrics)]
    if missing:
        return Verification("differs", math.inf, tolerance, [f"file sets differ: {', '.join(missing)}"], timed=timed)
    differing = [n for n in names if (a / n).read_bytes() != (b / n).read_bytes()]
    if timed_metrics and "summary.json" in differing:
        sa, sb = (_untimed(store.read_json(d / "summary.json"), timed_metrics) for d in (a, b))
        if sa == sb:
            differing.remove("summary.json")
    if not differing:
        return Verification("bitwise", 0.0, tolerance, timed=timed)
    diff = _Diff(tolerance)
    for n in differing:
        if n.endswith(".csv"):
            _compare_csv(a / n, b / n, n, diff)
        elif n.endswith(".safetensors"):
            _compare_tensors(a / n, b / n, n, diff)
        elif n.endswith(".jsonl"):
            docs_a, docs_b = _read_jsonl(a / n), _read_jsonl(b / n)
            _compare_json(docs_a, docs_b, n, diff)
        else:
            _compare_json(_untimed(store.read_json(a / n), timed_metrics),
                          _untimed(store.read_json(b / n), timed_metrics), n, diff)
    outcome = "tolerance" if not diff.fails else "differs"
    notes = diff.fails or [f"largest deviation at {diff.where}"]
    return Verification(outcome, diff.max_dev, tolerance, notes, diff.where, timed=timed)
