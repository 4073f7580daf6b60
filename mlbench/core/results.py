"""Complete runs under a results root, read back and grouped (what `report` renders).

Runs are grouped per experiment and experiment version: runs of an older version are kept
apart and never compared with current ones. Within a group, only the config keys that differ
between runs are kept; when one or two keys differ (a sweep), `pivot` tabulates them against
the headline effect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlbench.core import lock, registry, store
from mlbench.core.errors import RunStoreError
from mlbench.core.runs import command_of

# "the latest run" of an experiment is the latest of its strongest profile: a smoke run (plumbing
# only) never stands for an experiment when a quick or full one exists
PROFILE_STRENGTH = {"smoke": 0, "quick": 1, "full": 2}


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
    config: dict[str, Any] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)
    ended: str = ""
    decides: bool = True  # False for smoke runs: their verdicts are not results
    provenance: dict[str, Any] = field(default_factory=dict)  # commit, date, versions, device (manifest)
    command: str = ""  # the `mlbench run ...` that recreates it

    @property
    def rank(self) -> tuple:
        return (self.decides, PROFILE_STRENGTH.get(self.profile, 1), self.ended, self.run_id)


@dataclass
class Group:
    experiment: str
    version: int
    current: bool
    summary: str
    citation: str
    runs: list[RunRow]
    varying: list[str]  # config keys (and profile/seeds) that differ between runs

    def values(self, run: RunRow) -> dict[str, Any]:
        return {k: _get(run, k) for k in self.varying}

    @property
    def latest(self) -> RunRow:
        """The latest run of the strongest profile (smoke only when there is nothing else)."""
        return max(self.runs, key=lambda r: r.rank)

    @property
    def swept(self) -> list[str]:
        """The varying config keys, without profile and seeds (which have columns of their own)."""
        return [k for k in self.varying if k not in ("profile", "seeds")]


def runs_text(groups: list[Group]) -> str:
    n = sum(len(g.runs) for g in groups)
    return f"{n} complete run{'' if n == 1 else 's'}"


def current_version(experiment: str) -> int:
    """The experiment's VERSION, from its torch-free face."""
    return registry.version(experiment)


def collect(root: Path, experiment: str | None = None) -> tuple[list[RunRow], list[str]]:
    """Every complete run under `root` (sorted), plus one line per run folder that was skipped."""
    if experiment is not None:
        registry.check_name(experiment)
    if not root.is_dir():
        raise RunStoreError(f"results root not found: {root}")
    rows: list[RunRow] = []
    skipped: list[str] = []
    for manifest_path in sorted(root.glob("*/*/manifest.json")):
        run_dir = manifest_path.parent
        if experiment and run_dir.parent.name != experiment:
            continue
        try:
            manifest = store.read_json(manifest_path)
            if manifest.get("status") != "complete":
                skipped.append(f"{run_dir}: {status_text(run_dir, manifest.get('status'))}")
                continue
            rows.append(_row(run_dir, store.read_json(run_dir / "summary.json"),
                             store.read_json(run_dir / "config.json"), manifest))
        except (RunStoreError, KeyError, TypeError, ValueError, AttributeError) as exc:
            skipped.append(f"{run_dir}: unreadable ({exc})")
    return rows, skipped


def status_text(run_dir: Path, status: str | None) -> str:
    """A run that is not complete, as it really is: a `running` manifest whose lock nobody holds
    was left by a process that died (SIGKILL, power cut, a lost node)."""
    if status != "running":
        return str(status)
    held = lock.state(run_dir)
    if held == "free":
        return "interrupted (its process is gone; rerun the same command to resume)"
    if held == "held":
        return f"running ({lock.holder_text(run_dir)})"
    return "running (or its process died: its lock cannot be checked on this filesystem)"


def _row(run_dir: Path, s: dict[str, Any], cfg: dict[str, Any], manifest: dict[str, Any]) -> RunRow:
    head = s["headline"]
    return RunRow(s["experiment"], s["run_id"], s["profile"], int(s["seeds"]), s["verdict"],
                  head.get("effect"), head.get("ci"), head.get("test", ""), int(s.get("experiment_version", 1)),
                  run_dir, dict(cfg.get("config", {})), list(s.get("claims", [])), list(s.get("plots", [])),
                  str(manifest.get("ended") or ""), bool(s.get("decides", s["profile"] != "smoke")),
                  provenance(manifest), command_of(manifest, cfg, run_dir))


def provenance(manifest: dict[str, Any]) -> dict[str, Any]:
    """Where a run's numbers come from: code commit, date, library versions, device, threads."""
    git, versions = manifest.get("git") or {}, manifest.get("versions") or {}
    commit = str(git.get("commit") or "unknown")
    return {"commit": commit[:12] + ("+dirty" if git.get("dirty") else ""), "date": str(manifest.get("ended") or "")[:10],
            "versions": {k: versions.get(k) for k in ("mlbench", "python", "torch") if versions.get(k)},
            "device": str((manifest.get("device") or {}).get("name") or "?"),
            "threads": (manifest.get("determinism") or {}).get("threads")}


def provenance_text(p: dict[str, Any]) -> str:
    """'commit 3e542f9c1a2b, 2026-12-01, mlbench 0.1.0 python 3.11.2 torch 2.13.0, cpu (1 thread)'."""
    versions = " ".join(f"{k} {v}" for k, v in p.get("versions", {}).items())
    threads = p.get("threads")
    device = p.get("device", "?") + (f" ({threads} thread{'' if threads == 1 else 's'})" if threads else "")
    return ", ".join(x for x in (f"commit {p.get('commit', 'unknown')}", p.get("date"), versions, device) if x)


def group(rows: list[RunRow]) -> list[Group]:
    groups = []
    by_key: dict[tuple[str, int], list[RunRow]] = {}
    for r in rows:
        by_key.setdefault((r.experiment, r.version), []).append(r)
    for (name, version), runs in sorted(by_key.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        known = name in registry.EXPERIMENTS
        info = registry.info(name) if known else None
        current = known and version == current_version(name)
        keys = ["profile", "seeds", *dict.fromkeys(k for r in runs for k in r.config)]
        varying = [k for k in keys if len({json.dumps(_get(r, k), sort_keys=True) for r in runs}) > 1]
        groups.append(Group(name, version, current, info.summary if info else "", info.citation if info else "",
                            sorted(runs, key=lambda r: (r.ended, r.run_id)), varying))
    return groups


def _get(run: RunRow, key: str) -> Any:
    return {"profile": run.profile, "seeds": run.seeds}.get(key, run.config.get(key))


def pivot(g: Group) -> tuple[str, str | None, list[str], list[str], dict[tuple[str, str], str]] | None:
    """(row key, column key, row values, column values, cells) when one or two keys vary."""
    if not 1 <= len(g.varying) <= 2 or len(g.runs) < 2:
        return None
    rk, ck = g.varying[0], (g.varying[1] if len(g.varying) == 2 else None)
    fmt = lambda v: ",".join(map(str, v)) if isinstance(v, list) else str(v)  # noqa: E731
    rvals = list(dict.fromkeys(fmt(_get(r, rk)) for r in g.runs))
    cvals = list(dict.fromkeys(fmt(_get(r, ck)) for r in g.runs)) if ck else ["effect"]
    cells = {}
    for r in g.runs:
        cells[(fmt(_get(r, rk)), fmt(_get(r, ck)) if ck else "effect")] = f"{num(r.effect)} ({r.verdict})"
    return rk, ck, rvals, cvals, cells


def num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def ci_text(ci: list[float] | None) -> str:
    return f"[{num(ci[0])}, {num(ci[1])}]" if ci else "-"


