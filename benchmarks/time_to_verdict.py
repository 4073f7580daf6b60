"""Time to verdict: every experiment's quick profile in a fresh process (imports included),
median wall time and peak RSS over repeats; then the whole catalogue as a user runs it,
`mlbench run --all` in one process and with `--jobs 2` (goal: at most 5 minutes for the catalogue on a 2-core CPU)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time

from benchmarks.common import ROOT, child_json, median

EXPERIMENT_GOAL_S = 60.0
CATALOGUE_GOAL_S = 300.0


def run(repeats: int = 3, device: str = "cpu", profile: str = "quick", only: list[str] | None = None,
        catalogue: bool = True) -> list[dict]:
    from mlbench.core import registry

    names = only or registry.names()
    rows = []
    for name in names:
        results = [child_json([name, profile, device]) for _ in range(repeats)]
        verdicts = {tuple(sorted(r["verdicts"].items())) for r in results}
        wall = median([r["wall_s"] for r in results])
        rows.append({"experiment": name, "profile": profile, "device": device, "median_wall_s": wall,
                     "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
                     "verdicts": _verdicts(results),
                     "same_every_time": len(verdicts) == 1, "goal_s": EXPERIMENT_GOAL_S,
                     "meets_goal": wall <= EXPERIMENT_GOAL_S})
    if catalogue and not only:
        rows += [catalogue_row(len(names), profile, device, jobs) for jobs in (1, 2)]
    return rows


def _verdicts(results: list[dict]) -> str:
    """claim=verdict of the repeats; a claim whose verdict differed lists each repeat's (a/b/c)."""
    claims = results[0]["verdicts"]
    return ", ".join(f"{k}={'/'.join(r['verdicts'].get(k, '-') for r in results)}"
                     if len({r["verdicts"].get(k) for r in results}) > 1 else f"{k}={v}" for k, v in claims.items())


def catalogue_row(n: int, profile: str, device: str, jobs: int = 1) -> dict:
    """`mlbench run --all --profile P [--jobs N]` once, in a fresh process, into an empty results root."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "cli.main", "run", "--all", "--profile", profile,
                               "--device", device, "--results", tmp, "--jobs", str(jobs)],
                              cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
    how = "one process" if jobs == 1 else f"--jobs {jobs}"
    return {"experiment": f"all {n} (mlbench run --all, {how})", "profile": profile, "device": device,
            "median_wall_s": wall, "peak_rss_mib": None, "verdicts": f"exit {proc.returncode}",
            "same_every_time": None, "goal_s": CATALOGUE_GOAL_S,
            "meets_goal": proc.returncode == 0 and wall <= CATALOGUE_GOAL_S}
