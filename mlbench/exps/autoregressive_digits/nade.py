"""NADE, the neural autoregressive distribution estimator (Larochelle & Murray 2011, Eq. 2-3).

One hidden layer shared by all conditionals: the pre-activation of pixel d's hidden vector is
the previous one plus one column of W,

    a_1 = c,   a_{d+1} = a_d + W_{:,d} x_d,   h_d = σ(a_d),   logit_d = b_d + V_d · h_d

so a_d = c + Σ_{j<d} W_{:,j} x_j is an exclusive cumulative sum over d (O(B·D·H), one pass).
The shift of the cumulative sum by one pixel is structural (a zero row, then the first D−1
partial sums), so ∂logit_d/∂x_j is exactly 0 for j ≥ d. Parameters per model: W (H×D),
c (H), V (D×H), b (D). V starts at 0 and b at the training marginals' log-odds, so epoch 0 is
the independent-pixel model (W random: the gradient reaches it once V moves).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def init_params(bias: torch.Tensor, hidden: int, gens: list[torch.Generator], repeat) -> dict[str, torch.Tensor]:
    """bias (M, D); W ~ N(0, 1/D) per seed from `gens`, shared by a seed's arms (`repeat`:
    the grid's (S, ...) -> (M, ...))."""
    m, d = bias.shape
    w = torch.stack([torch.randn(d, hidden, generator=g) / math.sqrt(d) for g in gens])  # (S, D, H): row j = W_{:,j}
    return {"W": repeat(w).to(bias.device), "c": torch.zeros(m, hidden, device=bias.device),
            "V": torch.zeros(m, d, hidden, device=bias.device), "b": bias.clone()}


def hidden_preactivations(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """a_d = c + Σ_{j<d} W_{:,j} x_j: x (M, B, D) -> (M, B, D, H)."""
    contrib = x[..., None] * params["W"][:, None]  # (M, B, D, H): x_j W_{:,j}
    inclusive = contrib.cumsum(2)  # Σ_{j<=d}
    exclusive = F.pad(inclusive[:, :, :-1], (0, 0, 1, 0))  # shift by one pixel: Σ_{j<d}
    return params["c"][:, None, None, :] + exclusive


def logits(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """x (M, B, D) -> (M, B, D)."""
    h = torch.sigmoid(hidden_preactivations(params, x))  # (M, B, D, H)
    return params["b"][:, None, :] + (h * params["V"][:, None]).sum(-1)


def parameter_count(d: int, hidden: int) -> int:
    return 2 * d * hidden + hidden + d
