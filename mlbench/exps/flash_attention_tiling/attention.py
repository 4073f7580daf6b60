"""Attention forward passes: the plain materialised one, FlashAttention's tiled one with the online
softmax, its two ablations, torch's fused kernel, and the float64 reference.

Notation (Dao et al. 2022, §3.1, Algorithm 1; one head, no mask, no dropout):

    S = τ·Q Kᵀ  (n × n, τ = logit_scale / √d)      P = softmax(S) row-wise      O = P V

Tiled, for a query block Q_i (B_q rows), over key/value blocks K_j, V_j (B_k rows), starting from
m = −∞, l = 0, acc = 0 (each a B_q-row statistic):

    S_ij = τ·Q_i K_jᵀ                     (B_q × B_k: the only score tile alive)
    m'   = max(m, rowmax(S_ij))
    P̃    = exp(S_ij − m')
    c    = exp(m − m')                     (the rescaling: earlier sums were taken against m)
    l   ← c·l + rowsum(P̃)
    acc ← c·acc + P̃ V_j
    m   ← m'

and finally O_i = acc / l and the logsumexp L_i = m + log l, the O(n) statistic FlashAttention keeps
for its backward pass. Extra memory: O(n·d) for the output and L, O(B_q·B_k + B_q·d) for one tile's
work, instead of the two n × n matrices S and P of the plain form.

Ablations (the science of "why the rescaling"): `rescale=False` drops c (each block's sum is taken
against a different max, so blocks are weighted wrongly unless the maxima agree); `subtract_max=False`
keeps m = 0, i.e. exp(S) unshifted, which is exact until a logit passes ln(FLT_MAX) ≈ 88.7 in float32.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


def softmax_scale(head_dim: int, logit_scale: float) -> float:
    """τ = logit_scale / √d (logit_scale 1: the usual attention; 3, 30: stress the max subtraction)."""
    return logit_scale / math.sqrt(head_dim)


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tau: float) -> torch.Tensor:
    """Plain PyTorch attention, as the FlashAttention tests' `attention_ref` writes it: S and P are
    materialised (n × n each). q, k, v: (..., n, d)."""
    s = (q * tau) @ k.transpose(-1, -2)  # (..., n, n)
    p = torch.softmax(s, dim=-1)  # (..., n, n), S still alive here: the peak is S and P together
    del s
    return p @ v  # (..., n, d)


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(O, L) in float64 from the same (fp32) inputs: the "exact" result every form is scored against."""
    q, k, v = q.double(), k.double(), v.double()
    s = (q * tau) @ k.transpose(-1, -2)  # (..., n, n) float64
    return torch.softmax(s, dim=-1) @ v, torch.logsumexp(s, dim=-1)


def tiled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tau: float, block_q: int, block_k: int,
                    *, rescale: bool = True, subtract_max: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(O, L): Algorithm 1's forward pass, one query block at a time (see the module docstring).

    q, k, v: (..., n, d); O (..., n, d) and L (..., n) are the only n-sized results. The last blocks
    may be shorter than block_q / block_k."""
    n = q.shape[-2]
    out = torch.empty_like(q)  # (..., n, d)
    lse = torch.empty(q.shape[:-1], dtype=q.dtype, device=q.device)  # (..., n)
    for i in range(0, n, block_q):
        q_i = q[..., i:i + block_q, :] * tau  # (..., B_q, d)
        rows = q_i.shape[:-1] + (1,)
        m = torch.full(rows, -math.inf if subtract_max else 0.0, dtype=q.dtype, device=q.device)  # (..., B_q, 1)
        l = torch.zeros(rows, dtype=q.dtype, device=q.device)  # noqa: E741  (the paper's ℓ)
        acc = torch.zeros_like(q_i)  # (..., B_q, d)
        for j in range(0, n, block_k):
            s_ij = q_i @ k[..., j:j + block_k, :].transpose(-1, -2)  # (..., B_q, B_k)
            m_new = torch.maximum(m, s_ij.amax(dim=-1, keepdim=True)) if subtract_max else m
            p_ij = torch.exp(s_ij - m_new)  # (..., B_q, B_k)
            if rescale:
                c = torch.exp(m - m_new)  # (..., B_q, 1); 0 for the first block (m = −∞)
                l = c * l + p_ij.sum(dim=-1, keepdim=True)  # noqa: E741
                acc = c * acc + p_ij @ v[..., j:j + block_k, :]
            else:  # the ablation: sums taken against different maxima are added as if they agreed
                l = l + p_ij.sum(dim=-1, keepdim=True)  # noqa: E741
                acc = acc + p_ij @ v[..., j:j + block_k, :]
            m = m_new
        out[..., i:i + block_q, :] = acc / l
        lse[..., i:i + block_q] = (m + torch.log(l)).squeeze(-1)
    return out, lse


FUSED = (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION)


def fused_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, tau: float,
                    backends=FUSED) -> torch.Tensor:
    """torch's fused kernel (`scaled_dot_product_attention`), an independent tiled implementation:
    the flash backend (on a CPU torch's own blocked online softmax), else the memory-efficient one
    (CUDA's flash kernel takes no fp32; the memory-efficient one tiles the same way)."""
    with sdpa_kernel(list(backends)):
        return F.scaled_dot_product_attention(q, k, v, scale=tau)


def max_abs_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """max |out − ref| over every element, in float64; NaN if `out` has a non-finite entry."""
    if not bool(torch.isfinite(out).all()):
        return math.nan
    return float((out.double() - ref).abs().max())


def rounding_floor(ref: torch.Tensor, dtype: torch.dtype) -> float:
    """2·max |fl(O_ref) − O_ref|: twice the error of merely storing the exact result in `dtype`, the
    absolute slack newer FlashAttention tests add to the 2× rule (their `fwd_atol`)."""
    return 2.0 * float((ref.to(dtype).double() - ref).abs().max())
