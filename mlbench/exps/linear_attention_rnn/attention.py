"""Softmax attention, linear attention in its three forms, and one decode step of each.

Notation (Katharopoulos et al. 2020, §3): queries, keys, values q_i, k_j, v_j; the feature map
φ(x) = elu(x) + 1 (positive, so the normaliser never vanishes); ε the normaliser's guard.

- Softmax, causal:  out_i = Σ_{j≤i} exp(q_i·k_j/√d) v_j / Σ_{j≤i} exp(q_i·k_j/√d)
- Linear, causal:   out_i = φ(q_i)ᵀ S_i / (φ(q_i)ᵀ z_i + ε),
                    S_i = Σ_{j≤i} φ(k_j) v_jᵀ  (d × d_v),  z_i = Σ_{j≤i} φ(k_j)
- Linear, non-causal: out = φ(Q)(φ(K)ᵀV) / (φ(Q)(φ(K)ᵀ1) + ε): O(N·d·d_v), not O(N²·d)

Softmax scales q·k by 1/√d; linear attention applies φ to raw q and k (the reference
implementation's convention, kept here). Tensors are (..., N, d): any leading batch/head dims.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

EPS = 1e-6  # the reference implementation's default; the same ε in every linear form compared


def phi(x):
    """φ(x) = elu(x) + 1 > 0."""
    return F.elu(x) + 1


def softmax_causal(q, k, v):
    """Masked softmax attention with the N×N score matrix materialised: O(N²·d) time, O(N²) memory."""
    n, d = q.shape[-2], q.shape[-1]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)  # (..., N, N)
    future = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(-1) @ v


def linear_masked(q, k, v, eps: float = EPS):
    """Causal linear attention in its quadratic (masked) form: A = (φQ φKᵀ) ⊙ tril, out = AV / (A1 + ε).
    O(N²): the reference the fast forms are checked against."""
    a = (phi(q) @ phi(k).transpose(-1, -2)).tril()  # (..., N, N)
    return (a @ v) / (a.sum(-1, keepdim=True) + eps)


def linear_noncausal(q, k, v, eps: float = EPS, order: str = "right"):
    """Non-causal linear attention. order="right": φQ(φKᵀV), O(N·d·d_v); order="left": (φQφKᵀ)V,
    O(N²·d). Associativity of the matrix product makes them equal."""
    fq, fk = phi(q), phi(k)
    if order == "left":
        a = fq @ fk.transpose(-1, -2)  # (..., N, N)
        return (a @ v) / (a.sum(-1, keepdim=True) + eps)
    kv = fk.transpose(-1, -2) @ v  # (..., d, d_v): the N-independent summary
    z = fk.sum(-2, keepdim=True)  # (..., 1, d)
    return (fq @ kv) / ((fq * z).sum(-1, keepdim=True) + eps)


def linear_chunked(q, k, v, chunk: int = 64, eps: float = EPS):
    """Causal linear attention, parallel within chunks of C positions, recurrent across them:
    out_c = [(φQ_c φK_cᵀ ⊙ tril) V_c + φQ_c S] / [(φQ_c φK_cᵀ ⊙ tril) 1 + φQ_c z + ε], then
    S += φK_cᵀ V_c, z += Σ φk. O(N·C·d + N·d·d_v) time; never builds the N×d×d_v cumsum.
    Autograd-friendly (no in-place updates)."""
    fq, fk = phi(q), phi(k)
    *lead, n, d = q.shape
    state = q.new_zeros(*lead, d, v.shape[-1])  # S: (..., d, d_v)
    norm = q.new_zeros(*lead, 1, d)  # z: (..., 1, d)
    tril = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    outs = []
    for i in range(0, n, chunk):
        qc, kc, vc = fq[..., i:i + chunk, :], fk[..., i:i + chunk, :], v[..., i:i + chunk, :]
        c = qc.shape[-2]
        a = (qc @ kc.transpose(-1, -2)).masked_fill(~tril[:c, :c], 0.0)  # (..., C, C)
        num = a @ vc + qc @ state
        den = a.sum(-1, keepdim=True) + (qc * norm).sum(-1, keepdim=True) + eps
        outs.append(num / den)
        state = state + kc.transpose(-1, -2) @ vc
        norm = norm + kc.sum(-2, keepdim=True)
    return torch.cat(outs, -2)


# ---------------------------------------------------------------- the RNN view (§3.4)
def rnn_init(lead: tuple, d: int, d_v: int, dtype=torch.float32, device="cpu"):
    """The recurrent state: S (..., d, d_v) and z (..., d), zeros. d·d_v + d numbers per head,
    whatever the position."""
    return torch.zeros(*lead, d, d_v, dtype=dtype, device=device), torch.zeros(*lead, d, dtype=dtype, device=device)


def rnn_step(q_t, k_t, v_t, state, norm, eps: float = EPS):
    """One step at position t, in place: S ← S + φ(k_t)v_tᵀ, z ← z + φ(k_t);
    out_t = φ(q_t)ᵀS / (φ(q_t)ᵀz + ε). q_t, k_t (..., d), v_t (..., d_v) -> out_t (..., d_v)."""
    fk = phi(k_t)
    state.add_(fk.unsqueeze(-1) * v_t.unsqueeze(-2))
    norm.add_(fk)
    fq = phi(q_t)
    num = (fq.unsqueeze(-2) @ state).squeeze(-2)
    return num / ((fq * norm).sum(-1, keepdim=True) + eps)


def recurrence(q, k, v, eps: float = EPS):
    """Causal linear attention run as an RNN, one position after another: (out, (S, z))."""
    state, norm = rnn_init(q.shape[:-2], q.shape[-1], v.shape[-1], q.dtype, q.device)
    outs = [rnn_step(q[..., t, :], k[..., t, :], v[..., t, :], state, norm, eps) for t in range(q.shape[-2])]
    return torch.stack(outs, -2), (state, norm)


def softmax_decode_step(q_t, k_t, v_t, k_cache, v_cache, t: int):
    """One softmax decode step at position t over a pre-allocated KV cache (B, H, T, d):
    write k_t, v_t at slot t, attend over slots 0..t (torch's fused kernel). O(t·d) time."""
    k_cache[:, :, t:t + 1] = k_t
    v_cache[:, :, t:t + 1] = v_t
    return F.scaled_dot_product_attention(q_t, k_cache[:, :, :t + 1], v_cache[:, :, :t + 1])


# ---------------------------------------------------------------- counted costs of one step
def step_costs(t: int, heads: int, d: int, d_v: int) -> dict[str, int]:
    """Per layer, for the token generated at position t (counted, not timed): numbers kept between
    steps and FLOPs (2 per multiply-add) of the step's products; the softmax step attends over
    the t + 1 slots 0..t. Softmax: cache H·(t+1)·(d + d_v), scores q·k and weighted sum of v
    2·H·(t+1)·(d + d_v). RNN: state H·(d·d_v + d), update φ(k)vᵀ into S and read-out φ(q)ᵀS,
    2·H·d·d_v each."""
    slots = t + 1
    return {"kv_cache_numbers": heads * slots * (d + d_v), "rnn_state_numbers": heads * (d * d_v + d),
            "softmax_flops": 2 * heads * slots * (d + d_v), "rnn_flops": 4 * heads * d * d_v}


def max_abs_err(a, b) -> list[float]:
    """max |a − b| per leading index (one value per seed of a stacked (S, ...) tensor)."""
    return (a - b).abs().flatten(1).amax(1).tolist()
