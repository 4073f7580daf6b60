"""Scaled dot-product attention, its softmax statistics at init, and the recall task it learns."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def init_statistics(d: int, stats_queries: int, stats_keys: int, gen) -> dict[str, dict[str, float]]:
    """Softmax statistics for q, k ~ N(0, I_d), scaled (1/sqrt d) and unscaled.

    For p = softmax(logits): entropy, max p, logit variance, and ‖J‖_F of the softmax Jacobian
    J = diag(p) − ppᵀ, with ‖J‖_F² = Σp² − 2Σp³ + (Σp²)²."""
    q = torch.randn(stats_queries, 1, d, generator=gen)  # (Q, 1, d)
    k = torch.randn(stats_queries, stats_keys, d, generator=gen)  # (Q, T, d)
    raw = (q @ k.transpose(1, 2)).squeeze(1).double()  # (Q, T); softmax statistics in float64
    out = {}
    for name, logits in (("scaled", raw / math.sqrt(d)), ("unscaled", raw)):
        p = torch.softmax(logits, dim=-1)
        entropy = -(p * p.clamp_min(1e-300).log()).sum(-1)
        p2 = (p**2).sum(-1)
        jac = (p2 - 2 * (p**3).sum(-1) + p2**2).clamp_min(0).sqrt()
        out[name] = {"logit_var": logits.var().item(), "entropy": entropy.mean().item(),
                     "max_prob": p.max(-1).values.mean().item(), "jacobian_norm": jac.mean().item()}
    return out


def recall_batch(cfg, batch: int, gen):
    """Associative recall: P distinct keys with random values, and a query among them.

    Returns pair indices (1, B, P) into the n_keys x n_values table, query keys (1, B), targets (1, B).
    """
    keys = torch.rand(1, batch, cfg.n_keys, generator=gen).argsort(-1)[..., : cfg.n_pairs]
    values = torch.randint(cfg.n_values, (1, batch, cfg.n_pairs), generator=gen)
    pick = torch.randint(cfg.n_pairs, (1, batch, 1), generator=gen)
    query = keys.gather(-1, pick).squeeze(-1)
    target = values.gather(-1, pick).squeeze(-1)
    return keys * cfg.n_values + values, query, target


def recall_batches(cfg, grid, gens: list, batch: int, device):
    """One batch per seed (each seed its own stream), shared by every arm: 3 tensors (M, B, ...)."""
    parts = [recall_batch(cfg, batch, g) for g in gens]  # per seed: (1, B, ...) x 3
    return [grid.repeat(torch.cat([p[i] for p in parts])).to(device) for i in range(3)]


def init_params(cfg, d: int, grid, gens: list) -> dict:
    """Stacked parameters (M, ...): seed k's draw shared by every arm; T5 folds 1/sqrt(d) into W_q."""
    D = cfg.d_model
    proj_std = 1.0 / math.sqrt(D) if cfg.init == "unit" else 1.0 / math.sqrt(3 * D)
    per_seed = [{
        "emb_key": torch.randn(cfg.n_keys, D, generator=g),
        "emb_value": torch.randn(cfg.n_values, D, generator=g),
        "w_q": torch.randn(D, d, generator=g) * proj_std,
        "w_k": torch.randn(D, d, generator=g) * proj_std,
        "w_v": torch.randn(D, d, generator=g) * proj_std,
        "w_o": torch.randn(d, cfg.n_values, generator=g) / math.sqrt(d),
        "b_o": torch.zeros(cfg.n_values),
    } for g in gens]
    params = {}
    for name in per_seed[0]:
        seeds = torch.stack([p[name] for p in per_seed])  # (S, ...)
        if name == "w_q":
            params[name] = grid.build(lambda arm: seeds / math.sqrt(d) if arm == "t5-init" else seeds.clone())
        else:
            params[name] = grid.repeat(seeds)
    return params


def logit_scales(cfg, grid, d: int, device):
    """Per model: 1/sqrt(d) (scaled; also 'unscaled' under the negative control), else 1."""
    unscaled = 1.0 / math.sqrt(d) if cfg.negative_control else 1.0
    return grid.per_arm({"scaled": 1.0 / math.sqrt(d), "unscaled": unscaled, "t5-init": 1.0}, device=device)


def forward(params: dict, pairs, query, logit_scale):
    """Logits (M, B, n_values) and attention probabilities (M, B, P) for M stacked models."""
    ek, ev = params["emb_key"], params["emb_value"]  # (M, nk, D), (M, nv, D)
    D = ek.shape[-1]
    pair_tok = F.layer_norm(ek[:, :, None, :] + ev[:, None, :, :], (D,)).flatten(1, 2)  # (M, nk*nv, D)
    k_tab, v_tab = pair_tok @ params["w_k"], pair_tok @ params["w_v"]  # (M, nk*nv, d)
    q_tab = F.layer_norm(ek, (D,)) @ params["w_q"]  # (M, nk, d)
    M, B, P = pairs.shape
    d = k_tab.shape[-1]
    flat = pairs.reshape(M, B * P, 1).expand(M, B * P, d)
    k = k_tab.gather(1, flat).view(M, B, P, d)
    v = v_tab.gather(1, flat).view(M, B, P, d)
    q = q_tab.gather(1, query.reshape(M, B, 1).expand(M, B, d))  # (M, B, d)
    scores = torch.einsum("mbd,mbpd->mbp", q, k) * logit_scale[:, None, None]
    attn = scores.softmax(-1)
    out = torch.einsum("mbp,mbpd->mbd", attn, v)
    return out @ params["w_o"] + params["b_o"][:, None, :], attn


def attention_entropy(attn):
    """Mean entropy (nats) of each model's attention rows: (M, B, P) -> (M,)."""
    return (-(attn * attn.clamp_min(1e-30).log()).sum(-1)).mean(1)


def train_step(params: dict, opt, batch, scale):
    """One optimiser step on every stacked model; returns the per-model loss (M,)."""
    pairs, query, target = batch
    logits, _ = forward(params, pairs, query, scale)
    M = logits.shape[0]
    per_model = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(M, -1).mean(1)
    opt.zero_grad(set_to_none=True)
    per_model.sum().backward()  # models share no parameters: each gets its own gradient
    opt.step()
    return per_model.detach()
