"""The VP-SDE and DDPM's forward process: β(t), the marginals α(t), σ(t), DDPM's discrete β_i and
ᾱ_i, the exact discrete step β between two times, and the simulated N=1000 chain.

    dx = −½β(t)x dt + sqrt(β(t)) dw,   β(t) = β_min + t(β_max − β_min),   t ∈ [0, 1]
    x_t = α(t)x_0 + σ(t)ε,   log α(t) = −¼t²(β_max − β_min) − ½tβ_min,   σ² = 1 − α²
"""

from __future__ import annotations

import math

import torch

from mlbench.exps.ddpm_vs_sde import CHAIN_STEPS


def beta_t(t, cfg):
    """β(t) = β_min + t(β_max − β_min)."""
    return cfg.beta_min + t * (cfg.beta_max - cfg.beta_min)


def log_alpha(t, cfg):
    """log α(t) = −¼t²(β_max − β_min) − ½tβ_min, the log mean coefficient of x_t given x_0."""
    return -0.25 * t**2 * (cfg.beta_max - cfg.beta_min) - 0.5 * t * cfg.beta_min


def marginal_prob(t: float, cfg) -> tuple[float, float]:
    """(α(t), σ(t)) with x_t = α(t)x_0 + σ(t)ε and σ² = 1 − α²."""
    la = log_alpha(t, cfg)
    return math.exp(la), math.sqrt(-math.expm1(2 * la))


def ddpm_betas(n_steps: int, cfg):
    """DDPM's β_i = linspace(β_min/N, β_max/N, N), i = 1..N (1e-4..0.02 at N = 1000). (N,) float64."""
    return torch.linspace(cfg.beta_min / n_steps, cfg.beta_max / n_steps, n_steps, dtype=torch.float64)


def ddpm_alpha_bar(n_steps: int, cfg):
    """ᾱ_i = Π_{j≤i}(1 − β_j), i = 1..N. (N,) float64."""
    return torch.cumprod(1 - ddpm_betas(n_steps, cfg), 0)


def step_beta(t: float, s: float, cfg) -> float:
    """Exact discrete β for a step t -> s < t: 1 − ᾱ(t)/ᾱ(s) (= β_i when s, t are DDPM's grid)."""
    return -math.expm1(2 * (log_alpha(t, cfg) - log_alpha(s, cfg)))


def posterior_variance(t: float, s: float, cfg) -> float:
    """Var(x_s | x_t, x_0) = β̃ = β(1 − ᾱ_s)/(1 − ᾱ_t) for s < t, with β = step_beta(t, s)."""
    return step_beta(t, s, cfg) * (marginal_prob(s, cfg)[1] / marginal_prob(t, cfg)[1]) ** 2


def marginal_stats(cfg, x0, gen) -> dict:
    """Closed-form max_i |ᾱ_i − α(i/N)²| for each N in `marginal_steps`, and the N=1000 DDPM chain
    x_i = sqrt(1 − β_i) x_{i−1} + sqrt(β_i) z simulated from x0 (n, D): at CHAIN_STEPS, the
    least-squares coefficient c of E[x_i | x_0] = c x_0 and the residual std (JSON-able lists)."""
    errs = []
    for n in cfg.marginal_steps:
        t = torch.arange(1, n + 1, dtype=torch.float64) / n
        errs.append((ddpm_alpha_bar(n, cfg) - torch.exp(2 * log_alpha(t, cfg))).abs().max().item())
    betas = ddpm_betas(1000, cfg)
    keep, noise = (1 - betas).sqrt(), betas.sqrt()
    x0 = x0.double()
    x, coef, std = x0.clone(), [], []
    for i in range(1, 1001):
        z = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        x = keep[i - 1] * x + noise[i - 1] * z
        if i in CHAIN_STEPS:
            c = (x * x0).sum() / (x0 * x0).sum()
            coef.append(c.item())
            std.append((x - c * x0).std().item())
    return {"max_abs_err": errs, "chain_steps": list(CHAIN_STEPS), "chain_coef": coef, "chain_std": std}


def chain_max_error(cfg, stats: dict) -> float:
    """The simulated chain's worst deviation from the SDE: max over CHAIN_STEPS of |c − α|, |std − σ|."""
    exact = [marginal_prob(i / 1000, cfg) for i in stats["chain_steps"]]
    pairs = zip(exact, stats["chain_coef"], stats["chain_std"])
    return max(max(abs(c - a), abs(sd - sg)) for (a, sg), c, sd in pairs)
