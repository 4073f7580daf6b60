"""linear-attention-rnn: exactness in float64 (all seeds stacked), then timed repeats of decode
steps and forward passes (one unit per repeat), then the copy task where the profile asks."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mlbench.core.grid import arm_key
from mlbench.exps.linear_attention_rnn import (DECODE_ARMS, EQUIV_ARMS, FORWARD_ARMS, decode_positions,
                                               forward_lengths)
from mlbench.exps.linear_attention_rnn.attention import (linear_chunked, linear_masked, linear_noncausal,
                                                         max_abs_err, recurrence, softmax_causal)
from mlbench.exps.linear_attention_rnn.report import report
from mlbench.exps.linear_attention_rnn.timing import decode_repeat, forward_repeat


def equivalence(cfg, ctx) -> dict:
    """Every form on the same float64 q, k, v ~ N(0, 1), seeds stacked on a leading axis (S, B, H, N, d)."""
    gens = ctx.generators("equivalence")
    shape = (cfg.equiv_batch, cfg.equiv_heads, cfg.equiv_length, cfg.head_dim)
    q, k, v = (torch.stack([torch.randn(shape, generator=g, dtype=torch.float64) for g in gens]) for _ in range(3))
    masked = linear_masked(q, k, v, cfg.eps)
    recurrent, (state, norm) = recurrence(q, k, v, cfg.eps)
    softmax = softmax_causal(q, k, v)
    errors = {"recurrence-vs-masked": max_abs_err(recurrent, masked),
              "chunked-vs-masked": max_abs_err(linear_chunked(q, k, v, cfg.chunk, cfg.eps), masked),
              "noncausal-orders": max_abs_err(linear_noncausal(q, k, v, cfg.eps, "right"),
                                              linear_noncausal(q, k, v, cfg.eps, "left")),
              "recurrence-vs-softmax": max_abs_err(recurrent, softmax),  # the contrast: must be far from 0
              "softmax-vs-sdpa": max_abs_err(softmax, F.scaled_dot_product_attention(q, k, v, is_causal=True))}
    grid = ctx.grid(EQUIV_ARMS)
    per_member = [errors[arm][grid.seeds.index(seed)] for _, arm, seed in grid.members()]
    ctx.log_models(grid, max_abs_err=per_member)
    states = ctx.grid(("recurrence",))  # the measured state: S, z after N steps, one file per seed
    ctx.save_models(states, {"S": state, "z": norm}, metadata=lambda m: {
        "what": "recurrent state (S, z) after equiv_length steps, float64", "seed_index": str(states.seed_of(m))})
    return grid.measurements(max_abs_err=per_member)


def timed(grid, per_seed: dict, key: str, metric: str) -> dict:
    """Measurements of one coordinate (`key`, e.g. "4096") from per-repeat unit results, plus log."""
    vals = [per_seed[seed][key][arm] for _, arm, seed in grid.members()]
    return grid.measurements(**{metric: vals, f"log_{metric}": [math.log(x) for x in vals]})


def decode_measurements(cfg, ctx, dec: dict) -> dict:
    out = {}
    for t in decode_positions(cfg):
        out.update(timed(ctx.grid(DECODE_ARMS, t=t), dec, str(t), "step_us"))
        sm, rnn = (out[arm_key(a, t=t)]["step_us"] for a in DECODE_ARMS)
        out[arm_key("speedup", t=t)] = {"ratio": [a / b for a, b in zip(sm, rnn)]}
    return out


def forward_measurements(cfg, ctx, fwd: dict) -> dict:
    out = {}
    for arm in FORWARD_ARMS:
        for n in forward_lengths(cfg, arm):
            out.update(timed(ctx.grid((arm,), n=n), fwd, str(n), "fwd_ms"))
    return out


def run(cfg, ctx) -> dict:
    m = ctx.unit("equivalence", ctx.shown("exactness, float64", lambda: equivalence(cfg, ctx)))
    positions = decode_positions(cfg)
    lengths = {arm: forward_lengths(cfg, arm) for arm in FORWARD_ARMS}
    dec = ctx.map_units({f"decode-seed{k}": ctx.shown(f"decode steps, repeat {k}", lambda k=k: decode_repeat(
        cfg, positions, ctx.generator("decode", k), ctx.device)) for k in ctx.seeds})
    fwd = ctx.map_units({f"forward-seed{k}": ctx.shown(f"forward passes, repeat {k}", lambda k=k: forward_repeat(
        cfg, lengths, ctx.generator("forward", k), ctx.device)) for k in ctx.seeds})
    m.update(decode_measurements(cfg, ctx, {k: dec[f"decode-seed{k}"] for k in ctx.seeds}))
    m.update(forward_measurements(cfg, ctx, {k: fwd[f"forward-seed{k}"] for k in ctx.seeds}))
    curves = None
    if cfg.copy_steps:
        from mlbench.exps.linear_attention_rnn.copy_task import train_copy

        curves = ctx.unit("copy-task", lambda: train_copy(cfg, ctx))
        m.update(curves.pop("measurements"))
    report(cfg, ctx, m, curves)
    return m
