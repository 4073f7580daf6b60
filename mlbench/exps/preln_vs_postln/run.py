"""preln-vs-postln: the W² gradients at init of every arm x seed, one stacked model per (width,
depth); then the derived paired gaps and depth slopes; the warm-up study where the profile asks."""

from __future__ import annotations

import math

import torch

from mlbench.core.grid import Grid
from mlbench.core.verdict import slope
from mlbench.exps.preln_vs_postln import PLACEMENTS, gap_key, key, slopes_key
from mlbench.exps.preln_vs_postln.report import report
from mlbench.exps.preln_vs_postln.transformer import bank, bounds, draw, members, w2_gradient_norms


def token_batches(cfg, ctx):
    """Each seed's batch of uniform random tokens (S, B, T+1), shared by every arm, width and depth."""
    return torch.stack([torch.randint(cfg.vocab, (cfg.batch_size, cfg.seq_len + 1), generator=g)
                        for g in ctx.generators("tokens")])


def gradients_at_init(cfg, ctx, d: int, L: int, tokens) -> dict:
    """Every (placement, init) x seed at width d and depth L as one stacked model: ‖∂ℓ/∂W²_l‖ per
    layer, one forward/backward each; JSON-able results and the measured state as checkpoints."""
    arms = [(p, init) for init in cfg.inits for p in PLACEMENTS]
    grid = Grid(tuple(key(p, d, L, init) for p, init in arms), tuple(ctx.seeds))
    d_ff, dev = cfg.ffn_mult * d, ctx.device
    embed_std = 1 / math.sqrt(d) if cfg.embed == "inv-sqrt-d" else 1.0
    draws = bank([draw(d, d_ff, cfg.vocab, L, embed_std, g) for g in ctx.generators(f"init-d{d}-L{L}")])
    draws = {name: z.to(dev) for name, z in draws.items()}
    per_init = {init: bounds(init, d, d_ff, cfg.vocab) for init in cfg.inits}
    scales = {name: grid.per_arm([per_init[init][name] for _, init in arms], device=dev) for name in per_init["xavier"]}
    # the negative control builds the Post-LN arm Pre-LN too: the two arms are then the same model
    pre = grid.per_arm([p == "pre" or cfg.negative_control for p, _ in arms], device=dev).view(-1, 1, 1)
    rows = torch.tensor([grid.seeds.index(seed) for _, _, seed in grid.members()], device=dev)
    tokens = tokens.to(dev)
    per_pass = max(1, cfg.layer_models_per_pass // L)  # bounds the activations held for the backward pass
    norms, losses = [], []
    for start in ctx.track(range(0, len(grid), per_pass), f"gradients at init, d={d} L={L} ({len(grid)} models)"):
        part = slice(start, start + per_pass)
        p = members(draws, rows[part], {name: s[part] for name, s in scales.items()})
        n, loss = w2_gradient_norms(p, tokens[rows[part]], pre[part], cfg.n_heads)
        norms.append(n.cpu())
        losses.append(loss.double().cpu())
    norms, loss = torch.cat(norms), torch.cat(losses)  # (M, L) float64, (M,)
    first, last = norms[:, 0], norms[:, -1]
    ctx.log_models(grid, loss_init=loss, grad_w2_first=first, grad_w2_last=last, grad_w2_by_layer=norms)
    of = dict(zip(grid.arms, arms))  # arm key -> (placement, init)
    ctx.save_models(grid, {"w2_grad_norm": norms.float(), "loss": loss.float()[:, None]},
                    metadata=lambda m: {"arm": grid.arm_of(m), "placement": of[grid.arm_of(m)][0],
                                        "init": of[grid.arm_of(m)][1], "d_model": str(d), "layers": str(L),
                                        "seed_index": str(grid.seed_of(m)), "built_pre_ln": str(bool(pre[m].item())),
                                        "embed": cfg.embed})
    measurements = grid.measurements(grad_last=last, log_grad_last=last.log(), grad_first=first,
                                     last_first=last / first, log_last_first=(last / first).log(), loss_init=loss)
    profile = {arm: rows_.tolist() for arm, rows_ in grid.by_arm(norms).items()}  # {arm: (S, L)}
    return {"measurements": measurements, "profile": profile}


def derive(cfg, m: dict) -> dict:
    """Per seed: the paired gap ln(g_post / g_pre) at every depth, and the least-squares slopes on
    ln L of ln g_L (each placement), of the gap, and of ln(last / first)."""
    depths = sorted(cfg.depths)
    xs = [math.log(L) for L in depths]
    for d in cfg.d_models:
        for init in cfg.inits:
            for L in depths:
                post, pre = (m[key(p, d, L, init)]["log_grad_last"] for p in PLACEMENTS)
                m[gap_key(d, L, init)] = {"log_grad_ratio": [a - b for a, b in zip(post, pre)]}
            fit = lambda arm, metric: [slope(xs, ys) for ys in zip(*(m[arm(L)][metric] for L in depths))]
            m[slopes_key(d, init)] = {
                "pre_slope": fit(lambda L: key("pre", d, L, init), "log_grad_last"),
                "post_slope": fit(lambda L: key("post", d, L, init), "log_grad_last"),
                "slope_gap": fit(lambda L: gap_key(d, L, init), "log_grad_ratio"),
                "post_ratio_slope": fit(lambda L: key("post", d, L, init), "log_last_first"),
                "pre_ratio_slope": fit(lambda L: key("pre", d, L, init), "log_last_first")}
    return m


def run(cfg, ctx) -> dict:
    tokens = token_batches(cfg, ctx)
    points = [(d, L) for d in sorted(cfg.d_models) for L in sorted(cfg.depths)]
    done = ctx.map_units({f"grad-d{d}-L{L}": (lambda d=d, L=L: gradients_at_init(cfg, ctx, d, L, tokens))
                          for d, L in points})
    m, profiles = {}, {}
    for d, L in points:
        m.update(done[f"grad-d{d}-L{L}"]["measurements"])
        profiles.update(done[f"grad-d{d}-L{L}"]["profile"])
    trained = None
    if cfg.train_steps:
        from mlbench.exps.preln_vs_postln.warmup import train

        trained = ctx.unit("warmup-study", lambda: train(cfg, ctx))
        m.update(trained["measurements"])
    derive(cfg, m)
    report(cfg, ctx, m, profiles, trained)
    return m
