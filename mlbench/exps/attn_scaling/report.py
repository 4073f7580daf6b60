"""attn-scaling: the recall table, the init-statistics table, and their figures."""

from __future__ import annotations

import math

from mlbench.core.grid import arm_key
from mlbench.core.plotting import by_x, curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.attn_scaling import ARMS


def report(cfg, ctx, m: dict, trained: dict) -> None:
    rows = []
    for d in sorted(cfg.head_dims):
        base = mean(m[arm_key("scaled", d=d)]["steps_to_threshold"])
        for name in ARMS:
            r = m[arm_key(name, d=d)]
            steps = mean_ci_cells("steps", r["steps_to_threshold"], lower=0)
            rows.append({"d": d, "arm": name, "H0": mean(r["H0"]), **steps,
                         "reached": f"{int(sum(r['reached']))}/{len(r['reached'])}",
                         "diverged": sum(not math.isnan(x) for x in r["diverged_at"]),
                         "slowdown": steps["steps"] / base, "acc_end": mean(r["final_acc"])})
    ctx.table(rows, title=f"Associative recall: steps to {cfg.threshold:.0%} held-out accuracy (mean, 95% CI "
              f"over seeds; a model that never got there counts as {cfg.steps + cfg.eval_every}, a lower bound), initial attention entropy H0 (nats), slowdown = steps / scaled steps, acc_end = "
              f"held-out accuracy when training stopped (all models past the threshold, or the step budget); "
              f"init '{cfg.init}', {cfg.optimizer} lr {cfg.lr:g}")
    stats_rows = []
    for d in sorted(cfg.stats_dims):
        for name in ("scaled", "unscaled"):
            r = m[arm_key(f"{name}-init", d=d)]
            stats_rows.append({"d": d, "logits": name, "logit_var": mean(r["logit_var"]),
                               "entropy": mean(r["entropy"]), "max_prob": mean(r["max_prob"]),
                               "jacobian_fro": mean(r["jacobian_norm"])})
    ctx.table(stats_rows, name="init", title=f"Softmax at init, q,k ~ N(0, I_d), {cfg.stats_keys} keys "
              f"(max entropy ln {cfg.stats_keys} = {math.log(cfg.stats_keys):.2f})")
    _plot_init(cfg, ctx, m)
    _plot_training(cfg, ctx, m, trained)


def _plot_init(cfg, ctx, m: dict) -> None:
    fig, ax = figure(1, 2)
    dims = sorted(cfg.stats_dims)
    for a, metric, label in ((ax[0][0], "entropy", "softmax entropy at init (nats)"),
                             (ax[0][1], "jacobian_norm", "softmax Jacobian ‖diag(p) − ppᵀ‖_F at init")):
        by_x(a, dims, {name: [m[arm_key(f"{name}-init", d=d)][metric] for d in dims] for name in ("scaled", "unscaled")},
             xlabel="head dimension d", ylabel=label)
        a.set_xscale("log", base=2)
    ax[0][0].axhline(math.log(cfg.stats_keys), color="grey", lw=0.8, ls=":", label="maximum (uniform)")
    ax[0][0].legend(fontsize="small")
    fig.suptitle("Unscaled logits saturate the softmax as d grows")
    ctx.plot("init_statistics", fig)


def _plot_training(cfg, ctx, m: dict, trained: dict) -> None:
    fig, ax = figure(1, 2)
    d_hi, dims = max(cfg.head_dims), sorted(cfg.head_dims)
    res = trained[d_hi]
    curves(ax[0][0], res["curve_steps"], res["curve_acc"], xlabel="training step", ylabel="held-out accuracy",
           title=f"associative recall, d={d_hi} (thin lines: seeds)")
    ax[0][0].axhline(cfg.threshold, color="grey", lw=0.8, ls=":")
    ratios = {}
    for name in ("unscaled", "t5-init"):
        per_d = [[u / s for u, s in zip(m[arm_key(name, d=d)]["steps_to_threshold"],
                                          m[arm_key("scaled", d=d)]["steps_to_threshold"])] for d in dims]
        if any(math.isfinite(r) for rs in per_d for r in rs):  # every model diverged: nothing to show
            ratios[f"{name} / scaled"] = [[r for r in rs if math.isfinite(r)] for rs in per_d]
    by_x(ax[0][1], dims, ratios, xlabel="head dimension d", ylabel=f"steps to {cfg.threshold:.0%}, ratio to scaled",
         title="slowdown vs d (dots: seeds)")
    ax[0][1].axhline(1.0, color="grey", lw=0.8, ls=":")
    ax[0][1].set_xscale("log", base=2)
    ctx.plot("training", fig)
