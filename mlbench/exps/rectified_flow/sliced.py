"""Sliced Wasserstein-1 between two equal-size point sets, stacked over M models.

    SW₁(a, b) = E_θ W₁(θᵀa, θᵀb),   W₁ of two n-point 1-D samples = mean |sort(θᵀa) − sort(θᵀb)|

over P random unit directions θ (the same for every arm of a seed). Between two fresh data samples
it is not 0 but a noise floor that shrinks like 1/√n.
"""

from __future__ import annotations

import math

import torch


def directions(projections: int, gens: list, dim: int = 2):
    """P random unit vectors per seed: (S, dim, P)."""
    raw = torch.stack([torch.randn(dim, projections, generator=g) for g in gens])
    return raw / raw.norm(dim=1, keepdim=True)


def sorted_projections(x, dirs):
    """x (M, n, D), dirs (M, D, P) -> each direction's sorted projections (M, n, P)."""
    return torch.bmm(x, dirs).sort(dim=1).values


def sw1(x, ref_sorted, dirs):
    """SW₁ of x (M, n, D) against a reference given by its sorted projections (M, n, P) -> (M,).
    Non-finite samples (a diverged model) give NaN, never a crash."""
    if not torch.isfinite(x).all():
        bad = ~torch.isfinite(x).flatten(1).all(1)
        x = torch.where(bad[:, None, None], torch.zeros_like(x), x)
        return torch.where(bad, math.nan, (sorted_projections(x, dirs) - ref_sorted).abs().mean((1, 2)))
    return (sorted_projections(x, dirs) - ref_sorted).abs().mean((1, 2))
