"""Correlated Gaussians: data whose mutual information is known, and their Bayes-optimal critic.

    x ~ N(0, I_d),   y = ρ x + √(1 − ρ²) ε,   ε ~ N(0, I_d)
    I(x; y) = −½ · d · ln(1 − ρ²)  nats,   so   ρ = √(1 − exp(−2 I / d)).

The density ratio p(y | x) / p(y) is known in closed form, so the best critic needs no training:
    s(y_i, x_j) = log p(y_i | x_j) = −‖y_i − ρ x_j‖² / (2 (1 − ρ²)) + const,
where the constant (it depends on y_i only) cancels in every bound that normalises over x_j.
"""

from __future__ import annotations

import math

import torch


def rho_for_mi(mi: float, dim: int) -> float:
    """ρ such that I(x; y) = mi nats for d = dim independent coordinate pairs."""
    return math.sqrt(1.0 - math.exp(-2.0 * mi / dim))


def mi_for_rho(rho: float, dim: int) -> float:
    return -0.5 * dim * math.log(1.0 - rho**2)


def draw(gens: list, batch: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x and ε for every seed, each (S, B, d): seed k's draw from its own generator only."""
    parts = [torch.randn(2, batch, dim, generator=g) for g in gens]  # per seed: x, then ε
    both = torch.stack(parts)  # (S, 2, B, d)
    return both[:, 0], both[:, 1]


def pair(x: torch.Tensor, eps: torch.Tensor, rho: torch.Tensor, cubic: bool = False) -> torch.Tensor:
    """y = ρ x + √(1 − ρ²) ε for stacked members: x, ε (M, B, d), ρ (M,) broadcast over the stack.
    `cubic`: y ↦ y³ (invertible, so I(x; y) is unchanged; the critic has a harder ratio to learn)."""
    r = rho.to(x)[:, None, None]
    y = r * x + torch.sqrt(1.0 - r**2) * eps
    return y**3 if cubic else y


def oracle_scores(x: torch.Tensor, y: torch.Tensor, rho: torch.Tensor, cubic: bool = False) -> torch.Tensor:
    """The Bayes-optimal critic on batches: x, y (..., N, d), ρ (m,) for the leading dim;
    returns s (..., N, N) with s[..., i, j] = log p(y_i | x_j) up to a per-row constant, float64.

    Expanded: −(‖y_i‖² − 2ρ y_i·x_j + ρ²‖x_j‖²) / (2(1 − ρ²)); ‖y_i‖² is kept so that s_ij is the
    true log-density ratio plus −(d/2)·ln(2π(1 − ρ²)) + ‖y_i‖²/2 (a per-row constant)."""
    x, y = x.double(), y.double()
    if cubic:
        y = torch.sign(y) * y.abs() ** (1.0 / 3.0)  # the ratio is a function of the cube root
    r = rho.double().view(-1, *([1] * (x.dim() - 1)))  # (m, 1, ..., 1)
    cross = y @ x.transpose(-1, -2)  # (..., N, N): y_i · x_j
    sq_y = (y**2).sum(-1, keepdim=True)  # (..., N, 1)
    sq_x = (x**2).sum(-1).unsqueeze(-2)  # (..., 1, N)
    return -(sq_y - 2 * r * cross + r**2 * sq_x) / (2 * (1 - r**2))
