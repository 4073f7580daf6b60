"""Real mixed precision on a GPU (full profile): a small causal LM trained under autocast.

Two recipes on the same model, token stream and initial weights:
- hand-built, the recipe the experiment studies: fp32 (TF32 off), TF32, bf16 `torch.autocast`,
  and fp16 `torch.autocast` + `torch.amp.GradScaler`;
- accelerate's, as its users train: `Accelerator(mixed_precision="bf16" | "fp16")`, the forward
  in `accelerator.autocast()`, `accelerator.backward(loss)` and the step of the optimizer
  prepared by the accelerator (accelerate's GradScaler for fp16). The weights are not passed to
  `prepare`: under a launch it would wrap them in DDP, while here each rank times its own arms.
Each gives its median step time, peak allocated memory (torch.cuda.max_memory_allocated) and
final loss. Self-contained: it shares nothing with the emulated CPU recipe but the config, and it
needs CUDA (the face's `check` refuses it elsewhere; on a CPU, accelerate ignores fp16).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from mlbench.exps.fp16_mixed import AMP_ARMS

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def lm_tokens(cfg, gen, n_batches: int):
    """(n, B, T+1) int32 tokens of a random Markov chain: each token has 4 random successors (entropy <= ln 4)."""
    succ = torch.randint(cfg.amp_vocab, (cfg.amp_vocab, 4), generator=gen)
    n, T = n_batches * cfg.amp_batch, cfg.amp_seq_len
    choice = torch.randint(4, (n, T), generator=gen)
    tok = [torch.randint(cfg.amp_vocab, (n,), generator=gen)]
    for t in range(T):
        tok.append(succ[tok[-1], choice[:, t]])
    return torch.stack(tok, 1).view(n_batches, cfg.amp_batch, T + 1).int()


def lm_loss(p, tokens, layers: int):
    """Next-token cross-entropy of a pre-LN GPT (no biases or LN gains, tied embeddings), heads of 64."""
    B, T, D = tokens.shape[0], tokens.shape[1] - 1, p["emb"].shape[1]
    x = p["emb"][tokens[:, :-1]] + p["pos"][:T]  # (B, T, D)
    for l in range(layers):
        qkv = F.linear(F.layer_norm(x, (D,)), p[f"qkv{l}"]).view(B, T, 3, D // 64, 64)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, 64)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, D)
        x = x + F.linear(att, p[f"proj{l}"])
        x = x + F.linear(F.gelu(F.linear(F.layer_norm(x, (D,)), p[f"fc{l}"])), p[f"out{l}"])
    logits = F.linear(F.layer_norm(x, (D,)), p["emb"])  # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())


def lm_init(cfg, ctx, k: int):
    """The token pool (a fresh batch every step) and initial weights of seed k, on ctx.device."""
    D = cfg.amp_d_model
    shapes = {"emb": (cfg.amp_vocab, D), "pos": (cfg.amp_seq_len, D)}
    for l in range(cfg.amp_layers):
        shapes |= {f"qkv{l}": (3 * D, D), f"proj{l}": (D, D), f"fc{l}": (4 * D, D), f"out{l}": (D, 4 * D)}
    gen = ctx.generator("amp", k)
    pool = lm_tokens(cfg, gen, cfg.amp_warmup + cfg.amp_steps).to(ctx.device)
    p = {n: (torch.randn(*s, generator=gen) * 0.02).to(ctx.device).requires_grad_(True) for n, s in shapes.items()}
    return pool, p


def hand_step(cfg, ctx, precision: str, p: dict):
    """One step of the hand-built recipe: torch.autocast, and for fp16 torch.amp.GradScaler."""
    dev, dtype = ctx.device, DTYPES.get(precision)
    opt = torch.optim.AdamW(list(p.values()), lr=cfg.amp_lr, fused=True)
    scaler = torch.amp.GradScaler(dev.type, enabled=precision == "fp16")

    def step(tokens):
        with torch.autocast(dev.type, dtype=dtype or torch.float16, enabled=dtype is not None):
            loss = lm_loss(p, tokens, cfg.amp_layers)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss
    return step


def accelerate_step(cfg, ctx, precision: str, p: dict):
    """One step as a user of accelerate writes it, with `mixed_precision=precision`."""
    accelerator = ctx.accelerator(mixed_precision=precision)
    opt = accelerator.prepare_optimizer(torch.optim.AdamW(list(p.values()), lr=cfg.amp_lr, fused=True))

    def step(tokens):
        with accelerator.autocast():
            loss = lm_loss(p, tokens, cfg.amp_layers)
        opt.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        opt.step()  # the prepared optimizer: GradScaler step and update for fp16
        return loss
    return step


def amp_train(cfg, ctx, arm: str, k: int) -> dict:
    """Train the LM under one arm ("fp16", "accelerate-fp16", ...): median step time, peak
    allocated memory, final loss."""
    dev, recipe = ctx.device, arm.removeprefix("accelerate-")
    pool, p = lm_init(cfg, ctx, k)
    with _tf32(arm == "tf32"):
        step = (accelerate_step if arm.startswith("accelerate-") else hand_step)(cfg, ctx, recipe, p)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        times, losses = [], []
        for s in range(cfg.amp_warmup + cfg.amp_steps):
            _sync(dev)
            t0 = time.perf_counter()
            loss = step(pool[s].long())
            _sync(dev)
            times.append(time.perf_counter() - t0)
            losses.append(loss.detach())
    losses = torch.stack(losses).float().cpu()
    for s in range(0, len(losses), 10):
        ctx.log(arm=f"amp-{arm}", seed=k, step=s, lm_loss=losses[s])
    timed, final = sorted(times[cfg.amp_warmup:]), losses[-20:].mean().item()
    peak = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else math.nan
    return {"step_ms": 1e3 * timed[len(timed) // 2], "peak_mib": peak, "final_loss": final,
            "log_final_loss": math.log(final)}


@contextmanager
def _tf32(on: bool):
    """TF32 matmuls and convolutions on for the TF32 arm only, off for the others (restored after)."""
    mm, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = mm.allow_tf32, cudnn.allow_tf32
    mm.allow_tf32 = cudnn.allow_tf32 = on
    try:
        yield
    finally:
        mm.allow_tf32, cudnn.allow_tf32 = before


def _sync(dev) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def measure(cfg, ctx) -> dict:
    """{"amp-<arm>": {metric: [per seed]}}, one resumable unit per arm."""
    out = {}
    for arm in AMP_ARMS:
        rows = ctx.unit(f"amp-{arm}", lambda arm=arm: [amp_train(cfg, ctx, arm, k) for k in ctx.seeds])
        out[f"amp-{arm}"] = {key: [r[key] for r in rows] for key in rows[0]}
    return out
