"""infonce-log-n-bound: the estimate-vs-truth table per batch size, and its figures."""

from __future__ import annotations

import math

from mlbench.core.plotting import figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.infonce_log_n_bound import key, levels, oracle_specs, trained_specs

STYLE = {"infonce": "o-", "oracle": "s--", "nwj": "^:", "smile": "v-."}
LABEL = {"infonce": "InfoNCE, trained critic", "oracle": "InfoNCE, optimal critic (closed form)",
         "nwj": "NWJ, trained critic", "smile": "SMILE, trained critic"}
SHADE = {"infonce": "k", "oracle": "C7", "nwj": "C2", "smile": "C3"}  # the ceiling panel colours by estimator


def report(cfg, ctx, m: dict, trained: dict) -> None:
    rows = []
    for est, n, mi in trained_specs(cfg) + oracle_specs(cfg):
        r = m[key(est, n, mi)]
        rows.append({"estimator": est, "N": n, "true_mi": mi, "log_n": math.log(n),
                     **mean_ci_cells("estimate", r["estimate"]),
                     "below_log_n": math.log(n) - mean(r["estimate"]), "below_truth": mi - mean(r["estimate"]),
                     "batch_std": mean(r["batch_std"]), "batch_max": max(r["batch_max"])})
    nce = [row for row in rows if row["estimator"] in ("infonce", "oracle")]
    worst = max(row["batch_max"] - row["log_n"] for row in nce)
    ctx.table(rows, title=f"Mutual-information estimates (nats) on {cfg.dim}-d correlated Gaussians, true I given: "
              f"mean and 95% CI over seeds of each critic's mean over fresh evaluation batches "
              f"({cfg.eval_batches} draws of {max(cfg.batch_sizes)} pairs for trained critics, {cfg.oracle_batches} "
              f"for the optimal one; each draw is max(N)/N batches of N). batch_std: spread of single-batch "
              f"estimates; batch_max: largest single batch over all seeds. Per-batch identity Î <= log N: the "
              f"largest InfoNCE batch minus log N over every batch is {worst:.4g} (the identity says <= 0)")
    _plot(cfg, ctx, m, trained)


def _per_seed(m: dict, est: str, n: int, mis) -> list[list[float]]:
    return [m[key(est, n, mi)]["estimate"] for mi in mis]


def _estimators(cfg) -> list[str]:
    return list(cfg.objectives) + ["oracle"]


def _plot(cfg, ctx, m: dict, trained: dict) -> None:
    from matplotlib.lines import Line2D

    fig, ax = figure(1, 3, width=4.8, height=3.9)
    ns, (tl, ol) = sorted(cfg.batch_sizes), levels(cfg)
    colours = {n: f"C{i}" for i, n in enumerate(ns)}
    left, mid, right = ax[0]
    for n in ns:
        for est in _estimators(cfg):
            mis = ol if est == "oracle" else tl
            vals = _per_seed(m, est, n, mis)
            left.plot(mis, [mean(v) for v in vals], STYLE[est], color=colours[n], ms=4)
            for mi, v in zip(mis, vals):
                left.scatter([mi] * len(v), v, s=8, color=colours[n], alpha=0.5)
        left.axhline(math.log(n), color=colours[n], lw=0.8, ls=":")
        left.annotate(f"log {n} = {math.log(n):.2f}", (0.98, math.log(n)), xycoords=("axes fraction", "data"),
                      ha="right", va="bottom", fontsize="x-small", color=colours[n])
    top = max(max(tl), max(ol))
    left.plot([0, top], [0, top], color="grey", lw=0.8)
    handles = ([Line2D([], [], color="k", marker=STYLE[e][0], ls=STYLE[e][1:], ms=4, label=LABEL[e])
                for e in _estimators(cfg)] + [Line2D([], [], color="grey", lw=0.8, label="estimate = truth")]
               + [Line2D([], [], color=colours[n], lw=3, label=f"N = {n}") for n in ns])
    left.legend(handles=handles, fontsize="xx-small", loc="upper left")
    left.set(xlabel="true mutual information I (nats)", ylabel="estimated I (nats)",
             title="InfoNCE saturates at log N (dotted)")
    _ceiling(cfg, mid, m, ns)
    _curves(cfg, right, trained, ns, tl, colours)
    ctx.plot("estimates", fig)


def _ceiling(cfg, ax, m: dict, ns: list) -> None:
    """Î at the largest I against ln N, beside the ceiling log N itself."""
    top = levels(cfg)[0][-1]
    xs = [math.log(n) for n in ns]
    ax.plot(xs, xs, color="grey", lw=0.8, label="log N (the ceiling)")
    for est in _estimators(cfg):
        vals = [m[key(est, n, top)]["estimate"] for n in ns]
        ax.plot(xs, [mean(v) for v in vals], STYLE[est], color=SHADE[est], ms=4, label=LABEL[est])
        for x, v in zip(xs, vals):
            ax.scatter([x] * len(v), v, s=8, color=SHADE[est], alpha=0.5, zorder=3)
    ax.set(xlabel="batch size N (log scale)", ylabel=f"estimated I at true I = {top:g} nats (nats)",
           title="the ceiling moves with the batch")
    ax.set_xticks(xs, [str(n) for n in ns])
    ax.legend(fontsize="xx-small")


def _curves(cfg, ax, trained: dict, ns: list, mis, colours: dict) -> None:
    """InfoNCE on the fixed held-out draw during training, one line per (N, I), seeds thin."""
    steps = trained["curve_steps"]
    for n in ns:
        for mi, alpha in zip(mis, [0.35 + 0.65 * (i + 1) / len(mis) for i in range(len(mis))]):
            rows = trained["curve"][key("infonce", n, mi)]
            mean_curve = [sum(c) / len(c) for c in zip(*rows)]
            ax.plot(steps, mean_curve, color=colours[n], alpha=alpha, label=f"N={n}, I={mi:g}")
            for row in rows:
                ax.plot(steps, row, color=colours[n], lw=0.4, alpha=0.3)
        ax.axhline(math.log(n), color=colours[n], lw=0.8, ls=":")
    ax.set(xlabel="training step", ylabel="InfoNCE estimate on a held-out draw (nats)",
           title="training (thin lines: seeds; dotted: log N)")
    ax.legend(fontsize="xx-small", ncol=2)
