"""Training-loop overhead, one module per experiment: the experiment's own loop (through ctx:
logging, progress, divergence checks, checkpoints) vs a minimal hand-written loop calling the
experiment's own step function on the same model and data, in the same process."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from benchmarks.common import alternate


def context(tmp: str, experiment: str, seeds: int):
    from mlbench.core.context import Context

    return Context(experiment, Path(tmp), list(range(seeds)))


def row(name: str, what: str, ours: Callable, minimal: Callable, repeats: int) -> dict:
    """Alternate the two loops (warm-up first) and keep each one's best time, so both see the
    same machine load."""
    t_ours, t_min = alternate([ours, minimal], repeats)
    ratio = t_min / t_ours
    return {"experiment": name, "loop": what, "ours_s": t_ours, "minimal_s": t_min,
            "throughput_ratio": ratio, "meets_0.95": ratio >= 0.95 or math.isclose(ratio, 0.95)}
