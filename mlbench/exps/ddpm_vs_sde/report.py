"""ddpm-vs-sde: the sample-quality table, the forward-marginal tables, and their figures."""

from __future__ import annotations

import math

import torch

from mlbench.core.grid import arm_key
from mlbench.core.plotting import figure
from mlbench.core.verdict import mean, mean_ci
from mlbench.exps.ddpm_vs_sde import CHAIN_STEPS, SAMPLERS
from mlbench.exps.ddpm_vs_sde.sde import ddpm_alpha_bar, log_alpha, marginal_prob


def report(cfg, ctx, m: dict, marg: list, points: dict, losses: list) -> None:
    extra = ("sw2", "mode_std") if cfg.dataset == "8gaussians" else ("sw2",)
    rows = []
    grid = [(s, n, n // SAMPLERS[s], arm_key(s, nfe=n)) for s in cfg.samplers for n in sorted(cfg.nfe_grid)]
    for name, nfe, steps, key in grid + [("ode-rk45", mean(m["ode-rk45"]["nfe"]), "adaptive", "ode-rk45"),
                                         ("fresh data (floor)", "-", "-", "data-floor")]:
        ci = mean_ci(m[key]["mmd"])
        rows.append({"sampler": name, "nfe": nfe, "steps": steps, "mmd": ci.mean, "mmd_ci_low": ci.low,
                     "mmd_ci_high": ci.high, "mmd_over_floor": mean(m[key]["mmd_over_floor"]),
                     **{q: mean(m[key][q]) for q in extra}})
    ctx.table(rows, title=f"{cfg.dataset}: MMD of {cfg.n_eval} samples to fresh data vs network evaluations (mean, "
              f"95% CI over {len(ctx.seeds)} seeds; floor: fresh data vs data; sw2 = sliced W2"
              + ("; mode_std true value 0.1)" if cfg.dataset == "8gaussians" else ")"))
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
        a.plot([mean(m["ode-rk45"]["nfe"])], [mean(m["ode-rk45"][metric])], "k*", ms=12, label="ode-rk45")
        a.axhline(mean(m["data-floor"][metric]), color="grey", ls=":", label="fresh data (floor)")
        a.set(xscale="log", yscale="log", xlabel="network evaluations (NFE)", ylabel=metric,
              title=f"{metric} vs NFE ({len(ctx.seeds)} seeds, 95% CI)")
    ax[0][0].legend(fontsize=8)
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
    ax[0][0].set(xlim=(-3, 3), ylim=(-3, 3))
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
    ax[0][0].set(xlabel="t = i/N", title="forward marginals (N=1000)")
    ax[0][0].legend(fontsize=8)
    ax[0][1].loglog(cfg.marginal_steps, marg[0]["max_abs_err"], "o-")
    ax[0][1].set(xlabel="DDPM steps N", ylabel="max |ᾱ_i − α(i/N)²|", title="discretisation error, O(1/N)")
    for k in ctx.seeds:
        ax[0][2].plot([r[0] for r in losses], [r[1 + k] for r in losses], label=f"seed {k}")
    ax[0][2].set(yscale="log", xlabel="step", ylabel="ε-loss", title="training loss")
    ax[0][2].legend(fontsize=8)
    fig.tight_layout()
    ctx.plot("marginals", fig)
