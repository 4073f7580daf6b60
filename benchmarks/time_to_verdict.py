"""Time to verdict: every experiment's quick profile in a fresh process (imports included),
median wall time and peak RSS over repeats."""

from __future__ import annotations

from benchmarks.common import child_json, median


def run(repeats: int = 3, device: str = "cpu", profile: str = "quick", only: list[str] | None = None) -> list[dict]:
    from mlbench.core import registry

    rows = []
    for name in only or registry.names():
        results = [child_json([name, profile, device]) for _ in range(repeats)]
        verdicts = {tuple(sorted(r["verdicts"].items())) for r in results}
        wall = median([r["wall_s"] for r in results])
        rows.append({"experiment": name, "profile": profile, "device": device, "median_wall_s": wall,
                     "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
                     "verdicts": ", ".join(f"{k}={v}" for k, v in results[0]["verdicts"].items()),
                     "same_every_time": len(verdicts) == 1, "under_60s": wall <= 60})
    return rows
