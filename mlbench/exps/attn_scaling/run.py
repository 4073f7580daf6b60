"""attn-scaling: init statistics per d, then every arm × seed trained per head dimension."""

from __future__ import annotations

import math

import torch

from mlbench.core.grid import Keep, arm_key
from mlbench.core.verdict import Censored
from mlbench.exps.attn_scaling import ARMS
from mlbench.exps.attn_scaling.attention import (attention_entropy, forward, init_params, init_statistics,
                                                 logit_scales, recall_batches, train_step)
from mlbench.exps.attn_scaling.report import report


def train_head_dim(cfg, ctx, d: int) -> dict:
    """Train every (arm, seed) model at head dimension d together; JSON-able results."""
    grid, dev = ctx.grid(ARMS, d=d), ctx.device
    params = {k: v.to(dev).requires_grad_(True) for k, v in init_params(cfg, d, grid, ctx.generators(f"init-d{d}")).items()}
    scale = logit_scales(cfg, grid, d, dev)
    heldout = recall_batches(cfg, grid, ctx.generators("heldout"), cfg.eval_size, dev)
    data_gens = ctx.generators(f"data-d{d}")
    opt = (torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD)(list(params.values()), lr=cfg.lr)
    reached: list[int | None] = [None] * len(grid)
    curve_steps, curve_acc, h0, losses = [], [], None, torch.zeros(len(grid))
    for step in ctx.steps(cfg.steps, every=cfg.eval_every, desc=f"train d={d} ({len(grid)} models)"):
        if step.evaluate:
            with torch.no_grad():
                logits, attn = forward(params, heldout[0], heldout[1], scale)
            acc = (logits.argmax(-1) == heldout[2]).float().mean(1).cpu()  # (M,)
            h0 = attention_entropy(attn).cpu() if h0 is None else h0
            curve_steps.append(step.index)
            curve_acc.append(acc.tolist())
            reached = [r if r is not None or a < cfg.threshold else step.index for r, a in zip(reached, acc.tolist())]
            ctx.log_models(grid, step.index, heldout_acc=acc, train_loss=losses)
            if step.last or all(r is not None or grid.diverged(m) for m, r in enumerate(reached)):
                break
        batch = recall_batches(cfg, grid, data_gens, cfg.batch_size, dev)
        losses = train_step(params, opt, batch, scale).cpu()
        ctx.watch(grid, step.index + 1, train_loss=losses)  # NaN/inf loss: recorded, never a crash
    ctx.save_models(grid, params, metadata=lambda m: {"arm": grid.arm_of(m), "head_dim": str(d),
                                                      "seed_index": str(grid.seed_of(m))})
    censored = cfg.steps + cfg.eval_every  # "not reached": counted as one evaluation past the budget
    measurements = grid.measurements(
        steps_to_threshold=Censored([float(censored if r is None else r) for r in reached], [r is None for r in reached]),
        reached=Keep([float(r is not None) for r in reached]), diverged_at=grid.divergence_steps(),
        H0=Keep(h0), final_acc=curve_acc[-1])
    per_arm = grid.by_arm(torch.tensor(curve_acc, dtype=torch.float64).T)  # {arm: (S, evaluations)}
    return {"measurements": measurements, "curve_steps": curve_steps,
            "curve_acc": {arm: acc.tolist() for arm, acc in per_arm.items()}}


def log_slowdown(unscaled: dict, scaled: dict) -> dict:
    """Per seed log(steps unscaled / steps scaled). Unscaled censored at the budget: a lower bound
    (`.censored`); scaled censored: the ratio is unknown (NaN)."""
    key = Censored.key("steps_to_threshold")
    u, s, cu, cs = unscaled["steps_to_threshold"], scaled["steps_to_threshold"], unscaled[key], scaled[key]
    return {"log_slowdown": [math.nan if c_s else math.log(a / b) for a, b, c_s in zip(u, s, cs)],
            Censored.key("log_slowdown"): [float(bool(c_u) and not c_s) for c_u, c_s in zip(cu, cs)]}


def run(cfg, ctx) -> dict:
    measurements: dict[str, dict[str, list[float]]] = {}
    stats_dims, head_dims = sorted(cfg.stats_dims), sorted(cfg.head_dims)
    stats = ctx.map_units({f"init-stats-d{d}": (lambda d=d: [init_statistics(d, cfg.stats_queries, cfg.stats_keys, g)
                                                           for g in ctx.generators(f"stats-d{d}")])
                           for d in stats_dims})
    for d in stats_dims:
        per_seed = stats[f"init-stats-d{d}"]
        for name in ("scaled", "unscaled"):
            measurements[arm_key(f"{name}-init", d=d)] = {key: [s[name][key] for s in per_seed] for key in per_seed[0][name]}
    trained = ctx.map_units({f"train-d{d}": (lambda d=d: train_head_dim(cfg, ctx, d)) for d in head_dims})
    curves = {d: trained[f"train-d{d}"] for d in head_dims}
    for d in head_dims:
        measurements.update(curves[d]["measurements"])
        measurements[f"d{d}"] = log_slowdown(measurements[arm_key("unscaled", d=d)], measurements[arm_key("scaled", d=d)])
    report(cfg, ctx, measurements, curves)
    return measurements
