"""The HiPPO operators: (A, B) of each measure, their discretisations, the polynomial bases.

A memory keeps c(t), the coefficients of the best approximation of the input's history under a
measure, by the linear ODE ċ = A c + B f (LegS: ċ = (1/t)(A c + B f)); the history is read back as
f(s) ≈ Σ_n c_n g_n(s). Everything is float64: LegS at large N is ill-conditioned in float32.
"""

from __future__ import annotations

import math

import torch

from mlbench.exps.hippo_memory import MEASURES, METHODS


def transition(measure: str, N: int, device="cpu"):
    """(A, B) of ċ = A c + B f (LegS: ċ = (1/t)(A c + B f)); A is the paper's A negated.

    r_n = √(2n+1).  LegS: A_nk = −r_n r_k (n > k), −(n+1) (n = k), 0 (n < k); B = r.
    LegT (θ = 1): A_nk = −r_n r_k (n ≥ k), −r_n r_k (−1)^(n−k) (n < k); B = r.
    LagT: A = I/2 − tril(1) (−1/2 on the diagonal, −1 below); B = 1.
    FouT (θ = 1, basis 1, √2 cos 2πkx, √2 sin 2πkx): A = J − 2 p pᵀ, B = 2p, p = basis at x = 0,
    J the rotations ±2πk; for even N the last state is unused (a cosine without its sine).
    """
    kw = {"dtype": torch.float64, "device": device}
    n = torch.arange(N, **kw)
    r = (2 * n + 1).sqrt()
    below = n[:, None] > n[None, :]
    if measure == "legs":
        return -torch.where(below, r[:, None] * r[None, :], torch.diag(n + 1)), r
    if measure == "legt":
        sign = torch.where(below | (n[:, None] == n[None, :]), 1.0, (-1.0) ** (n[:, None] - n[None, :]))
        return -r[:, None] * sign * r[None, :], r
    if measure == "lagt":
        return torch.eye(N, **kw) / 2 - torch.tril(torch.ones(N, N, **kw)), torch.ones(N, **kw)
    if measure == "fout":
        p = basis("fout", N, torch.zeros(1, **kw))[0]  # (N,)
        k = torch.arange(1, (N - 1) // 2 + 1, device=device)
        J = torch.zeros(N, N, **kw)
        J[2 * k - 1, 2 * k] = 2 * math.pi * k.double()
        J[2 * k, 2 * k - 1] = -2 * math.pi * k.double()
        return J - 2 * torch.outer(p, p), 2 * p
    raise ValueError(f"unknown measure {measure!r}: choose from {', '.join(MEASURES)}")


def discretize(A, B, dt: float, method: str):
    """(Ā, B̄) for c_k = Ā c_{k−1} + B̄ f_k.  forward: I + ΔA, ΔB;  backward: (I − ΔA)⁻¹, (I − ΔA)⁻¹ΔB;
    bilinear: (I − ΔA/2)⁻¹(I + ΔA/2), (I − ΔA/2)⁻¹ΔB;  ZOH: exp(ΔA), ∫₀^Δ exp(sA) B ds (via the
    exponential of [[A, B], [0, 0]]Δ: A may be singular)."""
    I = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand_as(A)
    if method == "forward":
        return I + dt * A, dt * B
    if method in ("backward", "bilinear"):
        w = 1.0 if method == "backward" else 0.5
        lhs = I - w * dt * A
        rhs = torch.cat([I + (1 - w) * dt * A, dt * B[..., None]], -1)  # (..., N, N + 1)
        if bool((A.triu(1) == 0).all()):  # LegS, LagT: lower triangular, a cheaper exact solve
            sol = torch.linalg.solve_triangular(lhs, rhs, upper=False)
        else:
            sol = torch.linalg.solve(lhs, rhs)
        return sol[..., :-1], sol[..., -1]
    if method == "zoh":
        N = A.shape[-1]
        aug = torch.zeros(*A.shape[:-2], N + 1, N + 1, dtype=A.dtype, device=A.device)
        aug[..., :N, :N], aug[..., :N, N] = dt * A, dt * B
        E = torch.linalg.matrix_exp(aug)
        return E[..., :N, :N], E[..., :N, N]
    raise ValueError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")


def legs_steps(A, B, ks, method: str):
    """LegS's time-varying step at t = k (k ≥ 1): Ā_k, B̄_k of (A/k, B/k) with Δ = 1, except ZOH,
    exact for f held on [k, k+1] in log-time: exp(A log((k+1)/k)), A⁻¹(Ā_k − I)B.  (K, N, N), (K, N)."""
    ks = ks.to(A)[:, None, None]  # (K, 1, 1)
    if method != "zoh":
        return discretize(A / ks, B / ks[..., 0], 1.0, method)
    Ad = torch.linalg.matrix_exp(A * torch.log1p(1.0 / ks))
    Bd = torch.linalg.solve_triangular(A, Ad @ B[:, None] - B[:, None], upper=False)[..., 0]  # LegS A: lower
    return Ad, Bd


def _three_term(N: int, x, step):
    """Polynomials by their three-term recurrence: (..., N) from P_0 = 1 and step(n, P_n, P_{n-1})."""
    P = [torch.ones_like(x), step(0, torch.ones_like(x), torch.zeros_like(x))]
    for n in range(1, N - 1):
        P.append(step(n, P[n], P[n - 1]))
    return torch.stack(P[:N], -1)


def legendre(N: int, x):
    """P_0..P_{N−1} at x: (n+1)P_{n+1} = (2n+1)x P_n − n P_{n−1}."""
    return _three_term(N, x, lambda n, p, q: ((2 * n + 1) * x * p - n * q) / (n + 1))


def laguerre(N: int, x):
    """L_0..L_{N−1} at x: (n+1)L_{n+1} = (2n+1−x)L_n − n L_{n−1}."""
    return _three_term(N, x, lambda n, p, q: ((2 * n + 1 - x) * p - n * q) / (n + 1))


def basis(measure: str, N: int, x, span: float = 1.0):
    """Reconstruction basis g_n at positions x ∈ [0, 1] of the window (LegS: s/t; 1 = now):
    f ≈ Σ c_n g_n(x).  (len(x), N).  LegS/LegT: √(2n+1) P_n(2x − 1); LagT: L_n(τ) e^{−τ/2} with
    τ = (1 − x)·span the time ago; FouT: 1, √2 cos 2πkx, √2 sin 2πkx, …"""
    n = torch.arange(N, dtype=x.dtype, device=x.device)
    if measure in ("legs", "legt"):
        return legendre(N, 2 * x - 1) * (2 * n + 1).sqrt()
    if measure == "lagt":
        tau = (1 - x) * span
        return laguerre(N, tau) * torch.exp(-tau / 2)[:, None]
    if measure == "fout":
        k = torch.div(n + 1, 2, rounding_mode="floor")
        wave = torch.where(n % 2 == 1, torch.cos(2 * math.pi * k * x[:, None]), torch.sin(2 * math.pi * k * x[:, None]))
        g = torch.where(n == 0, 1.0, math.sqrt(2) * wave)
        return g if N % 2 else g * (n < N - 1)
    raise ValueError(f"unknown measure {measure!r}")


def positions(L: int, device="cpu"):
    """Sample k = 1..L sits at (k − ½)/L of the history (the middle of its step)."""
    return (torch.arange(1, L + 1, dtype=torch.float64, device=device) - 0.5) / L
