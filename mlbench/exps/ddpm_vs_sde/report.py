"""ddpm-vs-sde: the sample-quality table, the forward-marginal tables, and their figures."""

from __future__ import annotations

import math

import torch

from mlbench.core.grid import arm_key
from mlbench.core.plotting import curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean, mean_ci
from mlbench.exps.ddpm_vs_sde import CHAIN_STEPS, SAMPLERS
from mlbench.exps.ddpm_vs_sde.sde import ddpm_alpha_bar, log_alpha, marginal_prob

LABELS = {"mmd": "MMD to fresh data", "sw2": "sliced Wasserstein-2 to fresh data",
          "mode_std": "per-mode std (true 0.1)"}


def quality_row(m: dict, key: str, extra: tuple) -> dict:
    r = m[key]
    return {**mean_ci_cells("mmd", r["mmd"]), **{q: mean(r[q]) for q in ("mmd_over_floor", *extra)}}


def report(cfg, ctx, m: dict, marg: list, points: dict, losses: list) -> None:
    extra = ("sw2", "mode_std") if cfg.dataset == "8gaussians" else ("sw2",)
    rows = [{"sampler": s, "nfe": n, "steps": n // SAMPLERS[s], **quality_row(m, arm_key(s, nfe=n), extra)}
            for s in cfg.samplers for n in sorted(cfg.nfe_grid)]
    rows.append({"sampler": "ode-rk45", "nfe": mean(m["ode-rk45"]["nfe"]), **quality_row(m, "ode-rk45", extra)})
    rows.append({"sampler": "data", **quality_row(m, "data-floor", extra)})
    modes = "; mode_std: per-mode std (true 0.1)" if "mode_std" in extra else ""
    ctx.table(rows, title=f"{cfg.dataset}: quality of {cfg.n_eval} samples vs network evaluations (nfe), mean over "
              f"{len(ctx.seeds)} seeds (mmd with its 95% CI). mmd: MMD to fresh data; mmd_over_floor: MMD in units "
              f"of the noise floor (row 'data': fresh data vs data); sw2: sliced Wasserstein-2{modes}; steps: "
              "sampler steps (ode-rk45: adaptive)")
    alpha_bar = ddpm_alpha_bar(1000, cfg)
    table = []
    for j, i in enumerate(CHAIN_STEPS):
        ab, (alpha, sigma) = alpha_bar[i - 1].item(), marginal_prob(i / 1000, cfg)
        table.append({"t": i / 1000, "ddpm_i": i, "ddpm_sqrt_alpha_bar": math.sqrt(ab), "sde_alpha": alpha,
                      "ddpm_sqrt_1m_alpha_bar": math.sqrt(1 - ab), "sde_sigma": sigma,
                      "abs_err_alpha_bar": abs(ab - alpha**2),
                      "chain_coef_mc": mean([r["chain_coef"][j] for r in marg]),
                      "chain_std_mc": mean([r["chain_std"][j] for r in marg])})
    ctx.table(table, name="marginals", title="Forward marginals, DDPM (N=1000, β 1e-4..0.02) vs VP-SDE "
              f"(β {cfg.beta_min:g}..{cfg.beta_max:g}); chain_*: the simulated DDPM chain "
              f"({cfg.n_mc} points, seed mean)")
    ctx.table([{"N": n, "beta_1": cfg.beta_min / n, "beta_N": cfg.beta_max / n, "max_abs_err_alpha_bar": e}
               for n, e in zip(cfg.marginal_steps, marg[0]["max_abs_err"])],
              name="marginals-N", title="max_i |ᾱ_i − α(i/N)²| shrinks as O(1/N)")
    _plot_quality(cfg, ctx, m, ("mmd", *extra))
    _plot_samples(cfg, ctx, points)
    _plot_marginals(cfg, ctx, marg, losses)


def _plot_quality(cfg, ctx, m: dict, metrics: tuple) -> None:
    fig, ax = figure(1, len(metrics))
    grid = sorted(cfg.nfe_grid)
    for a, metric in zip(ax[0], metrics):
        for name in cfg.samplers:
            cis = [mean_ci(m[arm_key(name, nfe=n)][metric]) for n in grid]
            err = [[c.mean - c.low for c in cis], [c.high - c.mean for c in cis]]
            a.errorbar(grid, [c.mean for c in cis], yerr=err, marker="o", capsize=3, label=name)
        a.plot([mean(m["ode-rk45"]["nfe"])], [mean(m["ode-rk45"][metric])], "k*", ms=12, label="ode-rk45 (adaptive)")
        a.axhline(mean(m["data-floor"][metric]), color="grey", ls=":", label="fresh data (noise floor)")
        a.set(xscale="log", yscale="log", xlabel="network evaluations (NFE)", ylabel=LABELS[metric])
        a.set_xticks(grid, [str(n) for n in grid])
        a.set_xticks([], minor=True)
    ax[0][0].legend(fontsize=8)
    fig.suptitle(f"{cfg.dataset}: sample quality vs NFE (mean and 95% CI over {len(ctx.seeds)} seeds)")
    fig.tight_layout()
    ctx.plot("quality_vs_nfe", fig)


def _plot_samples(cfg, ctx, points: dict) -> None:
    lo, hi = min(cfg.nfe_grid), max(cfg.nfe_grid)
    fig, ax = figure(2, len(cfg.samplers) + 1, width=2.6, height=2.6, sharex=True, sharey=True)
    for row, nfe in enumerate((lo, hi)):
        first = ("data", "fresh data") if row == 0 else ("ode-rk45", "ode-rk45 (adaptive)")
        for a, (key, title) in zip(ax[row], [first] + [(arm_key(s, nfe=nfe), f"{s}, NFE {nfe}") for s in cfg.samplers]):
            a.scatter([p[0] for p in points[key]], [p[1] for p in points[key]], s=2, alpha=0.5)
            a.set_title(title, fontsize=8)
    for a in ax[1]:
        a.set_xlabel("x₁")
    for a in (ax[0][0], ax[1][0]):
        a.set_ylabel("x₂")
    fig.suptitle(f"{cfg.dataset}: samples of seed 0 (top: NFE {lo}, bottom: NFE {hi})")
    fig.tight_layout()
    ctx.plot("samples", fig)


def _plot_marginals(cfg, ctx, marg: list, losses: list) -> None:
    fig, ax = figure(1, 3)
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    alpha, ab, i = log_alpha(t, cfg).exp(), ddpm_alpha_bar(1000, cfg), torch.arange(1, 1001, 50)
    ax[0][0].plot(t, alpha, label="SDE α(t)")
    ax[0][0].plot(t, (1 - alpha**2).sqrt(), label="SDE σ(t)")
    ax[0][0].plot(i / 1000, ab[i - 1].sqrt(), "o", ms=3, label="DDPM sqrt(ᾱ_i)")
    ax[0][0].plot(i / 1000, (1 - ab[i - 1]).sqrt(), "s", ms=3, label="DDPM sqrt(1 − ᾱ_i)")
    ax[0][0].set(xlabel="time t = i/N", ylabel="mean coefficient and noise std", title="forward marginals (N=1000)")
    ax[0][0].legend(fontsize=8)
    ax[0][1].loglog(cfg.marginal_steps, marg[0]["max_abs_err"], "o-")
    ax[0][1].set(xlabel="DDPM steps N", ylabel="max |ᾱ_i − α(i/N)²|", title="discretisation error, O(1/N)")
    per_seed = [list(col) for col in zip(*(r[1:] for r in losses))]  # seeds x record steps
    curves(ax[0][2], [r[0] for r in losses], {"mean over seeds": per_seed} if losses else {}, xlabel="training step",
           ylabel="denoising loss ‖ε_θ − ε‖²",
           title="training loss (thin lines: seeds)" if losses else "not trained (negative control)")
    if losses:
        ax[0][2].set_yscale("log")
    fig.tight_layout()
    ctx.plot("marginals", fig)
