"""adam-vs-adamw: the best-cell table, the whole grid, the effective-decay bins, and their figures."""

from __future__ import annotations

import math

from mlbench.core.plotting import figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean_ci
from mlbench.exps.adam_vs_adamw import OPTIMISERS, cell_key, cells, coupled, lam_grid

DECAY_RULE = {"adamw-torch": "θ -= η·α·λ·θ", "adamw-paper": "θ -= η·λ·θ"}


def _error_cells(name: str, values: list[float]) -> dict:
    return mean_ci_cells(name, values, lower=0.0, upper=100.0)  # a percentage of digits


def report(cfg, ctx, m: dict, res: dict) -> None:
    rows = []
    for opt in OPTIMISERS:
        (i, j), lams = res["chosen"][opt]["cell"], lam_grid(cfg, opt)
        reduction = m[opt].get("test_error_reduction_pct")
        rows.append({"optimizer": opt, "decay": "g += λθ" if coupled(cfg, opt) else DECAY_RULE[opt],
                     "best_lr": cfg.lrs[i], "best_wd": lams[j], "val_error_pct": mean_ci(m[opt]["best_val_error"]).mean,
                     **_error_cells("test_error_pct", m[opt]["best_test_error"]),
                     "test_error_reduction_pct": "" if reduction is None else mean_ci(reduction).mean,
                     "best_wd_per_lr": " ".join(f"{lams[b]:g}" for b in res["chosen"][opt]["mean_best_wd_index"]),
                     **mean_ci_cells("slope", m[opt]["slope"])})
    ctx.table(rows, title=f"Best (α, λ) per optimiser, chosen on {cfg.val_size} validation digits; test error % on "
              f"497 test digits (mean, 95% CI over {len(ctx.seeds)} seeds); test_error_reduction_pct = "
              f"(Adam+L2's mean test error − this one's) / Adam+L2's, in %; slope = d log10 λ*(α) / d log10 α (best λ per α, per seed)")
    grid = res["grid"]
    ctx.table([{"optimizer": opt, "lr": a, "wd": lam, "val_error_pct": mean_ci(grid[cell_key(opt, a, lam)]["val_err"]).mean,
                **_error_cells("test_error_pct", grid[cell_key(opt, a, lam)]["test_err"]),
                "diverged": sum(not math.isnan(s) for s in grid[cell_key(opt, a, lam)]["diverged_at"])}
               for opt, a, lam in cells(cfg)],
              name="grid", title="Every (α, λ) cell: error % (mean over seeds; nan where a seed diverged), "
              "diverged = seeds whose training loss became NaN/inf")
    mech = [{"optimizer": opt, "bin": b, "grad_rms": mean_ci([s["bins"][b][0] for s in res["mechanism"][opt]]).mean,
             "effective_decay_per_step": mean_ci([s["bins"][b][1] for s in res["mechanism"][opt]]).mean}
            for opt in OPTIMISERS for b in range(len(res["mechanism"][opt][0]["bins"]))]
    ctx.table(mech, name="mechanism", title="Effective decay per step (η = 1) vs gradient RMS √v̂: quantile bins "
              "of the weights of each optimiser's best model (mean over seeds)")
    _plot_heatmaps(cfg, ctx, res)
    _plot_effective_decay(cfg, ctx, res, mech)


def _mean_test_error(cfg, grid: dict, opt: str):
    """(n_lr, n_wd) array of the seed-mean test error of `opt`'s cells (NaN where a seed diverged)."""
    import numpy as np

    return np.array([[grid[cell_key(opt, a, lam)]["test_err"] for lam in lam_grid(cfg, opt)] for a in cfg.lrs]).mean(-1)


def _wd_label(cfg, opt: str) -> str:
    if coupled(cfg, opt):
        return "L2 weight λ (added to the gradient)"
    return "λ_torch (decay α·λ_torch a step)" if opt == "adamw-torch" else "weight decay λ (decay λ a step)"


def _plain_log_ticks(axis) -> None:
    """Log-axis labels as plain numbers (0.002, not 2×10⁻³), fewer the more decades the axis spans
    (every tick within one decade, 1-2-5 within two, the decades beyond), so they never crowd."""
    from matplotlib.ticker import FuncFormatter

    low, high = axis.get_view_interval()
    decades = math.log10(high / low)
    shown = "123456789" if decades <= 1 else "125" if decades <= 2 else "1"
    plain = FuncFormatter(lambda v, _: f"{v:g}" if f"{v:e}"[0] in shown else "")
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(plain)


