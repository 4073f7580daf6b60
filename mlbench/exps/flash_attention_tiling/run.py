"""flash-attention-tiling: one unit per repeat (fresh q, k, v at every n): every form's error
against the float64 reference at every logit scale, and the peak extra memory of the plain,
tiled and fused forms (measured on the scale-1 calls); then, in the full profile, the timed
fused-kernel comparison, one unit per repeat."""

from __future__ import annotations

import math

import torch

from mlbench.core.grid import arm_key
from mlbench.exps.flash_attention_tiling import (EXACT_FORMS, MEMORY_FORMS, SPEED_FORMS, blocks, lengths,
                                                 scales)
from mlbench.exps.flash_attention_tiling.attention import (fused_attention, max_abs_err, naive_attention,
                                                           reference_attention, rounding_floor, softmax_scale,
                                                           tiled_attention)
from mlbench.exps.flash_attention_tiling.memory import peak_extra_bytes
from mlbench.exps.flash_attention_tiling.report import report


def forms(cfg, n: int, tau: float) -> dict:
    """Each form as a call on (q, k, v), returning its output O (the tiled form: O and L)."""
    bq, bk = blocks(cfg, n)
    return {"naive": lambda q, k, v: naive_attention(q, k, v, tau),
            "tiled": lambda q, k, v: tiled_attention(q, k, v, tau, bq, bk),
            "no-rescale": lambda q, k, v: tiled_attention(q, k, v, tau, bq, bk, rescale=False)[0],
            "no-max": lambda q, k, v: tiled_attention(q, k, v, tau, bq, bk, subtract_max=False)[0],
            "fused": lambda q, k, v: fused_attention(q[None, None], k[None, None], v[None, None], tau)[0, 0]}


def score(out: torch.Tensor, naive_err: float, ref: torch.Tensor, floor: float) -> dict:
    """max |O − O_ref|, the 2× rule's ratio err / (2·err_naive + floor) (≤ 1 passes), finite or not."""
    err = max_abs_err(out, ref)
    return {"max_abs_err": err, "rule_ratio": err / (2 * naive_err + floor), "finite": float(not math.isnan(err))}


@torch.no_grad()
def one_length(cfg, ctx, n: int, gen) -> dict:
    """{"memory": {form: bytes}, "exact": {scale: {form: scores}}} at length n, and the tiled state."""
    q, k, v = (torch.randn(n, cfg.head_dim, generator=gen).to(ctx.device) for _ in range(3))  # (n, d) each
    res: dict = {"memory": {}, "exact": {}}
    for s_index, scale in enumerate(scales(cfg)):
        tau = softmax_scale(cfg.head_dim, scale)
        ref, ref_lse = reference_attention(q, k, v, tau)
        outs = {}
        for name, fn in forms(cfg, n, tau).items():
            if s_index == 0 and name in MEMORY_FORMS:
                outs[name], res["memory"][name] = peak_extra_bytes(lambda: fn(q, k, v), ctx.device)
            else:
                outs[name] = fn(q, k, v)
        tiled_out, tiled_lse = outs["tiled"]
        outs["tiled"] = tiled_out
        naive_err, floor = max_abs_err(outs["naive"], ref), rounding_floor(ref, q.dtype)
        res["exact"][str(scale)] = {name: score(o, naive_err, ref, floor) for name, o in outs.items()}
        if s_index == 0 and n == lengths(cfg)[-1]:
            res["state"] = {"O": tiled_out, "L": tiled_lse, "L_ref": ref_lse}
    return res


def repeat(cfg, ctx, seed: int) -> dict:
    """One repeat: every length, in order, from this repeat's generator; saves the tiled output and
    its logsumexp L (the O(n) statistic) at the largest n beside the float64 L."""
    gen, out = ctx.generator("inputs", seed), {}
    with ctx.task(f"exactness and memory, repeat {seed}", len(lengths(cfg))) as bar:
        for n in lengths(cfg):
            out[str(n)] = one_length(cfg, ctx, n, gen)
            bar.advance()
    state = out[str(lengths(cfg)[-1])].pop("state")
    ctx.save_checkpoint(f"tiled-n{lengths(cfg)[-1]}-seed{seed}", state, {
        "what": "tiled output O and logsumexp L at the largest n, logit scale "
                f"{scales(cfg)[0]:g}, with the float64 reference's L", "seed_index": str(seed)})
    return out


def measurements(cfg, ctx, per_seed: dict) -> dict:
    """Per-seed unit results -> {arm key: {metric: [per seed]}}, logged to metrics.jsonl."""
    m, ns = {}, lengths(cfg)
    for n in ns:
        for scale in scales(cfg):
            grid = ctx.grid(EXACT_FORMS, n=n, scale=scale)
            cols = {metric: [per_seed[seed][str(n)]["exact"][str(scale)][arm][metric] for _, arm, seed in grid.members()]
                    for metric in ("max_abs_err", "rule_ratio", "finite")}
            ctx.log_models(grid, **cols)
            m.update(grid.measurements(**cols))
        grid = ctx.grid(MEMORY_FORMS, n=n)
        peak = [per_seed[seed][str(n)]["memory"][arm] for _, arm, seed in grid.members()]
        ctx.log_models(grid, peak_bytes=peak)
        m.update(grid.measurements(peak_bytes=peak, log_peak_bytes=[math.log(b) for b in peak]))
        m[arm_key("savings", n=n)] = {"ratio": [a / b for a, b in zip(m[arm_key("naive", n=n)]["peak_bytes"],
                                                                       m[arm_key("tiled", n=n)]["peak_bytes"])]}
    top, half = (m[arm_key("savings", n=x)]["ratio"] for x in (ns[-1], ns[-2]))
    m["savings-growth"] = {"growth": [a / b for a, b in zip(top, half)]}
    return m


def speed_measurements(cfg, ctx, per_seed: dict) -> dict:
    m = {}
    for n in sorted(set(cfg.speed_lengths)):
        grid = ctx.grid(SPEED_FORMS, n=n)
        rows = [per_seed[seed][str(n)][arm] for _, arm, seed in grid.members()]
        m.update(grid.measurements(ms=[r["ms"] for r in rows], log_ms=[math.log(r["ms"]) for r in rows],
                                   peak_bytes=[r["peak_bytes"] for r in rows],
                                   rule_ratio=[r["rule_ratio"] for r in rows]))
        m[arm_key("speedup", n=n)] = {"speedup": [a / b for a, b in zip(m[arm_key("standard", n=n)]["ms"],
                                                                         m[arm_key("flash", n=n)]["ms"])]}
    return m


def run(cfg, ctx) -> dict:
    per_seed = ctx.map_units({f"seed{k}": lambda k=k: repeat(cfg, ctx, k) for k in ctx.seeds})
    m = measurements(cfg, ctx, {k: per_seed[f"seed{k}"] for k in ctx.seeds})
    if cfg.speed:
        from mlbench.exps.flash_attention_tiling.speed import speed_repeat

        timed = ctx.map_units({f"speed-seed{k}": lambda k=k: speed_repeat(cfg, ctx, k) for k in ctx.seeds})
        m.update(speed_measurements(cfg, ctx, {k: timed[f"speed-seed{k}"] for k in ctx.seeds}))
    report(cfg, ctx, m)
    return m
