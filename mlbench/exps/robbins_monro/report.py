"""robbins-monro: the error table (measured beside closed form and exact finite-K value), the
MSE-against-k table, and their figures."""

from __future__ import annotations

import math

from mlbench.core.plotting import by_x, curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.robbins_monro import HEADLINE, ROOT_SLOPE, root_arms, schedules
from mlbench.exps.robbins_monro.theory import Schedule, exact_mse, prediction


def arm_plans(cfg) -> dict[str, tuple[str, Schedule, float, float]]:
    """arm -> (problem, steps, σ², M′): what every row and line of the report is drawn from."""
    plans = {arm: ("mean estimation", s, cfg.noise_std ** 2, 1.0) for arm, s in schedules(cfg).items()}
    plans.update({arm: ("root finding", Schedule(a, 1.0), cfg.root_noise_std ** 2, ROOT_SLOPE)
                  for arm, a in root_arms(cfg).items()})
    return plans


def label(s: Schedule) -> str:
    """A line's legend: "aₖ = 0.75/k", "average of iterates, aₖ = k^-0.6"."""
    core = f"aₖ = {s._replace(averaged=False).text()}"
    return f"average of iterates, {core}" if s.averaged else core


def report(cfg, ctx, m: dict, units: dict) -> None:
    plans, K, e1 = arm_plans(cfg), cfg.steps, cfg.start - cfg.mean
    rows = []
    for arm, (problem, s, s2, slope) in plans.items():
        quantity, metric, predicted = prediction(s, s2, K, e1, slope)
        exact = exact_mse(s, K, s2, e1)[K] * {"mse": 1, "k_mse": K, "scaled_mse": K ** s.rate()}[metric] \
            if problem == "mean estimation" else math.nan  # no closed-form second moment for a nonlinear g
        rows.append({"arm": arm, "problem": problem, "step": s.text(), "sum_a_infinite": s.sums_diverge(),
                     "sum_a2_finite": s.squares_converge(), "quantity": quantity, "predicted": predicted,
                     "exact_at_K": exact, **mean_ci_cells("measured", m[arm][metric], lower=0),
                     **mean_ci_cells("slope", m[arm]["slope"]), "predicted_slope": -s.rate(slope) or 0.0,
                     "mse_rel_se": mean(m[arm]["mse_rel_se"])})
    ctx.table(rows, title=f"Error after K = {K} observations, {cfg.replicates} replicates per seed: measured (mean, "
              f"95% CI over {len(ctx.seeds)} seeds) beside the asymptotic closed form and the exact finite-K value of "
              f"the second-moment recursion; slope of log MSE on log k over [{cfg.fit_from}, {K}]; mse_rel_se: the "
              f"replicates' relative standard error of one seed's MSE; {cfg.noise} noise")
    series = {**units["mean-estimation"]["mse"], **units["root-finding"]["mse"]}
    ks = units["mean-estimation"]["ks"]
    ctx.table([{"k": k, **{arm: mean([row[i] for row in series[arm]]) for arm in plans}} for i, k in enumerate(ks)],
              name="curve", title="MSE after k observations (mean over seeds), every arm")
    _plot_curves(cfg, ctx, plans, ks, series)
    _plot_constants(cfg, ctx, plans, ks, series, m)


def _closed_form(s: Schedule, s2: float, slope: float, ks: list[int], K: int, e1: float) -> list[float] | None:
    """The asymptotic MSE against k where it is a power law (None where it is not: a ≤ ½)."""
    _, metric, value = prediction(s, s2, K, e1, slope)
    if not math.isfinite(value) or (s.gamma == 1 and not s.averaged and s.c * slope <= 0.5):
        return None
    return [value * (1 if metric == "mse" else k ** -(1.0 if metric == "k_mse" else s.gamma)) for k in ks]


