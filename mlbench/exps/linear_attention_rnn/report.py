"""linear-attention-rnn: exactness and counted-cost tables (byte-identical on rerun), the timed
decode and forward tables with their fitted slopes, and their figures."""

from __future__ import annotations

import math

from mlbench.core.grid import arm_key
from mlbench.core.plotting import by_x, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean, mean_ci, slope
from mlbench.exps.linear_attention_rnn import (CONTROL_POSITIONS, DECODE_ARMS, EQUIV_ARMS, EXACT, FORWARD_ARMS,
                                               MIN_RATIO, SLOPE_POINTS, decode_positions, forward_lengths)
from mlbench.exps.linear_attention_rnn.attention import step_costs
from mlbench.exps.linear_attention_rnn.timing import clock

WHAT = {"recurrence-vs-masked": "RNN steps vs masked quadratic form",
        "chunked-vs-masked": "chunked causal pass vs masked form",
        "noncausal-orders": "φQ(φKᵀV) vs (φQφKᵀ)V",
        "recurrence-vs-softmax": "contrast: RNN vs causal softmax",
        "softmax-vs-sdpa": "masked softmax vs torch SDPA"}
LABELS = {"softmax-kv": "softmax, KV cache", "rnn": "linear, RNN step", "softmax": "masked softmax",
          "linear": "linear, non-causal", "linear-causal": "linear, chunked causal"}


def report(cfg, ctx, m: dict, copy: dict | None) -> None:
    _exactness(cfg, ctx, m)
    _costs(cfg, ctx)
    clock_name = clock(ctx.device)[0]
    _decode(cfg, ctx, m, clock_name)
    _forward(cfg, ctx, m, clock_name)
    if copy is not None:
        from mlbench.exps.linear_attention_rnn.copy_task import report_copy

        report_copy(cfg, ctx, m, copy)


def _exactness(cfg, ctx, m: dict) -> None:
    rows = [{"comparison": arm, "what": WHAT[arm], **mean_ci_cells("max_abs_err", m[arm]["max_abs_err"], lower=0),
             "worst_seed": max(m[arm]["max_abs_err"])} for arm in EQUIV_ARMS]
    ctx.table(rows, title=f"Exactness in float64: max |difference| over every output (B={cfg.equiv_batch}, "
              f"H={cfg.equiv_heads}, N={cfg.equiv_length}, d={cfg.head_dim}, q, k, v ~ N(0, 1), ε={cfg.eps:g} in "
              f"every linear form; mean and 95% CI over seeds; 'equal' means < {EXACT:g})")
    fig, ax = figure(1, 1, width=7.0)
    worst = [max(max(m[a]["max_abs_err"]), 1e-20) for a in EQUIV_ARMS]
    ax[0][0].barh(range(len(EQUIV_ARMS)), worst, color=["C0", "C0", "C0", "C3", "C2"])
    ax[0][0].set_yticks(range(len(EQUIV_ARMS)), EQUIV_ARMS)
    ax[0][0].set_xscale("log")
    ax[0][0].axvline(EXACT, color="grey", ls=":", lw=1, label=f"bound for 'equal' ({EXACT:g})")
    ax[0][0].set(xlabel="largest |difference| over seeds and outputs (float64)",
                 title="The three linear forms agree to round-off; softmax is a different function")
    ax[0][0].invert_yaxis()
    ax[0][0].legend(fontsize="small")
    ctx.plot("exactness", fig)


def _costs(cfg, ctx) -> None:
    rows = []
    for t in decode_positions(cfg):
        c = step_costs(t, cfg.heads, cfg.head_dim, cfg.head_dim)
        rows.append({"t": t, **c, "memory_ratio": c["kv_cache_numbers"] / c["rnn_state_numbers"],
                     "flops_ratio": c["softmax_flops"] / c["rnn_flops"]})
    ctx.table(rows, name="cost", title=f"Counted cost of one generated token per layer (H={cfg.heads}, d=d_v="
              f"{cfg.head_dim}): numbers kept between steps and FLOPs of the step's matrix products")


