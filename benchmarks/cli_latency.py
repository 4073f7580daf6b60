"""CLI latency: --help, list, show, and report over 1,000 runs (goal: help/list <= 0.5 s, report <= 5 s)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.common import median, time_command


def fake_results(root: Path, n: int) -> None:
    """n complete run folders: one real smoke run, copied under distinct run ids."""
    import mlbench

    real = mlbench.run("attn-scaling", profile="smoke", results=root).run_dir
    for i in range(n - 1):
        run_id = f"smoke-{i:010x}"
        dst = real.parent / run_id
        shutil.copytree(real, dst, ignore=shutil.ignore_patterns("checkpoints", "units"))
        summary = json.loads((dst / "summary.json").read_text())
        summary["run_id"] = run_id
        (dst / "summary.json").write_text(json.dumps(summary))


def run(repeats: int = 5, runs: int = 1000) -> list[dict]:
    rows = []
    cli = [sys.executable, "-m", "cli.main"]
    for name, args, goal in (("mlbench --help", ["--help"], 0.5), ("mlbench list", ["list"], 0.5),
                             ("mlbench show attn-scaling", ["show", "attn-scaling"], None)):
        t = median(time_command([*cli, *args], repeats))
        rows.append({"command": name, "median_s": t, "goal_s": goal, "meets": goal is None or t <= goal})
    with tempfile.TemporaryDirectory() as tmp:
        fake_results(Path(tmp), runs)
        for fmt in ("md", "html"):
            t = median(time_command([*cli, "report", "--results", tmp, "--format", fmt], repeats))
            rows.append({"command": f"mlbench report -f {fmt} ({runs} runs)", "median_s": t, "goal_s": 5.0,
                         "meets": t <= 5.0})
    return rows
