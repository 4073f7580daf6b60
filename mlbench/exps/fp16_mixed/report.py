"""fp16-mixed: the training table, the underflow and lost-update census tables, and their figures."""

from __future__ import annotations

import math

from mlbench.core.plotting import figure
from mlbench.core.verdict import mean, mean_ci
from mlbench.exps.fp16_mixed import AMP_PRECISIONS, SCALES, arm_specs
from mlbench.exps.fp16_mixed.census import HIST_HIGH, HIST_LOW

FP16_MAX = 65504.0  # smallest normal 2^-14, smallest subnormal 2^-24


def report(cfg, ctx, m: dict, res: dict) -> None:
    _training_table(cfg, ctx, m)
    _census_tables(ctx, res["census"])
    if cfg.amp_benchmark:
        _amp_table(cfg, ctx, m)
    _plot_underflow(ctx, res["census"])
    _plot_training(ctx, res["curves"])


def _training_table(cfg, ctx, m: dict) -> None:
    base, rows = m["fp32"], []
    for arm, (fmt, master, scaling) in arm_specs(cfg).items():
        r, ci = m[arm], mean_ci(m[arm]["test_acc"])
        rows.append({"arm": arm, "storage": fmt or "float32", "fp32_master": master, "loss_scale": scaling,
                     "test_acc": ci.mean, "acc_ci_low": ci.low, "acc_ci_high": ci.high,
                     "acc_minus_fp32": ci.mean - mean(base["test_acc"]), "train_loss": mean(r["train_loss"]),
                     "loss_ratio_vs_fp32": math.exp(mean(r["log_train_loss"]) - mean(base["log_train_loss"])),
                     "skipped_steps": mean(r["skipped_steps"]), "final_scale": mean(r["final_scale"])})
    ctx.table(rows, title=f"Digits MLP 64-{'-'.join(map(str, cfg.hidden))}-10, SGD lr {cfg.lr:g} momentum "
              f"{cfg.momentum:g}, {cfg.steps} steps: test accuracy (mean, 95% CI over seeds), final training loss")


def _census_tables(ctx, censuses: dict) -> None:
    census_rows, update_rows = [], []
    for step, per_seed in sorted(censuses.items(), key=lambda kv: int(kv[0])):
        for name in SCALES:
            census_rows.append({"step": int(step), "loss_scale": name, **{
                f"{kind}_{what}": mean([r[f"{kind}_{what}@{name}"] for r in per_seed])
                for kind in ("act", "w") for what in ("zeroed", "mass_lost", "overflow")}})
        update_rows.append({"step": int(step), **{key: mean([r[key] for r in per_seed])
                                                  for key in ("below_2^-11", "lost_in_fp16", "pure_lost")}})
    ctx.table(census_rows, name="underflow", title="fp32 gradients of the fp32 arm against fp16: share of non-zero "
              "values that fp16(s·g) makes 0 (zeroed) or inf (overflow), and share of sum |g| zeroed (mass_lost); "
              "act = dL/dz, w = dL/dW")
    ctx.table(update_rows, name="lost_updates", title="Updates u = lr·v: share with |u| < 2^-11 |w| and share lost "
              "when added in fp16 (fp32 arm); share of weights the pure-fp16 arm left unchanged")


def _amp_table(cfg, ctx, m: dict) -> None:
    ref = m["amp-fp32"]
    ctx.table([{"precision": p, "step_ms": mean(r["step_ms"]), "speedup_vs_fp32": mean(ref["step_ms"]) / mean(r["step_ms"]),
                "peak_mib": mean(r["peak_mib"]), "memory_vs_fp32": mean(r["peak_mib"]) / mean(ref["peak_mib"]),
                "final_loss": mean(r["final_loss"])} for p in AMP_PRECISIONS for r in [m[f"amp-{p}"]]],
              name="amp", title=f"GPU LM ({cfg.amp_layers} layers, d={cfg.amp_d_model}, B={cfg.amp_batch}, "
              f"T={cfg.amp_seq_len}, {cfg.amp_steps} steps): median step time, torch.cuda.max_memory_allocated")


def _plot_underflow(ctx, censuses: dict) -> None:
    fig, ax = figure(1, 2)
    steps = sorted(censuses, key=int)
    for step in steps:
        hist = [mean(col) for col in zip(*[r["act_log2_hist"] for r in censuses[step]])]
        ax[0][0].step(range(HIST_LOW, HIST_HIGH + 1), hist, where="post", label=f"step {step}")
    for x, text in ((-24, "2^-24 subnormal"), (-14, "2^-14 normal"), (math.log2(FP16_MAX), "65504")):
        ax[0][0].axvline(x, color="grey", ls=":", lw=0.8)
        ax[0][0].text(x, ax[0][0].get_ylim()[1] * 0.95, text, rotation=90, va="top", fontsize=7)
    ax[0][0].axvspan(HIST_LOW, -25, color="red", alpha=0.08)
    ax[0][0].set(xlabel=f"log2 |dL/dz| (fp32 arm; <= {HIST_LOW} in the first bin)", ylabel="share of non-zero values",
                 title="activation gradients vs fp16 (red: round to 0)")
    ax[0][0].legend(fontsize=7)
    for name in SCALES:
        ys = [mean([r[f"act_zeroed@{name}"] for r in censuses[s]]) for s in steps]
        ax[0][1].plot([int(s) for s in steps], ys, "o-", label=f"loss scale {name}")
    ax[0][1].set(xlabel="step", ylabel="share zeroed in fp16", title="underflow grows as training converges")
    ax[0][1].legend()
    ctx.plot("underflow", fig)


def _plot_training(ctx, c: dict) -> None:
    fig, ax = figure(1, 3)
    for panel, key in ((0, "train_loss"), (1, "test_acc")):
        for arm, per_seed in c[key].items():
            ax[0][panel].plot(c["step"][1:], [mean(col) for col in zip(*per_seed)][1:], label=arm)
    ax[0][2].plot(c["step"], [mean(col) for col in zip(*c["scale"]["fp16-dynamic"])])
    ax[0][0].set(yscale="log", xlabel="step", ylabel="training loss (batches)", title="loss (mean over seeds)")
    ax[0][1].set(xlabel="step", ylabel="test accuracy", ylim=(0.9, 1.0), title="test accuracy")
    ax[0][2].set(yscale="log", xlabel="step", ylabel="loss scale", title="fp16-dynamic: loss scale (GradScaler rule)")
    ax[0][0].legend(fontsize=7)
    ctx.plot("training", fig)
