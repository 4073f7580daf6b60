"""Adam+L2, AdamW (paper form) and AdamW (PyTorch form) as one batched step (Algorithm 2),
their schedule η_t, their effective decay, and the check against torch.optim."""

from __future__ import annotations

import math

import torch

from mlbench.exps.adam_vs_adamw import OPTIMISERS, cell_key, cells, coupled, lam_grid


def adam_step(p, g, m, v, t: int, lr, l2, decay, cfg, mask=1.0) -> None:
    """Algorithm 2 for M stacked models, in place on p, m, v (M, P). Per model (M,):
    lr = η_t α;  l2 = λ (Adam+L2) else 0;  decay = η_t λ (paper) | η_t α λ (torch) | 0.

        g ← ∇f + l2·θ;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
        θ ← (1 − decay) θ − lr · m̂ / (√v̂ + ε),   m̂ = m / (1−β1^t),  v̂ = v / (1−β2^t)

    `mask` (P,) is 0 for weights exempt from both kinds of decay.
    """
    bc1, bc2_sqrt = 1 - cfg.beta1**t, math.sqrt(1 - cfg.beta2**t)
    lr, l2, decay = lr[:, None], l2[:, None], decay[:, None]  # (M, 1)
    g = g + l2 * mask * p
    m.lerp_(g, 1 - cfg.beta1)  # as torch does: m + (1−β1)(g − m)
    v.mul_(cfg.beta2).addcmul_(g, g, value=1 - cfg.beta2)
    p.mul_(1 - decay * mask)
    p.sub_(lr / bc1 * m / (v.sqrt() / bc2_sqrt + cfg.eps))


def cell_hypers(cfg, opt: str, alpha: float, lam: float) -> tuple[float, float, float]:
    """(α, L2 λ, decay before η_t) of one cell: Adam+L2 (α, λ, 0); paper (α, 0, λ); torch (α, 0, α λ)."""
    if coupled(cfg, opt):
        return alpha, lam, 0.0
    return alpha, 0.0, lam if opt == "adamw-paper" else alpha * lam


def grid_hypers(cfg, grid, device, dtype=torch.float32) -> dict:
    """Per-model α, L2 λ and decay (before η_t), each (M,), from each member's cell."""
    per_cell = {cell_key(*c): cell_hypers(cfg, *c) for c in cells(cfg)}
    return {name: grid.per_arm({k: h[n] for k, h in per_cell.items()}, dtype=dtype, device=device)
            for n, name in enumerate(("alpha", "l2", "decay"))}


def effective_decay(v_hat, alpha: float, lam: float, opt: str, eps: float):
    """Per-weight shrink of θ per step at η_t = 1, the decay term being at steady state in m̂:
    Adam+L2 α λ/(√v̂ + ε) (λθ is divided by the adaptive denominator); paper λ; torch α λ."""
    if opt == "adam-l2":
        return alpha * lam / (v_hat.sqrt() + eps)
    return torch.full_like(v_hat, lam if opt == "adamw-paper" else alpha * lam)


def schedule(step: int, steps: int, restarts: int) -> float:
    """η_t: cosine annealing with warm restarts (SGDR, T_mult = 2); restarts = 1 is plain cosine."""
    start, length = 0.0, steps / (2**restarts - 1)
    while step >= start + length and length < steps:
        start, length = start + length, 2 * length
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - start) / length)))


def torch_namesake(cfg, opt: str, param, alpha: float, lam: float):
    """The torch.optim optimiser our `opt` is named after: Adam(weight_decay=λ) for Adam+L2,
    AdamW(weight_decay=λ_torch) for the PyTorch form, AdamW(weight_decay=λ/α) for the paper form."""
    kw = dict(lr=alpha, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, foreach=False)
    if opt == "adam-l2":
        return torch.optim.Adam([param], weight_decay=lam, **kw)
    return torch.optim.AdamW([param], weight_decay=lam / alpha if opt == "adamw-paper" else lam, **kw)


def step_check(cfg, gen, n_steps: int = 6, size: int = 40) -> dict[str, float]:
    """Max |θ_ours − θ_torch| after n float64 steps (random gradients, cosine η_t), per optimiser,
    against the arm's namesake at the largest α and a middle λ of its grid (under the negative
    control our AdamW arms couple their decay, so they must differ from it)."""
    theta0 = torch.randn(1, size, generator=gen, dtype=torch.float64)
    grads = torch.randn(n_steps, 1, size, generator=gen, dtype=torch.float64)
    W = len(cfg.wd_l2)
    out = {}
    for opt in OPTIMISERS:
        alpha, lam = cfg.lrs[-1], cfg.wd_grid(opt)[W // 2]
        hyp = [torch.tensor([h], dtype=torch.float64) for h in cell_hypers(cfg, opt, alpha, lam_grid(cfg, opt)[W // 2])]
        ref = theta0[0].clone().requires_grad_(True)
        torch_opt = torch_namesake(cfg, opt, ref, alpha, lam)
        ours, m, v = theta0.clone(), torch.zeros_like(theta0), torch.zeros_like(theta0)
        for t in range(1, n_steps + 1):
            eta = schedule(t - 1, n_steps, 1)
            torch_opt.param_groups[0]["lr"] = alpha * eta
            ref.grad = grads[t - 1, 0].clone()
            torch_opt.step()
            adam_step(ours, grads[t - 1], m, v, t, eta * hyp[0], hyp[1], eta * hyp[2], cfg)
        out[opt] = (ours[0] - ref.detach()).abs().max().item()
    return out
