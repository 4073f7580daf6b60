"""adam-vs-adamw: the best-cell table, the whole grid, the effective-decay bins, and their figures."""

from __future__ import annotations

from mlbench.core.plotting import figure
from mlbench.core.verdict import mean_ci
from mlbench.exps.adam_vs_adamw import OPTIMISERS, cell_key, cells, coupled, lam_grid

DECAY_RULE = {"adamw-torch": "θ -= η·α·λ·θ", "adamw-paper": "θ -= η·λ·θ"}


def report(cfg, ctx, m: dict, res: dict) -> None:
    rows, mech = [], []
    for opt in OPTIMISERS:
        (i, j), lams = res["chosen"][opt]["cell"], lam_grid(cfg, opt)
        err, sl = mean_ci(m[opt]["best_test_error"]), mean_ci(m[opt]["slope"])
        rows.append({"optimizer": opt, "decay": "g += λθ" if coupled(cfg, opt) else DECAY_RULE[opt],
                     "best_lr": cfg.lrs[i], "best_wd": lams[j], "val_error_pct": mean_ci(m[opt]["best_val_error"]).mean,
                     "test_error_pct": err.mean, "test_ci_low": err.low, "test_ci_high": err.high,
                     "best_wd_per_lr": " ".join(f"{lams[b]:g}" for b in res["chosen"][opt]["mean_best_wd_index"]),
                     "slope_log_wd_vs_log_lr": sl.mean, "slope_ci_low": sl.low, "slope_ci_high": sl.high})
        per_seed = [r["bins"] for r in res["mechanism"][opt]]
        mech += [{"optimizer": opt, "bin": b, "grad_rms": mean_ci([s[b][0] for s in per_seed]).mean,
                  "effective_decay_per_step": mean_ci([s[b][1] for s in per_seed]).mean} for b in range(len(per_seed[0]))]
    ctx.table(rows, title=f"Best (α, λ) per optimiser, chosen on {cfg.val_size} validation digits; test error % on "
              f"497 test digits (mean, 95% CI over {len(ctx.seeds)} seeds); slope = d log10 λ*(α) / d log10 α")
    grid = res["grid"]
    ctx.table([{"optimizer": opt, "lr": a, "wd": lam, "val_error_pct": mean_ci(grid[cell_key(opt, a, lam)]["val_err"]).mean,
                "test_error_pct": mean_ci(grid[cell_key(opt, a, lam)]["test_err"]).mean} for opt, a, lam in cells(cfg)],
              name="grid", title="Every (α, λ) cell: error % (mean over seeds)")
    ctx.table(mech, name="mechanism", title="Effective decay per step (η = 1) vs gradient RMS √v̂: quantile bins "
              "of the weights of each optimiser's best model (mean over seeds)")
    _plot(cfg, ctx, res, mech)


def _mean_test_error(cfg, grid: dict, opt: str):
    """(n_lr, n_wd) array of the seed-mean test error of `opt`'s cells."""
    import numpy as np

    return np.array([[grid[cell_key(opt, a, lam)]["test_err"] for lam in lam_grid(cfg, opt)] for a in cfg.lrs]).mean(-1)


def _plot(cfg, ctx, res: dict, mech: list[dict]) -> None:
    import numpy as np
    from matplotlib.patches import Rectangle

    err = np.stack([_mean_test_error(cfg, res["grid"], opt) for opt in OPTIMISERS])  # (O, L, W)
    vmin, vmax = err.min(), min(err.max(), 3 * err.min() + 1)  # keep contrast among the good cells
    fig, ax = figure(1, len(OPTIMISERS), width=4.2, height=3.8)
    for o, opt in enumerate(OPTIMISERS):
        a, chosen = ax[0][o], res["chosen"][opt]
        im = a.imshow(err[o], origin="lower", cmap="viridis_r", vmin=vmin, vmax=vmax, aspect="auto")
        for (i, j), e in np.ndenumerate(err[o]):
            a.text(j, i, f"{e:.1f}", ha="center", va="center", fontsize=8, color="white" if e > (vmin + vmax) / 2 else "black")
        a.plot(chosen["mean_best_wd_index"], range(len(cfg.lrs)), "o", mfc="none", mec="red", ms=18)
        a.add_patch(Rectangle((chosen["cell"][1] - .5, chosen["cell"][0] - .5), 1, 1, fill=False, ec="red", lw=2.5))
        a.set_xticks(range(err.shape[2]), [f"{w:g}" for w in lam_grid(cfg, opt)])
        a.set_yticks(range(len(cfg.lrs)), [f"{x:g}" for x in cfg.lrs] if o == 0 else [])
        a.set(xlabel="λ_torch (decay α·λ_torch)" if opt == "adamw-torch" and not coupled(cfg, opt) else "λ",
              title=opt + (" (control: coupled)" if opt != "adam-l2" and coupled(cfg, opt) else ""))
    ax[0][0].set_ylabel("learning rate α")
    fig.colorbar(im, ax=ax[0].tolist(), label=f"test error % (mean of {len(ctx.seeds)} seeds)", shrink=0.9)
    fig.suptitle("Test error over α × λ. Box: best cell on validation; circles: best λ for each α (validation)")
    ctx.plot("heatmaps", fig)
    fig, ax = figure(1, 1, width=5.5, height=4)
    for opt, style in zip(OPTIMISERS, ("o-", "s--", "^:")):
        rows = [r for r in mech if r["optimizer"] == opt]
        ax[0][0].plot([r["grad_rms"] for r in rows], [r["effective_decay_per_step"] for r in rows], style, label=opt)
    ax[0][0].set(xscale="log", yscale="log", xlabel="gradient RMS √v̂ (quantile bins of the weights)",
                 ylabel="effective decay per step (η = 1)", title="Adam+L2 decays weights with large gradients less")
    ax[0][0].legend()
    ctx.plot("effective_decay", fig)
