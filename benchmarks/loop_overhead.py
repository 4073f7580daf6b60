"""Training-loop overhead: each experiment's own loop (through ctx: logging, progress,
divergence checks, checkpoints) vs a minimal hand-written PyTorch loop doing the same
training on the same model and data, in the same process. Goal: throughput ratio >= 0.95.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Callable

from benchmarks.common import alternate


def _ctx(tmp: str, experiment: str, seeds: int):
    from mlbench.core.context import Context

    return Context(experiment, Path(tmp), list(range(seeds)))


def attn_scaling(repeats: int) -> dict:
    import torch
    import torch.nn.functional as F

    from mlbench.exps import attn_scaling as exp

    # threshold above 1: no early stop, so both loops do exactly `steps` steps
    cfg = dataclasses.replace(exp.Config(), steps=150, threshold=1.01)
    d, seeds = 64, 4

    def ours():
        with tempfile.TemporaryDirectory() as tmp:
            exp.train_head_dim(cfg, _ctx(tmp, "attn-scaling", seeds), d)

    def minimal():
        ctx = _ctx("/nonexistent", "attn-scaling", seeds)
        params = exp.init_params(cfg, d, seeds, [ctx.generator(f"init-d{d}", k) for k in range(seeds)])
        scale = exp._logit_scales(cfg, d, seeds, "cpu")
        ev = exp._batches(cfg, [ctx.generator("heldout", k) for k in range(seeds)], cfg.eval_size, "cpu")
        gens = [ctx.generator(f"data-d{d}", k) for k in range(seeds)]
        opt = torch.optim.Adam(params.values(), lr=cfg.lr)
        for step in range(cfg.steps + 1):
            if step % cfg.eval_every == 0 or step == cfg.steps:
                with torch.no_grad():
                    logits, _ = exp.forward(params, ev[0], ev[1], scale)
                    (logits.argmax(-1) == ev[2]).float().mean(1).tolist()
                if step == cfg.steps:
                    break
            pairs, query, target = exp._batches(cfg, gens, cfg.batch_size, "cpu")
            logits, _ = exp.forward(params, pairs, query, scale)
            loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(len(scale), -1).mean(1)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()

    return _row("attn-scaling", f"train_head_dim d={d}, {seeds} seeds x 3 arms, {cfg.steps} steps", ours, minimal, repeats)


def _row(name: str, what: str, ours: Callable, minimal: Callable, repeats: int) -> dict:
    """Alternate the two loops (warm-up first) and keep each one's best time, so both see the
    same machine load."""
    t_ours, t_min = alternate([ours, minimal], repeats)
    ratio = t_min / t_ours
    return {"experiment": name, "loop": what, "ours_s": t_ours, "minimal_s": t_min,
            "throughput_ratio": ratio, "meets_0.95": ratio >= 0.95 or math.isclose(ratio, 0.95)}


LOOPS: dict[str, Callable[[int], dict]] = {"attn-scaling": attn_scaling}


def run(repeats: int = 3) -> list[dict]:
    import torch

    torch.set_num_threads(torch.get_num_threads())
    return [fn(repeats) for fn in LOOPS.values()]
