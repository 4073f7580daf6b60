"""The separable critic f(x, y) = h(y) · g(x), stacked over M models.

g and h are MLPs d → hidden → … → hidden → embed with ReLU (the reference's SeparableCritic);
the scores of a batch are one matrix product, s = h(Y) g(X)ᵀ (N × N). Parameters are stacked
(M, in, out) and applied with `baddbmm`: one Adam over the stack equals M independent Adams, and
the summed loss gives each model its own gradient.
"""

from __future__ import annotations

import math

import torch

from mlbench.exps.infonce_log_n_bound import layer_widths

NETS = ("g", "h")  # g embeds x, h embeds y


def init_critic(cfg, gens: list) -> dict[str, torch.Tensor]:
    """Per-seed initial weights, stacked (S, ...): `{net}.{k}.weight` (S, in, out), `.bias` (S, 1, out).

    torch: nn.Linear's default, weight and bias ~ U(±1/√in), so initial scores are small (softmax
    far from saturated); he: weight ~ N(0, 2/in), bias 0 (initial scores of std ≈ 10 at d = 20)."""
    widths = layer_widths(cfg)
    per_seed = []
    for g in gens:
        p = {}
        for net in NETS:
            for k, (i, o) in enumerate(zip(widths[:-1], widths[1:])):
                if cfg.init == "he":
                    p[f"{net}.{k}.weight"] = torch.randn(i, o, generator=g) * math.sqrt(2.0 / i)
                    p[f"{net}.{k}.bias"] = torch.zeros(1, o)
                else:
                    bound = 1.0 / math.sqrt(i)
                    p[f"{net}.{k}.weight"] = (torch.rand(i, o, generator=g) * 2 - 1) * bound
                    p[f"{net}.{k}.bias"] = (torch.rand(1, o, generator=g) * 2 - 1) * bound
        per_seed.append(p)
    return {name: torch.stack([p[name] for p in per_seed]) for name in per_seed[0]}


def embed(params: dict, net: str, v: torch.Tensor) -> torch.Tensor:
    """The MLP `net` of every stacked model on its own inputs: v (M, B, d) -> (M, B, embed)."""
    depth = sum(1 for name in params if name.startswith(f"{net}.") and name.endswith(".weight"))
    for k in range(depth):
        v = torch.baddbmm(params[f"{net}.{k}.bias"], v, params[f"{net}.{k}.weight"])
        if k < depth - 1:
            v = v.relu()
    return v


def block_scores(hy: torch.Tensor, gx: torch.Tensor, n: int) -> torch.Tensor:
    """Embeddings (m, B, E) of B = G·n pairs -> scores of G independent batches of n: (m, G, n, n),
    s[:, b, i, j] = h(y_i) · g(x_j) within batch b."""
    m, B, E = hy.shape
    return hy.view(m, B // n, n, E) @ gx.view(m, B // n, n, E).transpose(-1, -2)
