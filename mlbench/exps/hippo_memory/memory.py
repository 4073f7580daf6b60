"""Memories of state size N run over a batch of signals: c_k = Ā c_{k−1} + B̄ f_k from c_0 = 0.

The recurrence is linear in f, so it is never run step by step: LTI memories use their kernel K
(c_L = K f, built by doubling); LegS, whose step changes with k, composes its affine steps as a
balanced tree of batched matmuls (log L large ops instead of L tiny ones). Equal-size baselines
(an EMA bank, a random stable A, the last N samples) are built here too.
"""

from __future__ import annotations

import math

import torch

from mlbench.exps.hippo_memory.operators import discretize, legs_steps, transition


def baseline(kind: str, N: int, L: int, seeds: int, gens: list, device):
    """(Ā, B̄) of an equal-size memory, (S, N, N) and (S, N).  ema: c_i ← a_i c_i + (1−a_i) f with
    timescales 1…L steps (geometric); random: A = r(G/√N − I) − I, r = N/2, B ~ N(0, 1), bilinear
    with dt = 1/L; lastn: a shift register of the last N samples."""
    kw = {"dtype": torch.float64, "device": device}
    if kind == "ema":
        a = torch.exp(-1.0 / torch.logspace(0, math.log10(L), N, **kw))
        return torch.diag(a).expand(seeds, N, N), (1 - a).expand(seeds, N)
    if kind == "lastn":
        return torch.diag(torch.ones(N - 1, **kw), -1).expand(seeds, N, N), torch.eye(N, **kw)[0].expand(seeds, N)
    if kind == "random":
        G = torch.stack([torch.randn(N, N, generator=g, dtype=torch.float64) for g in gens]).to(device)
        B = torch.stack([torch.randn(N, generator=g, dtype=torch.float64) for g in gens]).to(device)
        A = N / 2 * (G / math.sqrt(N) - torch.eye(N, **kw)) - torch.eye(N, **kw)
        return discretize(A, B, 1.0 / L, "bilinear")
    raise ValueError(f"unknown baseline {kind!r}")


def kernel(Ad, Bd, L: int):
    """K with c_L = K f for c_k = Ā c_{k−1} + B̄ f_k, c_0 = 0: column k is Ā^(L−k) B̄ (k = 1..L).
    By doubling, [K_m | Ā^m K_m] in lag order: log2 L matmuls, not L.  Ā (..., N, N) -> (..., N, L)."""
    K, P = Bd[..., None], Ad  # lags 0..m-1, Ā^m
    while K.shape[-1] < L:
        K, P = torch.cat([K, P @ K], -1), P @ P
    return K[..., :L].flip(-1)


def compose(Ads, us):
    """The affine steps c ↦ Ā_k c + u_k (k = 1..T, in time order) composed into one (Φ, u):
    a balanced tree of batched matmuls, (Ā₂, u₂)∘(Ā₁, u₁) = (Ā₂Ā₁, Ā₂u₁ + u₂).
    Ads (T, N, N), us (T, M, N) (row vectors) -> (N, N), (M, N)."""
    while Ads.shape[0] > 1:
        if Ads.shape[0] % 2:  # an identity step in front keeps the pairs aligned
            eye = torch.eye(Ads.shape[-1], dtype=Ads.dtype, device=Ads.device)[None]
            Ads, us = torch.cat([eye, Ads]), torch.cat([torch.zeros_like(us[:1]), us])
        first, then = Ads[0::2], Ads[1::2]
        us = torch.baddbmm(us[1::2], us[0::2], then.transpose(-1, -2))
        Ads = then @ first
    return Ads[0], us[0]


def scan_legs(f, A, B, method: str, budget: int | None = None):
    """LegS's final state c_L, c_k = Ā_k c_{k−1} + B̄_k f_k (k = 1..L, Ā_k from `legs_steps`):
    chunks of steps composed by `compose`, sized to hold ~`budget` numbers (32 MB on CPU,
    512 MB on a GPU).  f (S, B, L) -> (S, B, N)."""
    S, Bn, L = f.shape
    N = A.shape[-1]
    budget = budget or (1 << 22 if f.device.type == "cpu" else 1 << 26)
    chunk = max(2, min(L, budget // (N * (N + S * Bn))))
    c = torch.zeros(S * Bn, N, dtype=f.dtype, device=f.device)
    for start in range(0, L, chunk):
        ks = torch.arange(start + 1, min(start + chunk, L) + 1, device=f.device)
        Ads, Bds = legs_steps(A, B, ks, method)  # (T, N, N), (T, N)
        us = f.reshape(S * Bn, L)[:, start:start + len(ks)].T[:, :, None] * Bds[:, None, :]  # (T, S*B, N)
        Phi, u = compose(Ads, us)
        c = c @ Phi.T + u
    return c.view(S, Bn, N)


def relative_mse(fhat, f):
    """‖f̂ − f‖² / ‖f‖² over the whole history, per signal."""
    return ((fhat - f) ** 2).sum(-1) / (f ** 2).sum(-1)


def span(cfg, measure: str, N: int) -> float:
    """The length of history a memory covers, in units of L0: LagT's lagt_span·N, else 1."""
    return cfg.lagt_span * N if measure == "lagt" else 1.0


def hippo_state(measure: str, N: int, f, method: str, cfg, L0: int):
    """HiPPO memory `measure` over f (S, B, L): final state (S, B, N) and the span of its basis.
    LTI memories have dt = span / L0: LegT's window θ is L0 steps; LagT's history spans lagt_span·N."""
    A, B = transition(measure, N, f.device)
    if measure == "legs":
        return scan_legs(f, A, B, method), 1.0
    s = span(cfg, measure, N)
    return f @ kernel(*discretize(A, B, s / L0, method), f.shape[-1]).T, s
