"""preln-vs-postln: the gradient tables (per depth, the fitted slopes, the per-layer profile), the
warm-up table, and their figures."""

from __future__ import annotations

import math

from mlbench.core.plotting import by_x, curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.preln_vs_postln import (GAP_MIN, PLACEMENTS, POST_SLOPE_MIN, PRE_SLOPE_BAND, key, slopes_key,
                                          train_key)

NAMES = {"post": "Post-LN", "pre": "Pre-LN"}


def setup_text(cfg) -> str:
    embed = "N(0, 1/d)" if cfg.embed == "inv-sqrt-d" else "N(0, 1)"
    control = "; negative control: the Post-LN arm built Pre-LN" if cfg.negative_control else ""
    return (f"causal LM on uniform random tokens, vocab {cfg.vocab}, T = {cfg.seq_len}, batch {cfg.batch_size}, "
            f"{cfg.n_heads} heads, d_ff = {cfg.ffn_mult}d, token embedding {embed}, dropout 0{control}")


def report(cfg, ctx, m: dict, profiles: dict, trained: dict | None) -> None:
    rows = []
    for d in sorted(cfg.d_models):
        for init in cfg.inits:
            for p in PLACEMENTS:
                for L in sorted(cfg.depths):
                    r = m[key(p, d, L, init)]
                    rows.append({"d": d, "init": init, "placement": p, "L": L, **mean_ci_cells("grad_last", r["grad_last"]),
                                 "grad_first": mean(r["grad_first"]), **mean_ci_cells("last_first", r["last_first"]),
                                 "loss_init": mean(r["loss_init"])})
    ctx.table(rows, title=f"Gradient of the FFN weight W² at init: grad_last = ‖∂ℓ/∂W²_L‖_F of the last layer, "
              f"grad_first = that of the first, last_first = their ratio (mean and 95% CI over {len(ctx.seeds)} seeds), "
              f"loss_init = the loss (ln {cfg.vocab} = {math.log(cfg.vocab):.3f}); {setup_text(cfg)}")
    _slopes_table(cfg, ctx, m)
    _profile_table(cfg, ctx, profiles)
    if trained is not None:
        _warmup_table(cfg, ctx, m)
    _plot_depth(cfg, ctx, m)
    _plot_profile(cfg, ctx, profiles)
    if trained is not None:
        _plot_warmup(cfg, ctx, trained)


def _slopes_table(cfg, ctx, m: dict) -> None:
    rules = (("pre_slope", "Pre-LN: slope of ln g_L on ln L", -0.5, f"CI in [{PRE_SLOPE_BAND[0]:g}, {PRE_SLOPE_BAND[1]:g}]"),
             ("post_slope", "Post-LN: slope of ln g_L on ln L", 0.0, f"CI above {POST_SLOPE_MIN:g}"),
             ("slope_gap", "paired gap: slope of ln(g_post / g_pre)", 0.5, f"CI above {GAP_MIN:g}"),
             ("post_ratio_slope", "Post-LN: slope of ln(last / first) on ln L", "> 0 (Fig. 3)", "CI above 0"),
             ("pre_ratio_slope", "Pre-LN: slope of ln(last / first) on ln L", "0 (flat, Fig. 3)", "none (reported)"))
    rows = [{"d": d, "init": init, "quantity": text, **mean_ci_cells("ours", m[slopes_key(d, init)][metric]),
             "theory": theory, "rule": rule}
            for d in sorted(cfg.d_models) for init in cfg.inits for metric, text, theory, rule in rules]
    ctx.table(rows, name="slopes", title="Depth slopes fitted per seed over L = "
              f"{', '.join(map(str, sorted(cfg.depths)))} (mean and 95% CI over seeds) beside Theorem 1 (Xavier init: "
              "Pre-LN O(d·√(ln d / L)), Post-LN O(d·√(ln d))) and Fig. 3; the rule is the claim's")


