"""adam-vs-adamw: the step check against torch.optim, then the whole (optimiser, α, λ) × seeds
grid trained as one batched ensemble, read at each optimiser's best cell."""

from __future__ import annotations

import math

import torch

from mlbench.exps.adam_vs_adamw import OPTIMISERS, cell_grid, cell_key, cells, lam_grid
from mlbench.exps.adam_vs_adamw.mlp import (decay_mask, evaluate, init_params, load_data, sample_batch,
                                            train_step, unflatten)
from mlbench.exps.adam_vs_adamw.optimisers import grid_hypers, schedule, step_check
from mlbench.exps.adam_vs_adamw.report import report
from mlbench.exps.adam_vs_adamw.selection import best_key, mechanism, select, separability_slope


def train_grid(cfg, ctx, data: dict, grid) -> tuple:
    """Train every (optimiser, α, λ, seed) MLP together: flat params (M, P), Adam's v, last evaluation."""
    dev = ctx.device
    flat = init_params(cfg, grid, ctx.generators("init"), dev)  # (M, P)
    moments = torch.zeros_like(flat), torch.zeros_like(flat)  # Adam's m, v (M, P)
    hyp, mask = grid_hypers(cfg, grid, dev), decay_mask(cfg, dev)
    cell_of = {cell_key(*c): c for c in cells(cfg)}  # arm -> (optimiser, α, λ)
    lr, wd = ([cell_of[arm][n] for _, arm, _ in grid.members()] for n in (1, 2))  # per member, for the log
    gens, train_loss = ctx.generators("batches"), None
    for step in ctx.steps(cfg.steps, every=cfg.eval_every, desc=f"train {len(grid)} MLPs"):
        if step.evaluate:
            ev, losses = evaluate(flat, data, cfg), {}
            if train_loss is not None:  # the loss of the last step (none before the first)
                losses = {"train_loss": train_loss.tolist()}  # one transfer, not one per model
                ctx.watch(grid, step.index, **losses)  # NaN/inf: marked diverged, never a crash
            ctx.log_models(grid, step.index, lr=lr, wd=wd, **losses, val_error=ev["val_err"], test_error=ev["test_err"])
            if step.last:
                break
        idx = sample_batch(grid, gens, data, cfg.batch_size)  # (M, B): seed k's batch in every cell
        eta = schedule(step.index, cfg.steps, cfg.restarts)
        train_loss = train_step(flat, moments, idx, data, hyp, mask, eta, step.index + 1, cfg)
    return flat.detach(), moments[1], ev


def save_grids(cfg, ctx, grid, flat) -> None:
    """One checkpoint per (optimiser, seed): its whole α × λ grid, tensors (n_lr, n_wd, fan_in, fan_out)."""
    by_cell = {n: grid.by_arm(p) for n, p in unflatten(flat, cfg.hidden).items()}  # {name: {cell: (S, ...)}}
    for opt in OPTIMISERS:
        lams = lam_grid(cfg, opt)
        for s, seed in enumerate(grid.seeds):
            tensors = {n: torch.stack([torch.stack([p[cell_key(opt, a, lam)][s] for lam in lams]) for a in cfg.lrs])
                       for n, p in by_cell.items()}
            ctx.save_checkpoint(f"{opt}-seed{seed}", tensors, {"optimizer": opt, "seed_index": seed,
                                                              "lrs": list(cfg.lrs), "wds": list(lams)})


def run_grid(cfg, ctx) -> dict:
    """The resumable unit: train, choose, measure the mechanism, save each (optimiser, seed) grid."""
    grid = cell_grid(cfg, ctx.seeds)
    flat, v, final = train_grid(cfg, ctx, load_data(cfg, ctx), grid)
    per_cell = grid.measurements(val_err=final["val_err"], test_err=final["test_err"], val_loss=final["val_loss"],
                                 diverged_at=grid.divergence_steps())  # {cell: {metric: [per seed]}}, NaN if diverged
    chosen = select(cfg, per_cell)
    save_grids(cfg, ctx, grid, flat)
    return {"grid": per_cell, "chosen": chosen, "mechanism": mechanism(cfg, grid, v, chosen)}


def relative_reduction(control: list[float], treated: list[float]) -> list[float]:
    """Per seed, 100 (control − treated) / mean(control): its mean over seeds is the relative
    reduction of the mean test error, the form of the paper's figure."""
    scale = sum(control) / len(control)
    return [100 * (c - t) / scale if scale > 0 else math.nan for c, t in zip(control, treated)]


def run(cfg, ctx) -> dict:
    checks = ctx.unit("step-check", lambda: [step_check(cfg, g) for g in ctx.generators("step-check")])
    res = ctx.unit("grid", lambda: run_grid(cfg, ctx))
    measurements: dict[str, dict[str, list[float]]] = {}
    l2_error = res["grid"][best_key(cfg, "adam-l2", res["chosen"])]["test_err"]  # per seed
    for opt in OPTIMISERS:
        best = res["grid"][best_key(cfg, opt, res["chosen"])]
        slopes = [separability_slope(cfg, opt, idx) for idx in res["chosen"][opt]["best_wd_index"]]
        mech = [r["slope"] for r in res["mechanism"][opt]]
        measurements[opt] = {
            "best_test_error": best["test_err"], "best_val_error": best["val_err"],
            **({} if opt == "adam-l2" else {"test_error_reduction_pct": relative_reduction(l2_error, best["test_err"])}),
            "slope": slopes, "abs_slope": [abs(s) for s in slopes],
            "eff_decay_slope": mech, "eff_decay_abs_slope": [abs(s) for s in mech],
            "step_max_abs_diff": [c[opt] for c in checks]}
    report(cfg, ctx, measurements, res)
    return measurements
