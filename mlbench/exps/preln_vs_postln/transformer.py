"""Post-LN and Pre-LN Transformer layers, M models stacked, and the FFN gradients at initialisation.

    Post-LN (Vaswani et al. 2017):  u = LN(x + Attn(x)),      x′ = LN(u + FFN(u))
    Pre-LN  (Xiong et al. 2020):    u = x + Attn(LN(x)),      x′ = u + FFN(LN(u)),   LN before the head
    FFN(u) = ReLU(u W¹ + b¹) W² + b²,   Attn(x) = softmax(QKᵀ/√d_head + causal mask) V W_o,  [Q K V] = x W_in
    ℓ = mean over the B·T positions of −ln softmax(h W_head + b_head)[next token]

Weights are stored x @ W, layer-major (L, M, ...), so that layer l's (M, ...) block is one bmm.
The attention biases are zero under both inits (nn.MultiheadAttention zeroes them) and left out.

Init, as U(−b, b) bounds (one uniform draw z ~ U(−1, 1) per seed, scaled per init, so the two
inits of a seed are paired):
    xavier:  b = √(6 / (fan_in + fan_out)) on every weight, biases 0            (Theorem 1)
    default: nn.TransformerEncoderLayer's: W_in Xavier (its MultiheadAttention's own init),
             W_o, W¹, W², W_head kaiming_uniform(a = √5): b = 1/√fan_in (variance 1/(3·fan_in)),
             biases b¹, b², b_head U(±1/√fan_in)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LAYER_WEIGHTS = ("w_in", "w_out", "w1", "b1", "w2", "b2")  # per layer, stored (L, ...) per seed


def bounds(init: str, d: int, d_ff: int, vocab: int) -> dict[str, float]:
    """The U(−b, b) bound of every tensor under `init` (see the module docstring)."""
    xavier = lambda fan_in, fan_out: math.sqrt(6.0 / (fan_in + fan_out))
    if init == "xavier":
        return {"w_in": xavier(d, 3 * d), "w_out": xavier(d, d), "w1": xavier(d, d_ff), "b1": 0.0,
                "w2": xavier(d_ff, d), "b2": 0.0, "w_head": xavier(d, vocab), "b_head": 0.0}
    if init == "default":
        return {"w_in": xavier(d, 3 * d), "w_out": 1 / math.sqrt(d), "w1": 1 / math.sqrt(d), "b1": 1 / math.sqrt(d),
                "w2": 1 / math.sqrt(d_ff), "b2": 1 / math.sqrt(d_ff), "w_head": 1 / math.sqrt(d),
                "b_head": 1 / math.sqrt(d)}
    raise ValueError(f"unknown init {init!r}")


def draw(d: int, d_ff: int, vocab: int, L: int, embed_std: float, gen) -> dict:
    """One seed's draws: z ~ U(−1, 1) for every weight and bias (scaled by `bounds` later), and the
    token embedding N(0, embed_std²) itself."""
    u = lambda *shape: torch.rand(*shape, generator=gen) * 2 - 1
    return {"w_in": u(L, d, 3 * d), "w_out": u(L, d, d), "w1": u(L, d, d_ff), "b1": u(L, d_ff),
            "w2": u(L, d_ff, d), "b2": u(L, d), "w_head": u(d, vocab), "b_head": u(vocab),
            "embed": torch.randn(vocab, d, generator=gen) * embed_std}


def bank(per_seed: list[dict]) -> dict:
    """Seeds' draws stacked: layer weights (L, S, ...), the rest (S, ...)."""
    out = {}
    for name in per_seed[0]:
        stacked = torch.stack([p[name] for p in per_seed])  # (S, ...)
        out[name] = stacked.transpose(0, 1).contiguous() if name in LAYER_WEIGHTS else stacked
    return out


def members(draws: dict, rows, scales: dict) -> dict:
    """Stacked weights of some members: seed rows (m,) into the bank, each tensor x its per-member
    bound (m,). Layer weights (L, m, ...), the rest (m, ...)."""
    out = {}
    for name, z in draws.items():
        if name in LAYER_WEIGHTS:
            out[name] = z[:, rows] * scales[name].view(1, -1, *[1] * (z.dim() - 2))
        elif name == "embed":
            out[name] = z[rows]
        else:
            out[name] = z[rows] * scales[name].view(-1, *[1] * (z.dim() - 1))
    return out


def layer_norm(x):
    """LN over the features, gain 1 and bias 0 (LayerNorm at init)."""
    return F.layer_norm(x, x.shape[-1:])


def residual(x, sublayer, pre):
    """Post-LN LN(x + f(x)) for members where `pre` (m, 1, 1) is False, Pre-LN x + f(LN(x)) where True."""
    if bool(pre.all()):
        return x + sublayer(layer_norm(x))
    if not bool(pre.any()):
        return layer_norm(x + sublayer(x))
    y = x + sublayer(torch.where(pre, layer_norm(x), x))
    return torch.where(pre, y, layer_norm(y))


def attention(x, w_in, w_out, n_heads: int, batch: int):
    """Causal multi-head self-attention of x (m, B·T, d) with weights (m, d, 3d), (m, d, d)."""
    m, N, d = x.shape
    T = N // batch
    q, k, v = (x @ w_in).view(m * batch, T, 3, n_heads, d // n_heads).permute(2, 0, 3, 1, 4)  # (m·B, H, T, dh) each
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return out.transpose(1, 2).reshape(m, N, d) @ w_out


def ffn(x, w1, b1, w2, b2):
    """ReLU(x W¹ + b¹) W² + b² for x (m, N, d)."""
    return torch.relu(x @ w1 + b1[:, None]) @ w2 + b2[:, None]


def hidden(p: dict, inputs, pre, n_heads: int):
    """The last hidden states (m, B·T, d) of token ids (m, B, T): L layers, then Pre-LN's final LN."""
    emb = p["embed"]  # (m, V, d)
    m, V, d = emb.shape
    B = inputs.shape[1]
    offsets = (torch.arange(m, device=inputs.device) * V)[:, None, None]
    h = F.embedding(inputs + offsets, emb.reshape(m * V, d)).reshape(m, -1, d)
    for l in range(p["w2"].shape[0]):
        h = residual(h, lambda x: attention(x, p["w_in"][l], p["w_out"][l], n_heads, B), pre)
        h = residual(h, lambda x: ffn(x, p["w1"][l], p["b1"][l], p["w2"][l], p["b2"][l]), pre)
    return torch.where(pre, layer_norm(h), h)


def loss_per_model(p: dict, tokens, pre, n_heads: int):
    """Mean next-token cross-entropy (nats) per model for tokens (m, B, T+1): (m,)."""
    inputs, targets = tokens[..., :-1], tokens[..., 1:]
    logits = hidden(p, inputs, pre, n_heads) @ p["w_head"] + p["b_head"][:, None]  # (m, B·T, V)
    m = logits.shape[0]
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(m, -1).mean(1)


def w2_gradient_norms(p: dict, tokens, pre, n_heads: int):
    """‖∂ℓ/∂W²_l‖_F of every layer l of every model, (m, L), and the loss (m,). Only W² asks for a
    gradient: the backward pass computes nothing else that is not needed to reach it."""
    w2 = p["w2"].requires_grad_(True)
    loss = loss_per_model(p, tokens, pre, n_heads)
    (grad,) = torch.autograd.grad(loss.sum(), w2)  # models share nothing: each gets its own gradient
    return torch.linalg.vector_norm(grad.double(), dim=(-2, -1)).T, loss.detach()
