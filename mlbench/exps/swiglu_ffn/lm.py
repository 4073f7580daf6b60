"""A character MLP language model whose blocks are the FFN under test; M models stacked.

    e = [E[c_{t−T}], …, E[c_{t−1}]]           (T·e_dim)   char embeddings of the context, concatenated
    h₀ = e W_in                                (d)
    h_{l+1} = h_l + FFN_arm(LN(h_l))           l = 0..L−1, pre-LN residual blocks
    p(c_t | context) = softmax(LN(h_L) W_out)

No biases, LayerNorm without gain or bias: the FFN is the only place the arms differ. Shared
weights (E, W_in, W_out) are stacked (M, ...) over arms × seeds; each arm's FFN weights are
(S, L, ...) since the widths differ (d_ff vs ⅔·d_ff). Seed k's draws are shared by every arm.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mlbench.exps.swiglu_ffn.ffn import ffn, ffn_params, stacked_init


def init_params(cfg, grid, vocab: int, gens: list) -> tuple[dict, dict]:
    """(shared {name: (M, ...)}, ffn {arm: {name: (S, L, ...)}}) with N(0, 1/fan_in) weights."""
    T, E, d, L, F_ = cfg.context, cfg.embed_dim, cfg.d_model, cfg.n_layers, cfg.d_ff
    per_seed = [{
        "embed": torch.randn(vocab, E, generator=g),
        "w_in": torch.randn(T * E, d, generator=g) / math.sqrt(T * E),
        "w_out": torch.randn(d, vocab, generator=g) / math.sqrt(d),
        "z_w1": torch.randn(L, d, F_, generator=g),
        "z_v": torch.randn(L, d, F_, generator=g),
        "z_w2": torch.randn(L, F_, d, generator=g),
    } for g in gens]
    return stacked_init(grid, per_seed, F_, L)


def param_count(cfg, arm: str, vocab: int) -> int:
    """Weights of one model of `arm`: embedding, W_in, L FFN blocks, W_out."""
    return (vocab * cfg.embed_dim + cfg.context * cfg.embed_dim * cfg.d_model
            + cfg.n_layers * ffn_params(arm, cfg.d_model, cfg.d_ff) + cfg.d_model * vocab)


def predict(cfg, shared: dict, ffns: dict, grid, windows):
    """(logits (M, B, V), targets (M, B)) for windows (M, B, T+1): the last char from the T before it."""
    contexts, targets = windows[..., :-1], windows[..., -1]
    emb = shared["embed"]  # (M, V, E)
    M, V, E = emb.shape
    offsets = (torch.arange(M, device=windows.device) * V)[:, None, None]
    e = F.embedding(contexts + offsets, emb.reshape(M * V, E))  # (M, B, T, E)
    h = e.flatten(2) @ shared["w_in"]  # (M, B, d)
    for layer in range(next(iter(ffns.values()))["w2"].shape[1]):
        x = grid.by_arm(F.layer_norm(h, h.shape[-1:]))  # {arm: (S, B, d)}
        h = h + torch.cat([ffn(arm, x[arm], ffns[arm], layer) for arm in grid.arms])
    return F.layer_norm(h, h.shape[-1:]) @ shared["w_out"], targets


def predictions_per_window(cfg) -> int:
    """Predicted chars per window of T+1: the last one."""
    return 1
