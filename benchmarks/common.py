"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    return f"{platform.node()} · {os.cpu_count()} cores · {platform.machine()} · Python {platform.python_version()}"


def time_command(args: list[str], repeats: int, env: dict[str, str] | None = None) -> list[float]:
    """Wall seconds of a command, `repeats` times (fresh process each time)."""
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, cwd=ROOT, env={**os.environ, **(env or {})})
        out.append(time.perf_counter() - start)
    return out


def child_json(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m benchmarks.child ...` and read the JSON line it prints last."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.child", *args], check=True, capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def alternate(fns: list[Callable[[], Any]], repeats: int) -> list[float]:
    """Best wall time of each function, run in alternation (after one warm-up each), so a
    change in machine load hits all of them alike."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best
