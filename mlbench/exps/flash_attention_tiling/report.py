"""flash-attention-tiling: the memory table (table.csv), exactness and slope tables, and the figures
a reader of the paper expects: memory vs n on log-log axes with the savings beside the README's,
and the error of every form against float64. The full profile adds the timed speed table."""

from __future__ import annotations

import math

from mlbench.core.grid import arm_key
from mlbench.core.plotting import by_x, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean, mean_ci, slope
from mlbench.exps.flash_attention_tiling import (EXACT_FORMS, MEMORY_FORMS, NAIVE_SLOPE, TILED_SLOPE_MAX, lengths,
                                                 scales, tile_text)

README_SAVINGS = {2048: 10.0, 4096: 20.0}  # forward + backward, A100
LABELS = {"naive": "plain (S and P materialised)", "tiled": "tiled, online softmax", "fused": "torch fused kernel",
          "no-rescale": "tiled, no rescaling", "no-max": "tiled, no max subtraction"}
MIB = 2 ** 20


def report(cfg, ctx, m: dict) -> None:
    _memory(cfg, ctx, m)
    _exactness(cfg, ctx, m)
    _slopes(cfg, ctx, m)
    if cfg.speed:
        from mlbench.exps.flash_attention_tiling.speed_report import speed_report

        speed_report(cfg, ctx, m)


def _memory(cfg, ctx, m: dict) -> None:
    rows = []
    for n in lengths(cfg):
        peak = {f: m[arm_key(f, n=n)]["peak_bytes"] for f in MEMORY_FORMS}
        rows.append({"n": n, **{f"{f}_bytes": int(mean(v)) for f, v in peak.items()},
                     "savings": mean(m[arm_key("savings", n=n)]["ratio"]), "readme_savings": README_SAVINGS.get(n, ""),
                     "two_score_matrices_bytes": 2 * n * n * 4,
                     "same_on_every_seed": all(len(set(v)) == 1 for v in peak.values())})
    ctx.table(rows, title=f"Peak extra memory of one forward pass (one head, d={cfg.head_dim}, fp32, {tile_text(cfg)}): "
              "live bytes from torch's CPU allocator during the call, outputs included, inputs excluded (measured; "
              "two_score_matrices_bytes = 2·n²·4 is the count of S and P for comparison); savings = naive / tiled; "
              "readme_savings: the README's figure (forward + backward on an A100)")
    fig, ax = figure(1, 2)
    ns = lengths(cfg)
    by_x(ax[0][0], ns, {LABELS[f]: [[b / MIB for b in m[arm_key(f, n=n)]["peak_bytes"]] for n in ns]
                        for f in MEMORY_FORMS}, xlabel="sequence length n", ylabel="peak extra memory, MiB (measured)",
         title="extra memory of one attention call")
    ax[0][0].plot(ns, [2 * n * n * 4 / MIB for n in ns], ":", color="black", lw=1.5, zorder=3,
                  label="2·n²·4 bytes (S and P), computed")
    ax[0][0].legend(fontsize="small")
    by_x(ax[0][1], ns, {"ours: plain / tiled, forward, CPU": [m[arm_key("savings", n=n)]["ratio"] for n in ns]},
         xlabel="sequence length n", ylabel="memory savings, ×", title="memory savings: plain / tiled")
    ax[0][1].plot(list(README_SAVINGS), list(README_SAVINGS.values()), "s", color="C3",
                  label="README: forward + backward, A100")
    ax[0][1].legend(fontsize="small")
    for a in ax[0]:
        a.set_xscale("log", base=2)
        a.set_yscale("log")
    if cfg.negative_control:
        fig.suptitle("negative control: one tile covers the whole score matrix", y=1.03)
    ctx.plot("memory", fig)


def _worst(values: list[float]) -> float:
    return math.nan if any(math.isnan(v) for v in values) else max(values)