def _decode(cfg, ctx, m: dict, clock_name: str) -> None:
    pos = decode_positions(cfg)
    rows = [{"t": t, **mean_ci_cells("softmax_kv_us", m[arm_key("softmax-kv", t=t)]["step_us"], lower=0),
             **mean_ci_cells("rnn_us", m[arm_key("rnn", t=t)]["step_us"], lower=0),
             **mean_ci_cells("speedup", m[arm_key("speedup", t=t)]["ratio"], lower=0)} for t in pos]
    ctx.table(rows, name="decode", title=f"One decode step (B=1, H={cfg.heads}, d={cfg.head_dim}, "
              f"{cfg.timing_dtype}), µs by {clock_name}: median of {cfg.decode_blocks}×{cfg.decode_block_calls} "
              f"steps in alternating blocks per repeat, mean and 95% CI over repeats; speedup = softmax / RNN "
              f"(paper: up to 4000×, whole-model GPU image generation)")
    fig, ax = figure(1, 2)
    by_x(ax[0][0], pos, {LABELS[a]: [m[arm_key(a, t=t)]["step_us"] for t in pos] for a in DECODE_ARMS},
         xlabel="position t (tokens already generated)", ylabel=f"time of one step, µs ({clock_name})",
         title="per-token cost of generation")
    by_x(ax[0][1], pos, {"softmax / RNN": [m[arm_key("speedup", t=t)]["ratio"] for t in pos]},
         xlabel="position t", ylabel="step-time ratio, softmax / RNN", title="how many RNN steps one softmax step buys")
    ax[0][1].axhline(MIN_RATIO, color="grey", ls=":", lw=1, label=f"claim at largest t: ≥ {MIN_RATIO:g}×")
    ax[0][1].axhline(1.0, color="black", lw=0.6)
    ax[0][1].legend(fontsize="small")
    for a in ax[0]:
        a.set_xscale("log", base=2)
        a.set_yscale("log")
    if cfg.negative_control:
        fig.suptitle(f"negative control: short contexts only ({CONTROL_POSITIONS[0]}–{CONTROL_POSITIONS[-1]})", y=1.04)
    ctx.plot("decode", fig)


def _per_seed_slopes(m: dict, keys: list[str], xs: list[int], metric: str) -> list[float]:
    logs = [math.log(x) for x in xs]
    return [slope(logs, [m[k][metric][s] for k in keys]) for s in range(len(m[keys[0]][metric]))]


def _forward(cfg, ctx, m: dict, clock_name: str) -> None:
    rows = []
    for arm in FORWARD_ARMS:
        for n in forward_lengths(cfg, arm):
            ms = m[arm_key(arm, n=n)]["fwd_ms"]
            rows.append({"arm": arm, "n": n, **mean_ci_cells("fwd_ms", ms, lower=0),
                         "per_token_us": mean([1e3 * x / n for x in ms])})
    ctx.table(rows, name="forward", title=f"One forward pass (B={cfg.forward_batch}, H=1, d={cfg.head_dim}, "
              f"{cfg.timing_dtype}), ms by {clock_name}: median of {cfg.forward_calls} calls per repeat, mean and "
              f"95% CI over repeats; per_token_us = time / n")
    pos = decode_positions(cfg)
    fits = [("decode step", a, pos[-SLOPE_POINTS:], [arm_key(a, t=t) for t in pos[-SLOPE_POINTS:]], "log_step_us")
            for a in DECODE_ARMS]
    fits += [("forward pass", a, forward_lengths(cfg, a), [arm_key(a, n=n) for n in forward_lengths(cfg, a)], "log_fwd_ms")
             for a in FORWARD_ARMS]
    slopes = []
    for what, arm, xs, keys, metric in fits:
        iv = mean_ci(_per_seed_slopes(m, keys, list(xs), metric))
        slopes.append({"timed": what, "arm": arm, "range": f"{xs[0]}..{xs[-1]}", "slope": iv.mean,
                       "slope_ci_low": iv.low, "slope_ci_high": iv.high})
    ctx.table(slopes, name="slopes", title="Log-log slope of time vs position t (decode) or length n (forward), "
              "fitted per repeat, mean and 95% CI: 0 = constant per token, 1 = linear, 2 = quadratic")
    fig, ax = figure(1, 2)
    for arm in FORWARD_ARMS:
        ns = forward_lengths(cfg, arm)
        per_n = [m[arm_key(arm, n=n)]["fwd_ms"] for n in ns]
        by_x(ax[0][0], ns, {LABELS[arm]: per_n}, xlabel="sequence length n", ylabel=f"forward time, ms ({clock_name})",
             title="forward pass vs n")
        by_x(ax[0][1], ns, {LABELS[arm]: [[1e3 * x / n for x in v] for n, v in zip(ns, per_n)]},
             xlabel="sequence length n", ylabel="time per token, µs", title="per-token cost: flat means linear")
    for a in ax[0]:
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.legend(fontsize="small", loc="upper left")
    ctx.plot("forward", fig)
