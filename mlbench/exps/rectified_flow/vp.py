"""The VP-SDE baseline (DDPM's linear β schedule) with ε-prediction, and its two samplers.

    β(t) = β_min + (β_max − β_min)·t,   α(t) = exp(−½(β_min·t + ½(β_max − β_min)·t²)),   σ = √(1 − α²)
    x_t = α(t)·x₀ + σ(t)·ε,   L(θ) = E_t E ‖ε̂_θ(x_t, t) − ε‖²,   t ~ U(t_min, 1)

Probability-flow ODE (Song et al. 2021, eq. 13), with the score −ε̂/σ:
    dx/dt = −½β(t)·(x − ε̂(x, t)/σ(t)), integrated by Euler from t = 1 to t_min.
DDIM (Song, Meng, Ermon 2021, η = 0): x̂₀ = (x − σε̂)/α, x' = α'·x̂₀ + σ'·ε̂.
Never evaluated at t = 0, where σ = 0; DDIM's first step divides by α(1) ≈ 0.0066, so few-step
DDIM is poor on this schedule (standard behaviour, not a bug).
"""

from __future__ import annotations

import math

import torch


def beta(t: float, beta_min: float, beta_max: float) -> float:
    return beta_min + (beta_max - beta_min) * t


def log_alpha(t, beta_min: float, beta_max: float):
    """log α(t) = −½(β_min·t + ½(β_max − β_min)·t²): a float or a tensor."""
    return -0.5 * (beta_min * t + 0.5 * (beta_max - beta_min) * t * t)


def alpha_sigma(t, beta_min: float, beta_max: float):
    """(α(t), σ(t)); σ = √(1 − α²) computed as √(−expm1(2 log α)), accurate near t = 0."""
    la = log_alpha(t, beta_min, beta_max)
    if isinstance(la, float):
        return math.exp(la), math.sqrt(-math.expm1(2 * la))
    return la.exp(), (-torch.expm1(2 * la)).sqrt()


def vp_t(u, t_min: float):
    """t ~ U(t_min, 1) from u ~ U(0, 1)."""
    return t_min + (1 - t_min) * u


def perturb(x0, eps, t, beta_min: float, beta_max: float):
    """x_t = α(t)·x₀ + σ(t)·ε and the target ε, for x₀, ε (M, B, D) and t (M, B)."""
    a, s = alpha_sigma(t, beta_min, beta_max)
    return a[..., None] * x0 + s[..., None] * eps, eps


def _grid(nfe: int, t_min: float) -> list[float]:
    return torch.linspace(1.0, t_min, nfe + 1, dtype=torch.float64).tolist()


def pf_ode_euler(eps_fn, z, nfe: int, beta_min: float, beta_max: float, t_min: float):
    """Euler on the probability-flow ODE from z at t = 1 to t_min. `eps_fn(x, t)`: x (M, n, D), float t."""
    ts, x = _grid(nfe, t_min), z
    for t_now, t_next in zip(ts[:-1], ts[1:]):
        sigma = alpha_sigma(t_now, beta_min, beta_max)[1]
        drift = -0.5 * beta(t_now, beta_min, beta_max) * (x - eps_fn(x, t_now) / sigma)
        x = x + (t_next - t_now) * drift
    return x


def ddim(eps_fn, z, nfe: int, beta_min: float, beta_max: float, t_min: float):
    """Deterministic DDIM from z at t = 1 to t_min on the same grid as `pf_ode_euler`."""
    ts, x = _grid(nfe, t_min), z
    for t_now, t_next in zip(ts[:-1], ts[1:]):
        (a, s), (a_next, s_next) = alpha_sigma(t_now, beta_min, beta_max), alpha_sigma(t_next, beta_min, beta_max)
        eps = eps_fn(x, t_now)
        x0_hat = (x - s * eps) / a
        x = a_next * x0_hat + s_next * eps
    return x
