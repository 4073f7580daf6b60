"""FVSBN, the fully visible sigmoid belief network (Neal 1992; Frey 1998).

One logistic regression per pixel on the pixels before it (raster order):

    logit_d = b_d + Σ_{j<d} W_dj x_j,        W strictly lower-triangular

D(D−1)/2 weights + D biases (2,016 + 64 for 8x8). The strict triangle is a fixed 0/1 mask on W,
so ∂logit_d/∂x_j is exactly 0 for j ≥ d whatever values W takes. W starts at 0 and b at the
training marginals' log-odds: at epoch 0 the FVSBN *is* the independent-pixel model.
"""

from __future__ import annotations

import torch


def strict_lower(d: int, device=None) -> torch.Tensor:
    """(D, D) mask [j < d] for row d, column j."""
    return torch.ones(d, d, device=device).tril(-1)


def init_params(bias: torch.Tensor) -> dict[str, torch.Tensor]:
    """bias (M, D) -> {"b": (M, D), "W": (M, D, D) zeros}."""
    m, d = bias.shape
    return {"b": bias.clone(), "W": torch.zeros(m, d, d, device=bias.device)}


def logits(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x (M, B, D) -> (M, B, D)."""
    w = params["W"] * strict_lower(x.shape[-1], x.device)  # (M, D, D)
    return torch.baddbmm(params["b"][:, None, :], x, w.transpose(1, 2))


def penalty(params: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ_{j<d} W_dj² per member (M,): the L2 term chosen on validation."""
    return (params["W"] * strict_lower(params["W"].shape[-1], params["W"].device)).pow(2).sum((1, 2))


def parameter_count(d: int) -> int:
    return d * (d - 1) // 2 + d
