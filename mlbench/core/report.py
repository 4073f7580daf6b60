"""Collect complete runs under a results root and write REPORT.md."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlbench.core import store
from mlbench.core.errors import RunStoreError


@dataclass
class RunRow:
    experiment: str
    run_id: str
    profile: str
    seeds: int
    verdict: str
    effect: float | None
    ci: list[float] | None
    test: str
    version: int
    path: Path


def collect(root: Path, experiment: str | None = None) -> tuple[list[RunRow], list[str]]:
    """Every complete run under `root` (sorted), plus one line per run folder that was skipped."""
    rows: list[RunRow] = []
    skipped: list[str] = []
    if not root.is_dir():
        raise RunStoreError(f"results root not found: {root}")
    for manifest in sorted(root.glob("*/*/manifest.json")):
        run_dir = manifest.parent
        if experiment and run_dir.parent.name != experiment:
            continue
        try:
            status = store.read_status(run_dir)
            if status != "complete":
                skipped.append(f"{run_dir}: {status}")
                continue
            rows.append(_row(run_dir, store.read_json(run_dir / "summary.json")))
        except (RunStoreError, KeyError, TypeError, ValueError) as exc:
            skipped.append(f"{run_dir}: unreadable ({exc})")
    return rows, skipped


def _row(run_dir: Path, s: dict[str, Any]) -> RunRow:
    head = s["headline"]
    return RunRow(s["experiment"], s["run_id"], s["profile"], int(s["seeds"]), s["verdict"],
                  head.get("effect"), head.get("ci"), head.get("test", ""),
                  int(s.get("experiment_version", 1)), run_dir)


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def markdown(rows: list[RunRow]) -> str:
    lines = ["# mlbench report", "",
             "| experiment | run id | profile | seeds | verdict | headline effect | 95% CI |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        ci = f"[{_num(r.ci[0])}, {_num(r.ci[1])}]" if r.ci else "-"
        lines.append(f"| {r.experiment} | [{r.run_id}]({r.experiment}/{r.run_id}/table.md) | {r.profile} "
                     f"| {r.seeds} | {r.verdict} | {_num(r.effect)} | {ci} |")
    return "\n".join(lines) + "\n"


def write_report(root: Path, experiment: str | None = None) -> tuple[Path, list[RunRow], list[str]]:
    rows, skipped = collect(root, experiment)
    path = root / "REPORT.md"
    store.atomic_write_text(path, markdown(rows))
    return path, rows, skipped
