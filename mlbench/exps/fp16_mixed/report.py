"""fp16-mixed: the training table, the underflow and lost-update census tables, and their figures."""

from __future__ import annotations

import math

from mlbench.core.plotting import curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.fp16_mixed import AMP_ARMS, SCALES, arm_specs
from mlbench.exps.fp16_mixed.census import HIST_HIGH, HIST_LOW

FP16_MAX = 65504.0  # smallest normal 2^-14, smallest subnormal 2^-24


def report(cfg, ctx, m: dict, res: dict) -> None:
    _training_table(cfg, ctx, m)
    _census_tables(ctx, res["census"])
    if cfg.amp_benchmark:
        _amp_table(cfg, ctx, m)
    _plot_underflow(ctx, res["census"], cfg.static_scale)
    _plot_training(ctx, res["curves"])


def _whole(cells: dict) -> dict:
    """Whole-number floats as ints (counts and loss scales print as 3, not 3.0)."""
    return {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in cells.items()}


def _training_table(cfg, ctx, m: dict) -> None:
    base, rows = m["fp32"], []
    for arm, (fmt, master, scaling) in arm_specs(cfg).items():
        r = m[arm]
        rows.append({"arm": arm, "storage": fmt or "float32", "fp32_master": master, "loss_scale": scaling,
                     **mean_ci_cells("test_acc", r["test_acc"]),
                     "acc_minus_fp32": mean(r["test_acc"]) - mean(base["test_acc"]),
                     **mean_ci_cells("train_loss", r["train_loss"], lower=0),
                     "loss_ratio_vs_fp32": math.exp(mean(r["log_train_loss"]) - mean(base["log_train_loss"])),
                     **_whole(mean_ci_cells("skipped_steps", r["skipped_steps"], lower=0)),
                     **_whole({"final_scale": mean(r["final_scale"])})})
    ctx.table(rows, title=f"Digits MLP 64-{'-'.join(map(str, cfg.hidden))}-10, SGD lr {cfg.lr:g} momentum "
              f"{cfg.momentum:g}, {cfg.steps} steps: test accuracy and final training loss (whole training set), "
              "mean and 95% CI over seeds; loss ratio = geometric mean over seeds of loss / fp32's; steps skipped "
              "on inf/NaN gradients; the loss scale at the end")


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
    ctx.table([{"precision": p, **mean_ci_cells("step_ms", r["step_ms"], lower=0),
                "speedup_vs_fp32": mean(ref["step_ms"]) / mean(r["step_ms"]),
                "peak_mib": mean(r["peak_mib"]), "memory_vs_fp32": mean(r["peak_mib"]) / mean(ref["peak_mib"]),
                "final_loss": mean(r["final_loss"])} for p in AMP_ARMS for r in [m[f"amp-{p}"]]],
              name="amp", title=f"GPU LM ({cfg.amp_layers} layers, d={cfg.amp_d_model}, B={cfg.amp_batch}, "
              f"T={cfg.amp_seq_len}, {cfg.amp_steps} steps): median step time, torch.cuda.max_memory_allocated; "
              "accelerate-*: the same LM through Accelerator(mixed_precision=...)")


def _plot_underflow(ctx, censuses: dict, static_scale: float) -> None:
    fig, ax = figure(1, 2, width=5.5)
    steps = sorted(censuses, key=int)
    hist_ax, share_ax = ax[0]
    for step in steps:
        hist = [mean(col) for col in zip(*[r["act_log2_hist"] for r in censuses[step]])]
        hist_ax.step(range(HIST_LOW, HIST_HIGH + 1), hist, where="post", label=f"step {step}")
    hist_ax.axvspan(HIST_LOW, -25, color="red", alpha=0.08, label="rounds to 0 in fp16")
    for x, text in ((-24, "smallest subnormal $2^{-24}$"), (-14, "smallest normal $2^{-14}$"),
                    (math.log2(FP16_MAX), "largest 65504")):
        hist_ax.axvline(x, color="grey", ls=":", lw=0.8)
        hist_ax.text(x, 0.98, text, rotation=90, va="top", ha="right", fontsize=7, transform=hist_ax.get_xaxis_transform())
    hist_ax.set(xlabel=f"activation gradient log2 |dL/dz|, fp32 arm (first bin: <= {HIST_LOW})",
                ylabel="share of non-zero values", title="Activation gradients against fp16's range")
    hist_ax.legend(fontsize=7, loc="center right")
    for name, label in zip(SCALES, ("1 (none)", f"static {static_scale:g}", "dynamic")):
        ys = [mean([r[f"act_zeroed@{name}"] for r in censuses[s]]) for s in steps]
        share_ax.plot([int(s) for s in steps], ys, "o-", label=f"loss scale {label}")
    share_ax.set(xlabel="training step", ylabel="share of non-zero dL/dz that is 0 in fp16",
                 title="Underflow grows as training converges")
    share_ax.legend(fontsize="small")
    ctx.plot("underflow", fig)


def _plot_training(ctx, c: dict) -> None:
    """Batch loss, test error (1 - accuracy, log scale: every point shows) and the loss scales."""
    fig, ax = figure(1, 3)
    loss_ax, err_ax, scale_ax = ax[0]
    curves(loss_ax, c["step"], c["train_loss"], xlabel="training step", ylabel="training loss (batches since the "
           "last evaluation)", title="Training loss (mean over seeds)", seeds=False)
    error = {arm: [[1.0 - a for a in row] for row in rows] for arm, rows in c["test_acc"].items()}
    curves(err_ax, c["step"], error, xlabel="training step", ylabel="test error (1 - accuracy)",
           title="Test error (mean over seeds)", seeds=False)
    curves(scale_ax, c["step"], {arm: c["scale"][arm] for arm in ("fp16-static", "fp16-dynamic")},
           xlabel="training step", ylabel="loss scale", title="Loss scale (dynamic: GradScaler's rule)")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for a in (loss_ax, err_ax, scale_ax):
        a.set_yscale("log")
    err_ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))  # a labelled tick at 0.02, 0.05, 0.1, ...
    err_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    err_ax.yaxis.set_minor_formatter(NullFormatter())
    err_ax.get_legend().remove()  # the same arms as the loss panel's legend
    ctx.plot("training", fig)
