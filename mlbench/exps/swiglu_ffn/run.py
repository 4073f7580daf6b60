"""swiglu-ffn: every FFN arm × seed trained as one stacked language model, then judged."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mlbench.data import code_corpus
from mlbench.exps.swiglu_ffn import TABLE1, VARIANTS, lm, transformer
from mlbench.exps.swiglu_ffn.ffn import width
from mlbench.exps.swiglu_ffn.report import report


def load_corpus(cfg, ctx) -> dict:
    """Encoded corpus split into train (head) and held-out (tail); shuffled under the control."""
    corpus = code_corpus.load(cfg.corpus, ctx.cache_dir, cfg.corpus_seed, cfg.corpus_chars)
    ids, alphabet = code_corpus.encode(corpus["text"])
    if cfg.negative_control:  # i.i.d. text with the same unigram counts: nothing to learn but them
        ids = ids[torch.randperm(len(ids), generator=ctx.generator("shuffle", 0))]
    counts = torch.bincount(ids, minlength=len(alphabet)).double()
    p = counts[counts > 0] / counts.sum()
    split = len(ids) - round(cfg.heldout_frac * len(ids))
    return {"train": ids[:split], "heldout": ids[split:], "alphabet": alphabet, "sha256": corpus["sha256"],
            "source": corpus["source"], "unigram_entropy": float(-(p * p.log()).sum())}


def windows(src, grid, gens: list, count: int, length: int):
    """`count` windows of `length` chars per seed at uniform offsets, shared by every arm: (M, count, length)."""
    starts = torch.stack([torch.randint(len(src) - length + 1, (count,), generator=g) for g in gens])  # (S, count)
    return grid.repeat(src[starts[..., None] + torch.arange(length)])


def per_model_loss(logits, targets):
    """Mean next-char cross-entropy (nats) per model: (M, N, V), (M, N) -> (M,)."""
    M = logits.shape[0]
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(M, -1).mean(1)


def lr_at(cfg, step: int) -> float:
    """Linear warm-up over the first warmup_frac of the steps, then cosine to 0."""
    warm = max(1, round(cfg.warmup_frac * cfg.steps))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, cfg.steps - warm)))


@torch.no_grad()
def evaluate(cfg, model, shared, ffns, grid, heldout):
    """Per-model mean held-out loss over windows (M, W, T+1), in chunks of curve_positions: (M,) float64."""
    chunk = max(1, cfg.curve_positions // model.predictions_per_window(cfg))
    total = torch.zeros(heldout.shape[0], dtype=torch.float64, device=heldout.device)
    for start in range(0, heldout.shape[1], chunk):
        part = heldout[:, start:start + chunk]
        total += per_model_loss(*model.predict(cfg, shared, ffns, grid, part)).double() * part.shape[1]
    return total / heldout.shape[1]


def train(cfg, ctx, data: dict) -> dict:
    """Train every (arm, seed) model together; JSON-able results and one checkpoint per member."""
    model = lm if cfg.model == "mlp" else transformer
    grid, dev, vocab = ctx.grid(cfg.arms), ctx.device, len(data["alphabet"])
    shared, ffns = model.init_params(cfg, grid, vocab, ctx.generators("init"))
    shared = {k: p.to(dev).requires_grad_() for k, p in shared.items()}  # (M, ...)
    ffns = {arm: {k: p.to(dev).requires_grad_() for k, p in f.items()} for arm, f in ffns.items()}  # (S, L, ...)
    opt = torch.optim.AdamW([*shared.values(), *(p for f in ffns.values() for p in f.values())], lr=cfg.lr,
                            betas=(0.9, cfg.beta2), weight_decay=0.0, foreach=True)  # element-wise: M independent AdamWs
    per_window = model.predictions_per_window(cfg)
    heldout = windows(data["heldout"], grid, ctx.generators("heldout"), max(1, cfg.eval_positions // per_window),
                      cfg.context + 1).to(dev)  # (M, windows, T+1), fixed
    curve_windows = max(1, cfg.curve_positions // per_window)  # the curves' subset: the first windows
    data_gens, train_sum, since, curve_steps, curve = ctx.generators("data"), 0.0, 0, [], []
    for step in ctx.steps(cfg.steps, every=cfg.eval_every, desc=f"train {len(grid)} stacked models"):
        if step.evaluate:
            first = evaluate(cfg, model, shared, ffns, grid, heldout[:, :curve_windows])
            curve_steps.append(step.index)
            curve.append(first.tolist())
            ctx.watch(grid, step.index, heldout_loss=first)  # NaN/inf: recorded, never a crash
            ctx.log_models(grid, step.index, heldout_loss=first, **({"train_loss": train_sum / since} if since else {}))
            train_sum, since = 0.0, 0
            if step.last or grid.all_diverged:
                break
        batch = windows(data["train"], grid, data_gens, cfg.batch_size, cfg.context + 1).to(dev)
        loss = per_model_loss(*model.predict(cfg, shared, ffns, grid, batch))  # (M,)
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step.index)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()  # the sum of per-model means: each model gets its own gradient
        opt.step()
        train_sum, since = train_sum + loss.detach(), since + 1
    full = evaluate(cfg, model, shared, ffns, grid, heldout)  # (M,): the measured loss
    _save(cfg, ctx, grid, shared, ffns)
    counts = {arm: model.param_count(cfg, arm, vocab) for arm in grid.arms}
    per_arm = grid.by_arm(torch.tensor(curve, dtype=torch.float64).T)  # {arm: (S, evaluations)}
    return {"measurements": grid.measurements(loss=full.cpu(), params=[counts[grid.arm_of(m)] for m in range(len(grid))]),
            "curve_steps": curve_steps, "curve": {arm: c.tolist() for arm, c in per_arm.items()}, "params": counts}


def _save(cfg, ctx, grid, shared: dict, ffns: dict) -> None:
    """One checkpoint per member: the shared weights and that seed's FFN weights of its arm."""
    def member(m: int, tensors: dict) -> dict:
        k = grid.seeds.index(grid.seed_of(m))
        return {**tensors, **{f"ffn.{name}": p[k] for name, p in ffns[grid.arm_of(m)].items()}}

    ctx.save_models(grid, shared, tensors=member, metadata=lambda m: {
        "arm": grid.arm_of(m), "seed_index": str(grid.seed_of(m)), "model": cfg.model,
        "ffn_width": str(width(grid.arm_of(m), cfg.d_ff))})


