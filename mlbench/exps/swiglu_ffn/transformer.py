"""A small causal character Transformer (the full profile) whose FFN sub-layers are the arm's.

    h₀ = E[c_t] + P_t                                    token + learned position embedding
    h ← h + Attn(LN(h)),  Attn(x) = softmax(QKᵀ/√d_head + causal mask) V W_o,  [Q K V] = x W_qkv
    h ← h + FFN_arm(LN(h))                               l = 0..L−1, pre-LN
    p(c_{t+1} | c_≤t) = softmax(LN(h) W_out)             every position predicts the next char

No biases, LayerNorm without gain or bias (T5-like). Shared weights (M, ...) over arms × seeds,
each arm's FFN (S, L, ...); same init rule as the MLP model: N(0, 1/fan_in), embeddings N(0, 1),
W_o and W₂ additionally ÷ √(2L).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mlbench.exps.swiglu_ffn.ffn import ffn, ffn_params, stacked_init


def init_params(cfg, grid, vocab: int, gens: list) -> tuple[dict, dict]:
    """(shared {name: (M, ...)}, ffn {arm: {name: (S, L, ...)}})."""
    T, d, L, F_ = cfg.context, cfg.d_model, cfg.n_layers, cfg.d_ff
    per_seed = [{
        "embed": torch.randn(vocab, d, generator=g),
        "pos": torch.randn(T, d, generator=g),
        "w_qkv": torch.randn(L, d, 3 * d, generator=g) / math.sqrt(d),
        "w_o": torch.randn(L, d, d, generator=g) / math.sqrt(d * 2 * L),
        "w_out": torch.randn(d, vocab, generator=g) / math.sqrt(d),
        "z_w1": torch.randn(L, d, F_, generator=g),
        "z_v": torch.randn(L, d, F_, generator=g),
        "z_w2": torch.randn(L, F_, d, generator=g),
    } for g in gens]
    return stacked_init(grid, per_seed, F_, L)


def param_count(cfg, arm: str, vocab: int) -> int:
    """Weights of one model of `arm`: embeddings, L x (attention 4d² + FFN), W_out."""
    d = cfg.d_model
    return (vocab * d + cfg.context * d + cfg.n_layers * (4 * d * d + ffn_params(arm, d, cfg.d_ff))
            + d * vocab)


def attention(x, w_qkv, w_o, n_heads: int):
    """Causal multi-head self-attention for x (M, B, T, d) with per-model weights (M, d, 3d), (M, d, d)."""
    M, B, T, d = x.shape
    qkv = (x.reshape(M, B * T, d) @ w_qkv).view(M * B, T, 3, n_heads, d // n_heads)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (M·B, H, T, d_head)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # softmax(qkᵀ/√d_head + mask) v
    return (out.transpose(1, 2).reshape(M, B * T, d) @ w_o).view(M, B, T, d)


def predict(cfg, shared: dict, ffns: dict, grid, windows):
    """(logits (M, B·T, V), targets (M, B·T)) for windows (M, B, T+1): each char predicts the next."""
    inputs, targets = windows[..., :-1], windows[..., 1:]
    emb = shared["embed"]  # (M, V, d)
    M, V, d = emb.shape
    offsets = (torch.arange(M, device=windows.device) * V)[:, None, None]
    h = F.embedding(inputs + offsets, emb.reshape(M * V, d)) + shared["pos"][:, None]  # (M, B, T, d)
    B, T = inputs.shape[1:]
    for layer in range(shared["w_qkv"].shape[1]):
        h = h + attention(F.layer_norm(h, (d,)), shared["w_qkv"][:, layer], shared["w_o"][:, layer], cfg.n_heads)
        x = grid.by_arm(F.layer_norm(h, (d,)).reshape(M, B * T, d))  # {arm: (S, B·T, d)}
        h = h + torch.cat([ffn(arm, x[arm], ffns[arm], layer) for arm in grid.arms]).view(M, B, T, d)
    return F.layer_norm(h, (d,)).reshape(M, B * T, d) @ shared["w_out"], targets.reshape(M, B * T)


def predictions_per_window(cfg) -> int:
    """Predicted chars per window of T+1: all T."""
    return cfg.context