def _profile_table(cfg, ctx, profiles: dict) -> None:
    d, L = max(cfg.d_models), max(cfg.depths)
    cols = {f"{p}_{init}": profiles[key(p, d, L, init)] for init in cfg.inits for p in PLACEMENTS}
    rows = [{"layer": l + 1, **{c: mean([seed[l] for seed in per_seed]) for c, per_seed in cols.items()}} for l in range(L)]
    ctx.table(rows, name="profile", title=f"Fig. 3 as a table: ‖∂ℓ/∂W²_l‖_F at init for every layer l of the "
              f"L = {L}, d = {d} models (mean over seeds), by placement and init")


def _warmup_table(cfg, ctx, m: dict) -> None:
    rows = []
    for lr in sorted(cfg.train_lrs):
        for w in (0, cfg.warmup_steps):
            for p in PLACEMENTS:
                r = m[train_key(p, w, lr)]
                rows.append({"lr": lr, "warmup_steps": w, "placement": p, **mean_ci_cells("final_loss", r["final_loss"]),
                             "diverged": int(sum(r["final_loss.censored"]))})
    ctx.table(rows, name="warmup", title=f"Warm-up study: held-out next-character loss (nats, mean and 95% CI over "
              f"seeds) after {cfg.train_steps} Adam steps, {cfg.train_layers} layers, d = {cfg.train_d_model}; a diverged "
              "model counts at ln(alphabet), a lower bound")


def _plot_depth(cfg, ctx, m: dict) -> None:
    d, depths = max(cfg.d_models), sorted(cfg.depths)
    fig, ax = figure(1, len(cfg.inits), sharey=True)
    for a, init in zip(ax[0], cfg.inits):
        by_x(a, depths, {NAMES[p]: [m[key(p, d, L, init)]["grad_last"] for L in depths] for p in PLACEMENTS},
             xlabel="layers L", ylabel="last layer's ‖∂loss/∂W²‖ at init", title=f"{init} init, d = {d} (dots: seeds)")
        for p, power, style in (("post", 0.0, ":"), ("pre", -0.5, "--")):
            start = mean(m[key(p, d, depths[0], init)]["grad_last"])
            a.plot(depths, [start * (L / depths[0]) ** power for L in depths], style, color="grey", lw=0.8,
                   label=f"L^{power:g} from {NAMES[p]}'s first point")
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.set_xticks(depths, [str(L) for L in depths])
        a.legend(fontsize="small")
    fig.suptitle("Theorem 1: the last layer's gradient against depth (log-log)", y=1.02)
    ctx.plot("depth_scaling", fig)


def _plot_profile(cfg, ctx, profiles: dict) -> None:
    d, L = max(cfg.d_models), max(cfg.depths)
    fig, ax = figure(1, len(cfg.inits), sharey=True)
    for a, init in zip(ax[0], cfg.inits):
        curves(a, list(range(1, L + 1)), {NAMES[p]: profiles[key(p, d, L, init)] for p in PLACEMENTS},
               xlabel="layer index l", ylabel="‖∂loss/∂W²_l‖ at init",
               title=f"{init} init, L = {L}, d = {d} (thin: seeds)")
        a.set_yscale("log")
    fig.suptitle("Fig. 3: the FFN gradient across the layers at initialisation", y=1.02)
    ctx.plot("layer_profile", fig)


def _plot_warmup(cfg, ctx, trained: dict) -> None:
    lrs = sorted(cfg.train_lrs)
    fig, ax = figure(1, len(lrs), sharey=True)
    for a, lr in zip(ax[0], lrs):
        arms = {f"{NAMES[p]}, warm-up {w}": trained["curves"][train_key(p, w, lr)]
                for w in (0, cfg.warmup_steps) for p in PLACEMENTS}
        curves(a, trained["curve_steps"], arms, xlabel="training step", ylabel="held-out loss (nats/char)",
               title=f"peak lr {lr:g} (thin: seeds)")
    fig.suptitle("Training with and without warm-up", y=1.02)
    ctx.plot("warmup", fig)
