"""`mlbench check`: a regression gate on verdicts.

`write_baseline` stores, per experiment, the claims' verdicts of its latest complete run (of
the strongest profile; smoke runs decide nothing and are left out). `compare` reads the
latest runs again and lists what changed: a claim whose verdict flipped, or a baselined
experiment or claim with no run now, fails the gate; new claims and new versions are noted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbench.core import store
from mlbench.core.errors import RunStoreError, UsageError
from mlbench.core.results import RunRow, collect

FORMAT = "mlbench-baseline/1"
DEFAULT_BASELINE = "mlbench-baseline.json"


@dataclass(frozen=True)
class Change:
    experiment: str
    claim: str
    before: str
    now: str
    kind: str  # flipped | missing | new | version
    failing: bool


def latest_runs(root: Path) -> dict[str, RunRow]:
    """Per experiment, the latest complete run of its strongest deciding profile."""
    rows, _ = collect(root)
    best: dict[str, RunRow] = {}
    for r in rows:
        if r.decides and (r.experiment not in best or r.rank > best[r.experiment].rank):
            best[r.experiment] = r
    return best


def snapshot(root: Path) -> dict[str, Any]:
    runs = latest_runs(root)
    if not runs:
        raise UsageError(f"no complete run with a deciding profile under {root}: nothing to baseline")
    return {"format": FORMAT, "written": store.now(), "results": str(root),
            "experiments": {name: {"version": r.version, "run_id": r.run_id, "profile": r.profile, "seeds": r.seeds,
                                   "claims": {c["id"]: c["verdict"] for c in r.claims}}
                            for name, r in sorted(runs.items())}}


def write_baseline(root: Path, path: Path) -> dict[str, Any]:
    data = snapshot(root)
    store.atomic_write_json(path, data)
    return data


def read_baseline(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UsageError(f"baseline not found: {path} (write one with `mlbench check --write`)")
    data = store.read_json(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise RunStoreError(f"{path} is not an mlbench baseline (format {FORMAT!r})")
    experiments = data.get("experiments")
    if not isinstance(experiments, dict) or not all(
            isinstance(e, dict) and isinstance(e.get("claims"), dict) for e in experiments.values()):
        raise RunStoreError(f"corrupt baseline {path}: experiments must map to their claims' verdicts")
    return data


def compare(baseline: dict[str, Any], root: Path) -> list[Change]:
    now = latest_runs(root)
    changes: list[Change] = []
    for name, base in baseline["experiments"].items():
        run = now.get(name)
        if run is None:
            changes.append(Change(name, "*", "baselined", "no complete run", "missing", True))
            continue
        if run.version != base.get("version"):
            changes.append(Change(name, "*", f"v{base.get('version')}", f"v{run.version}", "version", False))
        verdicts = {c["id"]: c["verdict"] for c in run.claims}
        for claim, before in base["claims"].items():
            if claim not in verdicts:
                changes.append(Change(name, claim, before, "no such claim", "missing", True))
            elif verdicts[claim] != before:
                changes.append(Change(name, claim, before, verdicts[claim], "flipped", True))
        changes += [Change(name, claim, "-", v, "new", False) for claim, v in verdicts.items() if claim not in base["claims"]]
    return changes


def baseline_path(path: str | os.PathLike | None) -> Path:
    return Path(path or DEFAULT_BASELINE)