def _panel(ax, cfg, plans, ks, series, arms, title: str) -> None:
    for arm in arms:
        _, s, s2, slope = plans[arm]
        curves(ax, ks, {label(s): series[arm]}, xlabel="observations k", ylabel="mean-square error",
               title=title)
        pred = _closed_form(s, s2, slope, ks, cfg.steps, cfg.start - cfg.mean)
        if pred is not None:
            ax.plot(ks, pred, ls="--", lw=0.9, color=ax.lines[-1].get_color())
    ax.set(xscale="log", yscale="log")
    ax.legend(fontsize="x-small")


def _plot_curves(cfg, ctx, plans, ks, series) -> None:
    fig, ax = figure(2, 2, width=5.6, height=4.2)
    groups = {"rates": [HEADLINE] + [a for a in plans if a.startswith(("power", "averaged"))],
              "conditions": [HEADLINE, *(a for a in plans if a.startswith(("constant", "inverse")))],
              "steps a/k": [a for a in plans if a.startswith("a-over-k")],
              "roots": [a for a in plans if plans[a][0] == "root finding"]}
    titles = {"rates": "step exponent sets the rate; averaging restores 1/k",
              "conditions": "Σa² = ∞ (constant) plateaus, Σa < ∞ (1/k²) stalls",
              "steps a/k": "aₖ = a/k: constant a²σ²/(2a − 1), a ≤ ½ slower",
              "roots": "root of θ + 2 sin θ (M′ = 3)"}
    for (name, arms), axis in zip(groups.items(), (ax[0][0], ax[0][1], ax[1][0], ax[1][1])):
        _panel(axis, cfg, plans, ks, series, arms, titles[name])
    fig.suptitle("MSE against k (thin: seeds; dashed: asymptotic closed form)")
    fig.tight_layout()
    ctx.plot("mse_vs_k", fig)


def _plot_constants(cfg, ctx, plans, ks, series, m) -> None:
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    fig, ax = figure(1, 2, width=5.6, height=4.2)
    left, right = ax[0][0], ax[0][1]
    linear = [a for a in plans if a.startswith("a-over-k")]
    consts, s2 = [plans[a][1].c for a in linear], cfg.noise_std ** 2
    by_x(left, consts, {"measured (dots: seeds)": [m[a]["k_mse"] for a in linear]}, style="o",
         xlabel="step constant a (aₖ = a/k)", ylabel=f"K·MSE at K = {cfg.steps}",
         title="asymptotic variance a²σ²/(2a − 1), least at a = 1/M′")
    hi = max(max(consts), 1.0)
    grid = [0.5 * (2 * hi) ** (i / 200) for i in range(1, 201)]  # a in (½, max a], log-spaced
    left.plot(grid, [a * a * s2 / (2 * a - 1) for a in grid], "--", color="grey", lw=0.9, label="a²σ²/(2a − 1)")
    left.axvline(0.5, color="grey", lw=0.6, ls=":", label="a = ½: slower than 1/k below")
    left.set(xscale="log", yscale="log")
    left.set_xticks(consts, [f"{a:g}" for a in consts])
    left.xaxis.set_minor_formatter(NullFormatter())
    left.legend(fontsize="small")
    shown = [HEADLINE, *(a for a in plans if a.startswith("averaged")), *(a for a in linear if plans[a][1].c > 0.5)]
    raw = [a for a in plans if a.startswith("power")][-1:]
    for arm in shown + raw:
        _, s, s2_arm, slope = plans[arm]
        curves(right, ks, {label(s): [[k * v for k, v in zip(ks, row)] for row in series[arm]]},
               xlabel="observations k", ylabel="k · MSE", title="k·MSE: flat at its constant for the 1/k rate")
        _, metric, value = prediction(s, s2_arm, cfg.steps, cfg.start - cfg.mean, slope)
        if metric == "k_mse":
            right.axhline(value, ls="--", lw=0.8, color=right.lines[-1].get_color())
    right.set(xscale="log", yscale="log")
    right.yaxis.set_major_locator(LogLocator(base=2))
    right.yaxis.set_major_formatter(ScalarFormatter())
    right.yaxis.set_minor_formatter(NullFormatter())
    right.legend(fontsize="x-small")
    fig.tight_layout()
    ctx.plot("step_constant", fig)
