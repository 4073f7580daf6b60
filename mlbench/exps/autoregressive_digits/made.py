"""MADE, the masked autoencoder for distribution estimation (Germain et al. 2015, §4).

An MLP D → H → … → H → D whose weights are multiplied by 0/1 masks built from degrees:

    input degrees   m⁰(d) = position of pixel d in the ordering (natural: d, 1..D)
    hidden degrees  m^l(k) ~ Uniform{min m^{l−1}, …, D − 1}
    hidden mask     M^l[k, k′] = [m^l(k) ≥ m^{l−1}(k′)]          (Eq. 12)
    output mask     M^V[d, k]  = [m⁰(d) > m^L(k)]                 (Eq. 13)

A path from input j to output d exists only if m⁰(j) ≤ m^1 ≤ … ≤ m^L < m⁰(d), so logit_d
depends on the pixels strictly before d: one forward pass gives every conditional. Degrees come
from a numpy RandomState per seed (as in karpathy/pytorch-made), seeded from the mlbench seed.
Mask 0 uses the natural ordering; masks 1..K−1 draw their own ordering and connectivity. A
model trained with K masks cycles through them, one per minibatch, and is evaluated as the
probability average of its K autoregressive components (`likelihood.mixture_nll`).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def degrees(rs: np.random.RandomState, d: int, widths: tuple[int, ...], natural: bool) -> list[np.ndarray]:
    """[m⁰ (D,), m¹ (H₁,), …, m^L (H_L,)] for one mask."""
    m = [np.arange(1, d + 1) if natural else rs.permutation(d) + 1]
    for width in widths:
        m.append(rs.randint(m[-1].min(), d, size=width))  # {min m^{l−1}, …, D − 1}
    return m


def masks_from_degrees(m: list[np.ndarray]) -> list[np.ndarray]:
    """Masks shaped like the weights (out, in): hidden layers, then the output layer."""
    hidden = [(m[l][:, None] >= m[l - 1][None, :]) for l in range(1, len(m))]
    return [*hidden, m[0][:, None] > m[-1][None, :]]


def seed_masks(seed: int, d: int, widths: tuple[int, ...], count: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One seed's `count` masks: per layer (K, out, in) float32, and input degrees (K, D)."""
    rs = np.random.RandomState(seed % 2**32)
    per_mask = [degrees(rs, d, widths, natural=(k == 0)) for k in range(count)]
    layers = [np.stack(ms) for ms in zip(*(masks_from_degrees(m) for m in per_mask))]
    return ([torch.from_numpy(x.astype(np.float32)) for x in layers],
            torch.from_numpy(np.stack([m[0] for m in per_mask]).astype(np.int64)))


def init_params(bias: torch.Tensor, widths: tuple[int, ...], gens: list[torch.Generator], repeat) -> dict[str, torch.Tensor]:
    """Hidden weights ~ U(±1/√fan_in) per seed (shared by a seed's arms), hidden biases 0; output
    weights 0 and output bias (M, D) given, so epoch 0 is the independent-pixel model."""
    m, d = bias.shape
    params, fan_in = {}, d
    for l, width in enumerate(widths):
        bound = 1.0 / math.sqrt(fan_in)
        w = torch.stack([(torch.rand(width, fan_in, generator=g) * 2 - 1) * bound for g in gens])
        params[f"W{l}"], params[f"b{l}"] = repeat(w).to(bias.device), torch.zeros(m, width, device=bias.device)
        fan_in = width
    params["V"], params["c"] = torch.zeros(m, d, fan_in, device=bias.device), bias.clone()
    return params


def logits(params: dict[str, torch.Tensor], masks: list[torch.Tensor], x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """x (M, B, D) with member m using its mask k[m] -> (M, B, D). masks[l]: (M, K, out, in)."""
    rows = torch.arange(x.shape[0], device=x.device)
    h = x
    for l in range(len(masks) - 1):
        w = params[f"W{l}"] * masks[l][rows, k]  # (M, H, in)
        h = torch.relu(torch.baddbmm(params[f"b{l}"][:, None, :], h, w.transpose(1, 2)))
    v = params["V"] * masks[-1][rows, k]  # (M, D, H)
    return torch.baddbmm(params["c"][:, None, :], h, v.transpose(1, 2))


def parameter_count(d: int, widths: tuple[int, ...]) -> int:
    """Weights and biases of the dense MLP (the masks zero about half of the weights)."""
    sizes = [d, *widths, d]
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
