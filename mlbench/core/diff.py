"""`mlbench diff A B`: two runs of one experiment side by side.

What differs in their description (profile, seeds, device, version, config keys), their claims
(verdict, effect, CI of each), and the main table's numeric cells: rows are matched by their
text and integer cells (arm, d, sampler, ...), else by position, and each numeric column shared
by both tables gives A, B and B - A.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbench.core import store
from mlbench.core.errors import RunStoreError, UsageError
from mlbench.core.runs import live_status


@dataclass
class RunSide:
    path: Path
    record: dict[str, Any]  # config.json
    status: str
    summary: dict[str, Any]  # {} unless complete

    @property
    def name(self) -> str:
        return f"{self.record['experiment']}/{self.path.name}"


@dataclass
class CellDiff:
    row: str  # the row's label, e.g. "d=64 arm=unscaled"
    column: str
    a: float
    b: float

    @property
    def delta(self) -> float:
        return self.b - self.a


@dataclass
class RunDiff:
    a: RunSide
    b: RunSide
    config: list[tuple[str, Any, Any]]  # (key, value in A, value in B) where they differ
    claims: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]  # (claim id, A's, B's)
    cells: list[CellDiff] = field(default_factory=list)  # numeric cells that differ
    equal_cells: int = 0
    notes: list[str] = field(default_factory=list)  # what could not be compared, and why


def read_side(run_dir: Path) -> RunSide:
    record = store.read_json(run_dir / "config.json")
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict) or "experiment" not in record:
        raise RunStoreError(f"not a run folder (no readable config.json): {run_dir}")
    manifest = store.read_json(run_dir / "manifest.json") if (run_dir / "manifest.json").exists() else {}
    status = live_status(run_dir, manifest.get("status") if isinstance(manifest, dict) else None)
    summary = store.read_json(run_dir / "summary.json") if status == "complete" else {}
    return RunSide(run_dir, record, status, summary if isinstance(summary, dict) else {})


def diff(a_dir: Path, b_dir: Path) -> RunDiff:
    a, b = read_side(a_dir), read_side(b_dir)
    if a.record["experiment"] != b.record["experiment"]:
        raise UsageError(f"diff compares two runs of one experiment: {a.name} is {a.record['experiment']}, "
                         f"{b.name} is {b.record['experiment']}")
    out = RunDiff(a, b, config_diff(a.record, b.record), claims_diff(a.summary, b.summary))
    for side in (a, b):
        if side.status != "complete":
            out.notes.append(f"{side.name} is {side.status}: only its config is compared")
    if a.summary and b.summary:
        out.cells, out.equal_cells, note = table_diff(a.path / "table.csv", b.path / "table.csv")
        if note:
            out.notes.append(note)
    return out


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    top = [(k, a.get(k), b.get(k)) for k in ("experiment_version", "profile", "seeds", "start_seeds", "max_seeds",
                                               "device") if a.get(k) != b.get(k)]
    keys = dict.fromkeys([*a["config"], *b["config"]])
    return top + [(k, a["config"].get(k), b["config"].get(k)) for k in keys if a["config"].get(k) != b["config"].get(k)]


def claims_diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, dict | None, dict | None]]:
    by_a = {c["id"]: c for c in a.get("claims", [])}
    by_b = {c["id"]: c for c in b.get("claims", [])}
    return [(cid, by_a.get(cid), by_b.get(cid)) for cid in dict.fromkeys([*by_a, *by_b])]


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    try:
        rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    except FileNotFoundError:
        return [], []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunStoreError(f"cannot read {path}: {exc}") from None
    return (rows[0], rows[1:]) if rows else ([], [])


def number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _kind(values: list[str]) -> str | None:
    """'text', 'int' (whole numbers: d=64, nfe=10) or None (measurements) for a column's cells."""
    filled = [number(v) for v in values if v != ""]
    if not filled:
        return None
    if any(n is None for n in filled):
        return "text"
    return "int" if all(n.is_integer() for n in filled) else None


def label_columns(head: list[str], rows: list[list[str]]) -> list[str]:
    """The leading columns that name a row (at most three; whole-number ones only where the text
    ones alone do not tell the rows apart): what the rows of two runs are matched by."""
    keys: list[tuple[str, str]] = []
    for i, col in enumerate(head[:3]):
        kind = _kind([r[i] for r in rows if i < len(r)])
        if kind is None:
            break
        keys.append((col, kind))
    while keys and keys[-1][1] == "int" and _unique(head, rows, [k for k, _ in keys[:-1]]):
        keys.pop()
    return [k for k, _ in keys]


def _unique(head: list[str], rows: list[list[str]], keys: list[str]) -> bool:
    idx = [head.index(k) for k in keys]
    labels = [tuple(r[i] for i in idx) for r in rows]
    return bool(keys) and len(set(labels)) == len(labels)


def _labelled(head: list[str], rows: list[list[str]], keys: list[str]) -> dict[str, dict[str, str]]:
    out = {}
    for n, r in enumerate(rows):
        cells = dict(zip(head, r))
        label = " ".join(f"{k}={cells.get(k, '')}" for k in keys) or f"row {n + 1}"
        out[label if label not in out else f"{label} (row {n + 1})"] = cells
    return out


def table_diff(a_path: Path, b_path: Path) -> tuple[list[CellDiff], int, str | None]:
    """Numeric cells of two main tables that differ, the count of equal ones, and a note."""
    (ha, ra), (hb, rb) = read_table(a_path), read_table(b_path)
    if not ha or not hb:
        return [], 0, "a run has no main table (table.csv)"
    keys = [k for k in label_columns(ha, ra) if k in label_columns(hb, rb)]
    la, lb = _labelled(ha, ra, keys), _labelled(hb, rb, keys)
    shared_rows = [r for r in la if r in lb]
    note = None
    if len(shared_rows) < max(len(la), len(lb)):
        note = f"rows only in one run are left out: {len(la) - len(shared_rows)} of A, {len(lb) - len(shared_rows)} of B"
    cells, equal = [], 0
    for row in shared_rows:
        for col in (c for c in ha if c in hb and c not in keys):
            x, y = number(la[row].get(col, "")), number(lb[row].get(col, ""))
            if x is None or y is None:
                continue
            if x == y or (math.isnan(x) and math.isnan(y)):
                equal += 1
            else:
                cells.append(CellDiff(row, col, x, y))
    return cells, equal, note