def derive(cfg, m: dict) -> dict:
    """Per-seed comparisons the claims read: gains over ReLU, their ratios, the Table 1 ranking."""
    relu = m["relu"]["loss"]
    for arm in cfg.arms:
        r = m[arm]
        r["gain"] = [a - b for a, b in zip(relu, r["loss"])]  # nats below ReLU
        r["rel_gain"] = [g / a for g, a in zip(r["gain"], relu)]
        r["rel_gain_pct"] = [100 * g for g in r["rel_gain"]]
        r["param_mismatch"] = [abs(p / q - 1) for p, q in zip(r["params"], m["relu"]["params"])]
    gain = {arm: m[arm]["gain"] for arm in cfg.arms}
    if "bilinear" in cfg.arms:
        m["bilinear-vs-swiglu"] = {"bilinear_minus_half_swiglu": [b - 0.5 * s for b, s in zip(gain["bilinear"], gain["swiglu"])],
                                   "share": [b / s if s else math.nan for b, s in zip(gain["bilinear"], gain["swiglu"])]}
    if "gelu" in cfg.arms:
        m["swiglu-vs-gelu"] = {"swiglu_minus_twice_gelu": [s - 2 * g for s, g in zip(gain["swiglu"], gain["gelu"])],
                               "ratio": [s / g if g else math.nan for s, g in zip(gain["swiglu"], gain["gelu"])]}
    if set(VARIANTS) <= set(cfg.arms):
        paper = [TABLE1[a][0] for a in VARIANTS]
        m["ranking"] = {"spearman": [spearman([m[a]["loss"][k] for a in VARIANTS], paper) for k in range(len(relu))]}
    return m


def spearman(xs, ys) -> float:
    """Spearman's rho of two untied sequences: 1 − 6 Σ d² / (n (n² − 1)); NaN if xs has NaN."""
    if any(math.isnan(x) for x in xs):
        return math.nan
    rank = lambda v: {i: r for r, i in enumerate(sorted(range(len(v)), key=v.__getitem__))}
    rx, ry, n = rank(xs), rank(ys), len(xs)
    return 1 - 6 * sum((rx[i] - ry[i]) ** 2 for i in range(n)) / (n * (n * n - 1))


def run(cfg, ctx) -> dict:
    data = load_corpus(cfg, ctx)
    trained = ctx.unit("train", lambda: train(cfg, ctx, data))
    m = derive(cfg, trained["measurements"])
    report(cfg, ctx, m, trained, data)
    return m