def _plot_heatmaps(cfg, ctx, res: dict) -> None:
    import numpy as np
    from matplotlib import colormaps
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Rectangle

    err = np.stack([_mean_test_error(cfg, res["grid"], opt) for opt in OPTIMISERS])  # (O, L, W)
    finite = err[np.isfinite(err)]
    norm = LogNorm(max(finite.min(), 0.1), max(finite.max(), 0.2))  # log: contrast among good cells, none clipped
    cmap = colormaps["viridis_r"].with_extremes(bad="lightgrey")
    fig, ax = figure(1, len(OPTIMISERS), width=4.2, height=4.0)
    fig.set_layout_engine("constrained")
    for o, opt in enumerate(OPTIMISERS):
        a, chosen = ax[0][o], res["chosen"][opt]
        im = a.imshow(np.ma.masked_invalid(err[o]), origin="lower", cmap=cmap, norm=norm, aspect="auto")
        for (i, j), e in np.ndenumerate(err[o]):
            text, dark = ("diverged", False) if math.isnan(e) else (f"{e:.1f}", norm(max(e, norm.vmin)) > 0.6)
            a.text(j, i, text, ha="center", va="center", fontsize=7 if math.isnan(e) else 8,
                   color="white" if dark else "black")
        a.plot(chosen["mean_best_wd_index"], range(len(cfg.lrs)), "o", mfc="none", mec="red", ms=18)
        a.add_patch(Rectangle((chosen["cell"][1] - .5, chosen["cell"][0] - .5), 1, 1, fill=False, ec="red", lw=2.5))
        a.set_xticks(range(err.shape[2]), [f"{w:g}" for w in lam_grid(cfg, opt)])
        a.set_yticks(range(len(cfg.lrs)), [f"{x:g}" for x in cfg.lrs] if o == 0 else [])
        a.set(xlabel=_wd_label(cfg, opt), title=opt + (" (control: coupled)" if opt != "adam-l2" and coupled(cfg, opt) else ""))
    ax[0][0].set_ylabel("learning rate α")
    bar = fig.colorbar(im, ax=ax[0].tolist(), label=f"test error % (mean of {len(ctx.seeds)} seeds, log scale)", shrink=0.9)
    _plain_log_ticks(bar.ax.yaxis)
    fig.suptitle("Test error over α × λ — red box: best cell on validation; red circles: best λ for each α")
    ctx.plot("heatmaps", fig)


def _plot_effective_decay(cfg, ctx, res: dict, mech: list[dict]) -> None:
    fig, ax = figure(1, 1, width=6.0, height=4.2)
    # the AdamW forms often pick cells with the same per-step decay, so their points coincide:
    # hollow large squares under small filled triangles keep both visible
    styles = {"adam-l2": dict(marker="o", ls="-"), "adamw-torch": dict(marker="s", ls="--", ms=10, mfc="none"),
              "adamw-paper": dict(marker="^", ls=":", ms=5)}
    for opt in OPTIMISERS:
        (i, _), lam = res["chosen"][opt]["cell"], lam_grid(cfg, opt)[res["chosen"][opt]["cell"][1]]
        rows = [r for r in mech if r["optimizer"] == opt]
        name = "λ_torch" if opt == "adamw-torch" and not coupled(cfg, opt) else "λ"
        ax[0][0].plot([r["grad_rms"] for r in rows], [r["effective_decay_per_step"] for r in rows],
                      label=f"{opt} (α = {cfg.lrs[i]:g}, {name} = {lam:g})", **styles[opt])
    ax[0][0].set(xscale="log", yscale="log", xlabel="gradient RMS √v̂ (quantile bins of the best model's weights)",
                 ylabel="weight decay per step at η = 1 (fraction of θ)",
                 title="Adam+L2 decays weights with large gradients less")
    _plain_log_ticks(ax[0][0].xaxis)
    _plain_log_ticks(ax[0][0].yaxis)
    ax[0][0].legend(fontsize="small")
    ctx.plot("effective_decay", fig)
