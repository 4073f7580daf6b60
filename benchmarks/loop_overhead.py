"""Training-loop overhead: each experiment's own loop (through ctx: logging, progress,
divergence checks, checkpoints) vs a minimal hand-written loop calling the experiment's own
step function on the same model and data, in the same process. Goal: throughput ratio >= 0.95.
One module per experiment in benchmarks/loops/. hippo-memory has no training loop (its memories
are closed-form linear recurrences).
"""

from __future__ import annotations

from typing import Callable

from benchmarks.loops import adam_vs_adamw, attn_scaling, ddpm_vs_sde, fp16_mixed

LOOPS: dict[str, Callable[[int], dict]] = {"attn-scaling": attn_scaling.run, "adam-vs-adamw": adam_vs_adamw.run,
                                             "ddpm-vs-sde": ddpm_vs_sde.run, "fp16-mixed": fp16_mixed.run}


def run(repeats: int = 3) -> list[dict]:
    return [fn(repeats) for fn in LOOPS.values()]
