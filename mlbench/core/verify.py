"""`verify`: rerun a stored run from its config.json and compare what it wrote.

Outcomes: `bitwise` (every compared file byte-identical), `tolerance` (numbers within the
experiment's declared VERIFY_TOLERANCE, verdicts equal), or `differs` (with what differs).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from mlbench.core import config as cfglib
from mlbench.core import registry, runner, store
from mlbench.core.context import Progress, load_tensors
from mlbench.core.errors import RunStoreError

COMPARED = ("metrics.jsonl", "table.csv", "summary.json")


@dataclass
class Verification:
    outcome: str  # bitwise | tolerance | differs
    max_deviation: float
    tolerance: float
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome != "differs"


def spec_from_run(run_dir: Path, results: Path) -> runner.RunSpec:
    """The RunSpec that reproduces `run_dir`, writing under `results`."""
    if not (run_dir / "config.json").is_file():
        raise RunStoreError(f"not a run folder (no config.json): {run_dir}")
    record = store.read_json(run_dir / "config.json")
    manifest = store.read_json(run_dir / "manifest.json")
    if manifest.get("status") != "complete":
        raise RunStoreError(f"run is not complete (status {manifest.get('status')!r}): {run_dir}")
    try:
        name, stored_config = record["experiment"], record["config"]
        module = registry.load(name)
        cfg = cfglib.apply(module.Config, module.Config(), stored_config, f"{run_dir}/config.json")
        spec = runner.RunSpec(name, module, record["profile"], cfg, int(record["seeds"]),
                              runner.resolve_device(record["device"]), manifest["determinism"].get("threads"),
                              results, run_id="")
    except (KeyError, TypeError, ValueError) as exc:
        raise RunStoreError(f"corrupt run folder {run_dir}: {exc}") from None
    if record.get("experiment_version") != runner.version_of(module):
        raise RunStoreError(f"{run_dir} was made by {name} version {record.get('experiment_version')}; "
                            f"this mlbench has version {runner.version_of(module)}: rerun it instead")
    spec.run_id = runner.run_id_for(spec.config_record())
    return spec


def verify(run_dir: Path, progress: Progress | None = None) -> Verification:
    run_dir = Path(run_dir)
    tmp = Path(tempfile.mkdtemp(prefix="mlbench-verify-"))
    try:
        spec = spec_from_run(run_dir, tmp)
        rerun = runner.execute(spec, progress=progress).run_dir
        return compare(run_dir, rerun, float(getattr(spec.module, "VERIFY_TOLERANCE", 1e-6)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def compare(a: Path, b: Path, tolerance: float) -> Verification:
    names = [*COMPARED, *sorted(f"checkpoints/{p.name}" for p in (a / "checkpoints").glob("*.safetensors"))]
    other = sorted(f"checkpoints/{p.name}" for p in (b / "checkpoints").glob("*.safetensors"))
    missing = sorted(set(other) ^ set(names[len(COMPARED):]))
    if missing:
        return Verification("differs", math.inf, tolerance, [f"checkpoint sets differ: {', '.join(missing)}"])
    differing = [n for n in names if (a / n).read_bytes() != (b / n).read_bytes()]
    if not differing:
        return Verification("bitwise", 0.0, tolerance)
    dev, notes = 0.0, []
    for n in differing:
        d, note = _deviation(a / n, b / n)
        dev = max(dev, d)
        notes.append(f"{n}: {note}")
    verdicts_a = [c["verdict"] for c in store.read_json(a / "summary.json")["claims"]]
    verdicts_b = [c["verdict"] for c in store.read_json(b / "summary.json")["claims"]]
    if verdicts_a != verdicts_b:
        notes.append(f"verdicts differ: {verdicts_a} vs {verdicts_b}")
        return Verification("differs", dev, tolerance, notes)
    return Verification("tolerance" if dev <= tolerance else "differs", dev, tolerance, notes)


def _deviation(a: Path, b: Path) -> tuple[float, str]:
    """Max absolute numeric deviation between two files of the same kind."""
    if a.suffix == ".safetensors":
        ta, tb = load_tensors(a.read_bytes(), a.name), load_tensors(b.read_bytes(), b.name)
        if ta.keys() != tb.keys() or any(ta[k].shape != tb[k].shape for k in ta):
            return math.inf, "different tensors"
        dev = max(((ta[k].double() - tb[k].double()).abs().max().item() for k in ta if ta[k].numel()), default=0.0)
        return dev, f"max |Δweight| {dev:.3g}"
    if a.suffix == ".csv":
        xs, ys = a.read_text().split(), b.read_text().split()
        return _max_diff(xs, ys), "numbers differ"
    docs_a, docs_b = _documents(a), _documents(b)
    if len(docs_a) != len(docs_b):
        return math.inf, f"{len(docs_a)} vs {len(docs_b)} records"
    return _max_diff(list(_numbers(docs_a)), list(_numbers(docs_b))), "numbers differ"


def _documents(path: Path) -> list[Any]:
    """A .jsonl file's records, or a .json file as one record."""
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines()]
    return [store.read_json(path)]


def _numbers(obj: Any) -> Iterator[Any]:
    if isinstance(obj, dict):
        for k in sorted(obj):
            yield from _numbers(obj[k])
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    else:
        yield obj


def _max_diff(xs: list[Any], ys: list[Any]) -> float:
    if len(xs) != len(ys):
        return math.inf
    dev = 0.0
    for x, y in zip(xs, ys):
        if x == y:
            continue
        try:
            fx, fy = float(x), float(y)
        except (TypeError, ValueError):
            return math.inf  # a non-numeric field differs
        if math.isnan(fx) and math.isnan(fy):
            continue
        dev = max(dev, abs(fx - fy))
    return dev
