"""The warm-up study (full profile, GPU): Post-LN and Pre-LN causal character LMs trained with
Adam with and without learning-rate warm-up, every (placement, warm-up, lr) x seed as one
stacked model.

    lr_m(t) = lr_m · s(t),   s(t) = (t + 1) / W            for t < W, warmed-up arms
                             s(t) = min(1, √(W / (t + 1)))  otherwise (fairseq's inverse_sqrt)

so the arm without warm-up starts at the peak and decays exactly like the warmed-up arm after W
steps: the two schedules differ only in the first W steps. Adam (β₁ = 0.9, β₂, ε = 1e-8, no
weight decay, no clipping) is written out on the stacked tensors, so each member has its own lr.
Xavier init (the paper's), the same layers as the gradient study (transformer.py); the data are
the procedural toy-Python corpus (`mlbench.data.code_corpus`), its last 10 % held out.
"""

from __future__ import annotations

import math

import torch

from mlbench.core.grid import Grid, Keep
from mlbench.data import code_corpus
from mlbench.exps.preln_vs_postln import PLACEMENTS, train_key
from mlbench.exps.preln_vs_postln.transformer import LAYER_WEIGHTS, bank, bounds, draw, loss_per_model, members

BETA1, EPS, HELDOUT_FRAC = 0.9, 1e-8, 0.1


def schedule(step: int, warmup_steps: int, warmed: bool) -> float:
    """s(t) of the module docstring."""
    if warmed and step < warmup_steps:
        return (step + 1) / warmup_steps
    return min(1.0, math.sqrt(warmup_steps / (step + 1)))


def windows(ids, gens: list, rows, count: int, length: int):
    """`count` windows of `length` ids per seed at uniform offsets, shared by that seed's members: (M, count, length)."""
    starts = torch.stack([torch.randint(len(ids) - length + 1, (count,), generator=g) for g in gens])  # (S, count)
    return ids[starts[..., None] + torch.arange(length)][rows]


def member_view(name: str, per_member, p):
    """A per-member (M,) tensor shaped to broadcast over parameter p: layer weights are (L, M, ...)."""
    if name in LAYER_WEIGHTS:
        return per_member.view(1, -1, *[1] * (p.dim() - 2))
    return per_member.view(-1, *[1] * (p.dim() - 1))


@torch.no_grad()
def adam_step(params: dict, state: dict, lr, t: int, beta2: float) -> None:
    """One Adam step (bias-corrected, step t >= 1) of every member, lr (M,) per member."""
    for name, p in params.items():
        m, v = state.setdefault(name, (torch.zeros_like(p), torch.zeros_like(p)))
        m.mul_(BETA1).add_(p.grad, alpha=1 - BETA1)
        v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
        denom = (v / (1 - beta2 ** t)).sqrt_().add_(EPS)
        p.sub_(member_view(name, lr / (1 - BETA1 ** t), p) * m / denom)


@torch.no_grad()
def heldout_loss(params: dict, heldout, pre, n_heads: int, chunk: int):
    """Mean held-out loss per member over windows (M, W, T+1), in chunks of windows: (M,) float64."""
    total = torch.zeros(heldout.shape[0], dtype=torch.float64, device=heldout.device)
    for start in range(0, heldout.shape[1], chunk):
        part = heldout[:, start:start + chunk]
        total += loss_per_model(params, part, pre, n_heads).double() * part.shape[1]
    return total / heldout.shape[1]


def train(cfg, ctx) -> dict:
    """Train every member together; JSON-able measurements and curves, one checkpoint per member."""
    corpus = code_corpus.load("procedural", ctx.cache_dir, 0, cfg.corpus_chars)
    ids, alphabet = code_corpus.encode(corpus["text"])
    split, V = len(ids) - round(HELDOUT_FRAC * len(ids)), len(alphabet)
    d, L, dev = cfg.train_d_model, cfg.train_layers, ctx.device
    arms = [(p, w, lr) for lr in sorted(cfg.train_lrs) for w in (0, cfg.warmup_steps) for p in PLACEMENTS]
    grid = Grid(tuple(train_key(*a) for a in arms), tuple(ctx.seeds))
    rows = torch.tensor([grid.seeds.index(seed) for _, _, seed in grid.members()])
    draws = bank([draw(d, 4 * d, V, L, 1 / math.sqrt(d), g) for g in ctx.generators("train-init")])
    xavier = bounds("xavier", d, 4 * d, V)
    params = {n: t.to(dev).requires_grad_(True) for n, t in
              members(draws, rows, {n: torch.full((len(grid),), b) for n, b in xavier.items()}).items()}
    pre = grid.per_arm([p == "pre" or cfg.negative_control for p, _, _ in arms], device=dev).view(-1, 1, 1)
    peak = grid.per_arm([lr for _, _, lr in arms], dtype=torch.float64)
    warmed = [w > 0 for _, w, _ in arms for _ in grid.seeds]
    heldout = windows(ids[split:], ctx.generators("heldout"), rows, cfg.eval_windows, cfg.train_context + 1).to(dev)
    gens, state, curve, curve_steps = ctx.generators("train-data"), {}, [], []
    for step in ctx.steps(cfg.train_steps, every=cfg.eval_every, desc=f"warm-up study ({len(grid)} stacked models)"):
        if step.evaluate:
            held = heldout_loss(params, heldout, pre, cfg.n_heads, cfg.train_batch)
            curve_steps.append(step.index)
            curve.append(held.tolist())
            ctx.log_models(grid, step.index, heldout_loss=held)
            if step.last or grid.all_diverged:
                break
        batch = windows(ids[:split], gens, rows, cfg.train_batch, cfg.train_context + 1).to(dev)
        loss = loss_per_model(params, batch, pre, cfg.n_heads)  # (M,)
        ctx.watch(grid, step.index, train_loss=loss)  # NaN/inf: recorded, never a crash
        for p in params.values():
            p.grad = None
        torch.where(loss.isfinite(), loss, 0.0).sum().backward()
        s = torch.tensor([schedule(step.index, cfg.warmup_steps, w) for w in warmed], dtype=torch.float64)
        adam_step(params, state, (peak * s).to(dev, torch.float32), step.index + 1, cfg.beta2)
    ctx.save_models(grid, {n: (t.detach().transpose(0, 1) if n in LAYER_WEIGHTS else t.detach()) for n, t in params.items()},
                    metadata=lambda m: {"arm": grid.arm_of(m), "seed_index": str(grid.seed_of(m)), "layers": str(L),
                                        "d_model": str(d), "steps": str(cfg.train_steps)})
    return {"measurements": _measurements(grid, curve[-1], V), "curve_steps": curve_steps,
            "curves": {arm: c.tolist() for arm, c in grid.by_arm(torch.tensor(curve, dtype=torch.float64).T).items()}}


def _measurements(grid: Grid, final: list[float], vocab: int) -> dict:
    """Final held-out loss per member; a diverged member counts at ln V (worse than a uniform guess,
    a lower bound on its loss) and is flagged censored, so a verdict reads it as a failure."""
    failed = [grid.diverged(m) or not math.isfinite(x) for m, x in enumerate(final)]
    loss = [math.log(vocab) if f else x for f, x in zip(failed, final)]
    flags = Keep([float(f) for f in failed])
    return grid.measurements(final_loss=Keep(loss), log_final_loss=Keep([math.log(x) for x in loss]),
                             diverged_at=grid.divergence_steps(),
                             **{"final_loss.censored": flags, "log_final_loss.censored": flags})
