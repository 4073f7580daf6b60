"""The runs index: every run folder under a results root, whatever its status (`mlbench runs`).

One entry per folder with a manifest: experiment, run id, profile, seeds, status (a `running`
manifest whose lock nobody holds is shown as `interrupted`: its process died), the headline
verdict and effect of a complete run, its age, and the command that recreates it. `find_run`
turns what a user types (a folder, `<experiment>/<run-id>`, a run id or its unique prefix) into
a run folder.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mlbench.core import lock, registry, store
from mlbench.core.errors import RunStoreError, UsageError

STATUSES = ("complete", "interrupted", "failed", "running")


@dataclass
class RunEntry:
    experiment: str
    run_id: str
    profile: str
    seeds: int | str | None
    status: str  # complete | interrupted | failed | running
    verdict: str | None
    effect: float | None
    effect_name: str | None
    started: str
    ended: str
    path: Path
    command: str
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def live_status(run_dir: Path, status: str | None) -> str:
    """The manifest's status, with a dead writer's `running` shown as `interrupted`."""
    if status == "running" and lock.state(run_dir) == "free":
        return "interrupted"
    return str(status)


def index(root: Path, experiment: str | None = None, status: str | None = None) -> tuple[list[RunEntry], list[str]]:
    """Every run under `root`, newest first, plus one line per folder that could not be read."""
    if experiment is not None:
        registry.check_name(experiment)
    if status is not None and status not in STATUSES:
        raise UsageError(f"unknown status '{status}': use one of {', '.join(STATUSES)}")
    if not root.is_dir():
        raise RunStoreError(f"results root not found: {root}")
    entries, skipped = [], []
    for manifest_path in sorted(root.glob("*/*/manifest.json")):
        run_dir = manifest_path.parent
        if experiment and run_dir.parent.name != experiment:
            continue
        try:
            entry = read_entry(run_dir)
        except (RunStoreError, KeyError, TypeError, ValueError, AttributeError) as exc:
            skipped.append(f"{run_dir}: unreadable ({exc})")
            continue
        if status is None or entry.status == status:
            entries.append(entry)
    entries.sort(key=lambda e: (e.started, e.run_id), reverse=True)
    return entries, skipped


def read_entry(run_dir: Path) -> RunEntry:
    manifest = store.read_json(run_dir / "manifest.json")
    if not isinstance(manifest, dict):
        raise RunStoreError(f"corrupt manifest.json in {run_dir}")
    record = _optional_json(run_dir / "config.json")
    status = live_status(run_dir, manifest.get("status"))
    summary = _optional_json(run_dir / "summary.json") if status == "complete" else {}
    head = summary.get("headline", {})
    return RunEntry(
        experiment=str(manifest.get("experiment") or run_dir.parent.name), run_id=run_dir.name,
        profile=str(record.get("profile") or run_dir.name.split("-")[0]),
        seeds=summary.get("seeds", record.get("seeds")), status=status,
        verdict=summary.get("verdict"), effect=head.get("effect"), effect_name=head.get("effect_name"),
        started=str(manifest.get("started") or ""), ended=str(manifest.get("ended") or ""), path=run_dir,
        command=command_of(manifest, record, run_dir), error=manifest.get("error"))


def _optional_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = store.read_json(path)
    if not isinstance(data, dict):
        raise RunStoreError(f"corrupt {path.name} in {path.parent}")
    return data


def command_of(manifest: dict[str, Any], record: dict[str, Any], run_dir: Path) -> str:
    """The stored command that recreates the run; for older runs, derived from config.json."""
    if manifest.get("rerun"):
        return str(manifest["rerun"])
    if not record:
        return ""
    from mlbench.core.rerun import command_from_record

    try:
        return command_from_record(record)
    except Exception:  # an experiment no longer registered, or fields that changed since
        return shlex.join(["mlbench", "run", str(record.get("experiment", "?")), "--config", str(run_dir / "config.json")])


def age_text(stamp: str, now: datetime | None = None) -> str:
    """'12 s', '5 min', '3 h', '2 d' since an ISO time stamp ('-' if there is none)."""
    try:
        then = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return "-"
    seconds = max(0.0, ((now or datetime.now(timezone.utc)) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def units_done(run_dir: Path) -> int:
    """Finished units of work stored in a run folder (what a rerun resumes from)."""
    return sum(1 for _ in (run_dir / "units").rglob("*.json")) if (run_dir / "units").is_dir() else 0


def resume_state(run_dir: Path) -> tuple[str, int] | None:
    """(status, finished units) of an existing run folder, None when there is none yet."""
    if not (run_dir / "manifest.json").is_file():
        return None
    return live_status(run_dir, store.read_status(run_dir)), units_done(run_dir)


def find_run(root: Path, ref: str) -> Path:
    """A run folder from a path, `<experiment>/<run-id>`, a run id, or a unique run-id prefix."""
    path = Path(ref)
    if (path / "manifest.json").is_file() or (path / "config.json").is_file():
        return path
    if (root / ref / "manifest.json").is_file():
        return root / ref
    if not root.is_dir():
        raise RunStoreError(f"no run folder {ref} (and results root not found: {root})")
    matches = sorted(p.parent for p in root.glob("*/*/manifest.json") if p.parent.name.startswith(ref))
    exact = [p for p in matches if p.name == ref]
    if len(exact) == 1 or len(matches) == 1:
        return (exact or matches)[0]
    if not matches:
        raise UsageError(f"no run '{ref}' under {root} (give a run folder, <experiment>/<run-id> or a run id; "
                         f"see `mlbench runs`)")
    names = ", ".join(f"{p.parent.name}/{p.name}" for p in matches[:5])
    raise UsageError(f"'{ref}' matches {len(matches)} runs under {root} ({names}{', ...' if len(matches) > 5 else ''}): "
                     f"give <experiment>/<run-id>")
