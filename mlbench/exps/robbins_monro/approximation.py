"""The pieces of the Robbins–Monro recursion θ_{k+1} = θ_k − a_k Y_k, run on (M, R) tensors:
M = arms × seeds stacked members (the grid), R replicates each; everything in float64.

Mean estimation observes Y_k = w_k − x_k, x_k = μ + σε_k; root finding observes
Y_k = g(θ_k) + σε_k with g(θ) = θ + 2 sin θ (root θ* = 0, g′(0) = 3, x·g(x) > 0 elsewhere).
"""

from __future__ import annotations

import math

import torch

F64 = torch.float64
CHUNK = 64  # steps of noise drawn per generator call: fewer calls, a few MB at R = 10⁴
STUDENT_DOF = 3  # ν of the heavy-tailed noise: Var t_ν = ν/(ν − 2) is finite, E t⁴ is not


class Noise:
    """Observations shift + scale·ε of unit-variance noise ε, one (S, R) draw per step, each seed
    from its own generator.

    Drawn in chunks of CHUNK steps (S, T, R); a seed's stream depends on its generator alone, not
    on the seeds beside it. Drawn in float32 (6x faster than float64 normals on a CPU; rounding
    of 6·10⁻⁸ relative changes no statistic measured here), used in float64. student-t: ε = Z / √(χ²_ν/ν) · √((ν − 2)/ν), χ²_ν a sum of ν squared
    normals (every draw through the seed's generator)."""

    def __init__(self, gens: list, replicates: int, kind: str, device, scale: float = 1.0, shift: float = 0.0):
        self.gens, self.replicates, self.kind, self.device = gens, replicates, kind, device
        self.scale, self.shift = scale, shift
        self.chunk, self.at = None, 0

    def _draw(self, g) -> torch.Tensor:
        shape = (CHUNK, self.replicates)
        if self.kind == "gaussian":
            return torch.randn(shape, generator=g, device=self.device).to(F64)
        z = torch.randn((STUDENT_DOF + 1, *shape), generator=g, device=self.device).to(F64)
        t = z[0] / z[1:].square().mean(0).sqrt()  # t_ν
        return t * math.sqrt((STUDENT_DOF - 2) / STUDENT_DOF)

    def next(self) -> torch.Tensor:
        """The next step's shift + scale·ε (S, R)."""
        if self.chunk is None or self.at == CHUNK:
            eps = torch.stack([self._draw(g) for g in self.gens])  # (S, CHUNK, R)
            self.chunk, self.at = eps.mul_(self.scale).add_(self.shift), 0
        self.at += 1
        return self.chunk[:, self.at - 1]


def step_sizes(c: torch.Tensor, gamma: torch.Tensor, k: int) -> torch.Tensor:
    """a_k = min(1, c·k^−γ) per member (M,): capped, since a_k > 1 flips the error's sign."""
    return (c * float(k) ** -gamma).clamp(max=1.0)


def g(theta: torch.Tensor) -> torch.Tensor:
    """The nonlinear mean field g(θ) = θ + 2 sin θ: one root θ* = 0 with g′(0) = 3."""
    return theta.sin().mul_(2).add_(theta)


def mse_stats(estimate: torch.Tensor, target: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per member (M,): the MSE over replicates, mean (θ − θ*)², and its relative standard error
    sd((θ − θ*)²)/(√R · MSE) (√2/√R for a Gaussian error)."""
    sq = (estimate - target).square()  # (M, R)
    mse = sq.mean(1)
    return mse, sq.std(1) / math.sqrt(sq.shape[1]) / mse
