"""Real mixed precision on a GPU (full profile): a small causal LM trained under torch.autocast.

Four precisions on the same model and token stream: fp32 (TF32 off), TF32, bf16 autocast, and
fp16 autocast + torch.amp.GradScaler; each gives its median step time, peak allocated memory
(torch.cuda.max_memory_allocated) and final loss. Self-contained: it shares nothing with the
emulated CPU recipe but the config, and it needs CUDA (the face's `check` refuses it elsewhere).
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from mlbench.exps.fp16_mixed import AMP_PRECISIONS


def lm_tokens(cfg, gen, n_batches: int):
    """(n, B, T+1) int32 tokens of a random Markov chain: each token has 4 random successors (entropy <= ln 4)."""
    succ = torch.randint(cfg.amp_vocab, (cfg.amp_vocab, 4), generator=gen)
    n, T = n_batches * cfg.amp_batch, cfg.amp_seq_len
    choice = torch.randint(4, (n, T), generator=gen)
    tok = [torch.randint(cfg.amp_vocab, (n,), generator=gen)]
    for t in range(T):
        tok.append(succ[tok[-1], choice[:, t]])
    return torch.stack(tok, 1).view(n_batches, cfg.amp_batch, T + 1).int()


def lm_loss(p: dict, tokens, layers: int):
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


def amp_train(cfg, ctx, precision: str, k: int) -> dict:
    """Train the LM under one precision: median step time, peak allocated memory, final loss."""
    D, mm = cfg.amp_d_model, torch.backends.cuda.matmul
    shapes = {"emb": (cfg.amp_vocab, D), "pos": (cfg.amp_seq_len, D)}
    for l in range(cfg.amp_layers):
        shapes |= {f"qkv{l}": (3 * D, D), f"proj{l}": (D, D), f"fc{l}": (4 * D, D), f"out{l}": (D, 4 * D)}
    gen, tf32_before = ctx.generator("amp", k), mm.allow_tf32
    pool = lm_tokens(cfg, gen, cfg.amp_warmup + cfg.amp_steps).to(ctx.device)  # a fresh batch every step
    p = {n: (torch.randn(*s, generator=gen) * 0.02).to(ctx.device).requires_grad_(True) for n, s in shapes.items()}
    opt = torch.optim.AdamW(list(p.values()), lr=cfg.amp_lr, fused=True)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    mm.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    try:
        for step in range(cfg.amp_warmup + cfg.amp_steps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
                loss = lm_loss(p, pool[step].long(), cfg.amp_layers)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            losses.append(loss.detach())
    finally:
        mm.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32_before
    losses = torch.stack(losses).float().cpu()
    for step in range(0, len(losses), 10):
        ctx.log(arm=f"amp-{precision}", seed=k, step=step, lm_loss=losses[step])
    timed, final = sorted(times[cfg.amp_warmup:]), losses[-20:].mean().item()
    return {"step_ms": 1e3 * timed[len(timed) // 2], "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
            "final_loss": final, "log_final_loss": math.log(final)}


def measure(cfg, ctx) -> dict:
    """{"amp-<precision>": {metric: [per seed]}}, one resumable unit per precision."""
    out = {}
    for prec in AMP_PRECISIONS:
        rows = ctx.unit(f"amp-{prec}", lambda prec=prec: [amp_train(cfg, ctx, prec, k) for k in ctx.seeds])
        out[f"amp-{prec}"] = {key: [r[key] for r in rows] for key in rows[0]}
    return out