def _exactness(cfg, ctx, m: dict) -> None:
    rows = []
    for n in lengths(cfg):
        for s in scales(cfg):
            r = {f: m[arm_key(f, n=n, scale=s)] for f in EXACT_FORMS}
            rows.append({"n": n, "logit_scale": s, **{f"{f}_err": _worst(r[f]["max_abs_err"]) for f in EXACT_FORMS},
                         **{f"{f}_rule": _worst(r[f]["rule_ratio"]) for f in ("tiled", "fused", "no-max")}})
    ctx.table(rows, name="exactness", title=f"Max |O − O_float64| of each form, worst seed (NaN: non-finite output); "
              "*_rule = err / (2·err_naive + 2·fp32 rounding of O_float64): ≤ 1 passes the FlashAttention tests' 2× "
              f"rule; d={cfg.head_dim}, τ = logit_scale/√d, {tile_text(cfg)}")
    _exactness_plot(cfg, ctx, m)


def _exactness_plot(cfg, ctx, m: dict) -> None:
    """Row 1: each form's max error vs n, per logit scale; row 2: the 2× rule's ratio (≤ 1 passes)."""
    ns, ss = lengths(cfg), scales(cfg)
    fig, ax = figure(2, len(ss), width=4.6, height=3.4)
    for col, s in enumerate(ss):
        err, rule = ax[0][col], ax[1][col]
        by_x(err, ns, {LABELS[f]: [m[arm_key(f, n=n, scale=s)]["max_abs_err"] for n in ns] for f in EXACT_FORMS},
             xlabel="sequence length n", ylabel="max |error| vs float64" if col == 0 else "",
             title=f"logit scale {s:g}")
        by_x(rule, ns, {LABELS[f]: [m[arm_key(f, n=n, scale=s)]["rule_ratio"] for n in ns] for f in EXACT_FORMS},
             xlabel="sequence length n", ylabel="error / (2 × plain fp32 error)" if col == 0 else "")
        rule.axhline(1.0, color="black", ls="--", lw=1, label="the 2× rule: pass below")
        nonfinite = [n for n in ns if any(math.isnan(x) for x in m[arm_key("no-max", n=n, scale=s)]["max_abs_err"])]
        if nonfinite:
            err.text(0.03, 0.5, f"no max subtraction:\nnon-finite output at n = {nonfinite[0]}..{nonfinite[-1]}",
                     transform=err.transAxes, fontsize="x-small", color="C3", va="center")
        for a in (err, rule):
            a.set_xscale("log", base=2)
            a.set_yscale("log")
            if a.get_legend() is not None:
                a.get_legend().remove()
    handles, labels = ax[1][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize="small", bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("error of each form against float64 (top) and the FlashAttention tests' 2× rule (bottom)", y=1.0)
    ctx.plot("exactness", fig)


def _slopes(cfg, ctx, m: dict) -> None:
    ns = lengths(cfg)
    xs = [math.log(n) for n in ns]
    bounds = {"naive": f"[{NAIVE_SLOPE[0]:g}, {NAIVE_SLOPE[1]:g}]", "tiled": f"≤ {TILED_SLOPE_MAX:g}", "fused": ""}
    rows = []
    for f in MEMORY_FORMS:
        per_seed = [slope(xs, [m[arm_key(f, n=n)]["log_peak_bytes"][k] for n in ns])
                    for k in range(len(m[arm_key(f, n=ns[0])]["log_peak_bytes"]))]
        iv = mean_ci(per_seed)
        rows.append({"form": f, "range": f"{ns[0]}..{ns[-1]}", **mean_ci_cells("slope", per_seed), "claim": bounds[f],
                     "tiles": tile_text(cfg) if f == "tiled" else "", "seeds": iv.n})
    ctx.table(rows, name="slopes", title="Log-log slope of measured peak extra memory vs n, per seed (mean, 95% CI; "
              "the bytes are the same on every seed, so the interval has no width): 1 = linear, 2 = quadratic")
