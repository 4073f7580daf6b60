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
              f"largest InfoNCE batch minus log N over every batch is {worst:.4g} (never above 0)")
    _plot(cfg, ctx, m, trained)


def _per_seed(m: dict, est: str, n: int, mis) -> list[list[float]]:
    return [m[key(est, n, mi)]["estimate"] for mi in mis]


def _plot(cfg, ctx, m: dict, trained: dict) -> None:
    fig, ax = figure(1, 3, width=4.8, height=3.9)
    ns, (tl, ol) = sorted(cfg.batch_sizes), levels(cfg)
    colours = {n: f"C{i}" for i, n in enumerate(ns)}
    left, mid, right = ax[0]
    for n in ns:
        for est, mis in [(o, tl) for o in cfg.objectives] + [("oracle", ol)]:
            vals = _per_seed(m, est, n, mis)
            left.plot(mis, [mean(v) for v in vals], STYLE[est], color=colours[n], ms=4, label=f"{LABEL[est]}, N={n}")
            for mi, v in zip(mis, vals):
                left.scatter([mi] * len(v), v, s=8, color=colours[n], alpha=0.5)
        left.axhline(math.log(n), color=colours[n], lw=0.8, ls=":")
        left.annotate(f"log {n} = {math.log(n):.2f}", (0.02, math.log(n)), xycoords=("axes fraction", "data"),
                      va="bottom", fontsize="x-small", color=colours[n])
    top = max(max(tl), max(ol))
    left.plot([0, top], [0, top], color="grey", lw=0.8, label="estimate = truth")
    left.set(xlabel="true mutual information I (nats)", ylabel="estimated I (nats)",
             title="InfoNCE saturates at log N")
    left.legend(fontsize="xx-small", loc="upper left", bbox_to_anchor=(0.0, 0.93))
    _ceiling(cfg, mid, m, ns, colours)
    _curves(cfg, right, trained, ns, tl, colours)
    ctx.plot("estimates", fig)


def _ceiling(cfg, ax, m: dict, ns: list, colours: dict) -> None:
    """Î at the largest I against ln N, beside the ceiling log N itself."""
    top = levels(cfg)[0][-1]
    xs = [math.log(n) for n in ns]
    ax.plot(xs, xs, color="grey", lw=0.8, label="log N (the ceiling)")
    for est in ("infonce", "oracle") + tuple(o for o in cfg.objectives if o != "infonce"):
        vals = [m[key(est, n, top)]["estimate"] for n in ns]
        ax.plot(xs, [mean(v) for v in vals], STYLE[est], color="k" if est == "infonce" else None, ms=4,
                label=LABEL[est])
        for x, v, n in zip(xs, vals, ns):
            ax.scatter([x] * len(v), v, s=8, color=colours[n], alpha=0.6, zorder=3)
    ax.set(xlabel="ln N (batch size N)", ylabel=f"estimated I at true I = {top:g} nats (nats)",
           title="the ceiling moves with the batch")
    ax.set_xticks(xs, [f"ln {n}" for n in ns])
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
