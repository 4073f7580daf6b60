"""Reading the α × λ grid: each optimiser's best cell and best λ per α (on validation data), the
separability slope of log λ*(α), and the effective decay of the best models' weights."""

from __future__ import annotations

import math

import torch

from mlbench.core.verdict import mean, slope
from mlbench.exps.adam_vs_adamw import OPTIMISERS, cell_key, coupled, lam_grid
from mlbench.exps.adam_vs_adamw.mlp import decay_mask
from mlbench.exps.adam_vs_adamw.optimisers import effective_decay


def argbest(scores: list[tuple[float, float]]) -> int:
    """Index of the lowest (error, loss): the loss breaks ties between equal error counts. NaN (a
    diverged seed) ranks last."""
    ranked = [(math.inf, math.inf) if any(math.isnan(x) for x in s) else s for s in scores]
    return min(range(len(ranked)), key=lambda c: ranked[c])


def select(cfg, per_cell: dict) -> dict:
    """`per_cell` {cell key: {"val_err": [per seed], "val_loss": [...]}}. Per optimiser: its best
    (α index, λ index) on the seed-mean validation error, and the best λ index per α for the seed
    mean and for each seed."""
    seeds = len(next(iter(per_cell.values()))["val_err"])
    out = {}
    for opt in OPTIMISERS:
        rows = [[per_cell[cell_key(opt, a, lam)] for lam in lam_grid(cfg, opt)] for a in cfg.lrs]  # [α][λ]
        avg = [[(mean(c["val_err"]), mean(c["val_loss"])) for c in row] for row in rows]
        pairs = [(i, j) for i in range(len(rows)) for j in range(len(rows[i]))]
        out[opt] = {"cell": pairs[argbest([avg[i][j] for i, j in pairs])],
                    "mean_best_wd_index": [argbest(row) for row in avg],
                    "best_wd_index": [[argbest([(c["val_err"][k], c["val_loss"][k]) for c in row]) for row in rows]
                                      for k in range(seeds)]}
    return out


def best_key(cfg, opt: str, chosen: dict) -> str:
    """The cell key of `opt`'s best cell."""
    i, j = chosen[opt]["cell"]
    return cell_key(opt, cfg.lrs[i], lam_grid(cfg, opt)[j])


def separability_slope(cfg, opt: str, wd_index: list[int]) -> float:
    """Least-squares slope of log10 λ*(α) against log10 α (decades of λ per decade of α)."""
    lams = lam_grid(cfg, opt)
    return slope([math.log10(a) for a in cfg.lrs], [math.log10(lams[j]) for j in wd_index])


def mechanism(cfg, grid, v, chosen: dict) -> dict:
    """Per optimiser (at its best cell) and seed: effective decay vs gradient RMS √v̂ in quantile
    bins of its decayed weights, and the log-log slope across the bins. `v` (M, P): Adam's v."""
    decayed = decay_mask(cfg, "cpu") > 0
    v_by_cell = grid.by_arm(v)  # {cell: (S, P)}
    out = {}
    for opt in OPTIMISERS:
        i, j = chosen[opt]["cell"]
        rows = []
        for v_seed in v_by_cell[best_key(cfg, opt, chosen)]:
            v_hat = v_seed.double().cpu()[decayed] / (1 - cfg.beta2**cfg.steps)
            v_hat = v_hat[v_hat > 0].sort().values  # a weight that never had a gradient has no RMS
            eff = effective_decay(v_hat, cfg.lrs[i], lam_grid(cfg, opt)[j], "adam-l2" if coupled(cfg, opt) else opt,
                                  cfg.eps)
            bins = [(v_hat[c].sqrt().median().item(), eff[c].median().item())
                    for c in torch.arange(len(v_hat)).chunk(cfg.decay_bins)]
            rows.append({"bins": bins, "slope": slope([math.log10(r) for r, _ in bins], [math.log10(e) for _, e in bins])})
        out[opt] = rows
    return out
