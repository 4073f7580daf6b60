"""The network every objective shares, stacked over M models, and the optimiser that trains it.

    f_θ(x, t) = W₃ σ(W₂ σ(W₁ σ(W₀ [x, t, sin(2ᵏπt), cos(2ᵏπt)]_{k<K} + b₀) + b₁) + b₂) + b₃,   σ = SiLU

The same MLP is a velocity v_θ (rectified flow) or a noise predictor ε̂_θ (VP); only its training
target differs. Parameters are stacked `(M, ...)` and applied with `baddbmm`, so M models (every
objective × seed) are one batched model; Adam is elementwise, so one Adam over the stack is M
independent optimisers.
"""

from __future__ import annotations

import math

import torch


def time_features(t, frequencies: int):
    """[t, sin(2ᵏπt), cos(2ᵏπt)] for k < `frequencies`: (M, B) -> (M, B, 1 + 2·frequencies)."""
    omega = math.pi * 2.0 ** torch.arange(frequencies, dtype=t.dtype, device=t.device)
    arg = t[..., None] * omega
    return torch.cat([t[..., None], arg.sin(), arg.cos()], -1)


def init_params(dim: int, hidden: int, frequencies: int, gens: list) -> dict:
    """One draw per seed (S, ...) with nn.Linear's default init, U(±1/√fan_in), weights and biases."""
    fan_ins = [dim + 1 + 2 * frequencies, hidden, hidden, hidden]
    fan_outs = [hidden, hidden, hidden, dim]
    params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(fan_ins, fan_outs)):
        bound = 1.0 / math.sqrt(fan_in)
        for name, shape in ((f"w{layer}", (fan_in, fan_out)), (f"b{layer}", (1, fan_out))):
            params[name] = torch.stack([(2 * torch.rand(shape, generator=g) - 1) * bound for g in gens])
    return params


def forward(params: dict, x, t, frequencies: int):
    """M stacked networks: x (M, B, D), t (M, B) -> (M, B, D)."""
    h = torch.cat([x, time_features(t, frequencies)], -1)  # (M, B, D + 1 + 2K)
    for layer in range(3):
        h = torch.nn.functional.silu(torch.baddbmm(params[f"b{layer}"], h, params[f"w{layer}"]))  # (M, B, H)
    return torch.baddbmm(params["b3"], h, params["w3"])


def cosine_lr(lr: float, step: int, total: int) -> float:
    """lr · ½(1 + cos(π·step/total)): from lr down to 0 over `total` steps."""
    return lr * 0.5 * (1 + math.cos(math.pi * step / total))


class Adam:
    """Adam (Kingma & Ba 2015; torch.optim.Adam's defaults) on a dict of stacked tensors, in place.

    Written out because the first torch.optim call in a process imports torch._dynamo (~1.4 s of
    a quick run's budget)."""

    def __init__(self, params: dict, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.betas, self.eps, self.t = params, betas, eps, 0
        self.moments = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in params.items()}

    @torch.no_grad()
    def step(self, grads: dict, lr: float) -> None:
        b1, b2 = self.betas
        self.t += 1
        for name, p in self.params.items():
            m, v = self.moments[name]
            m.mul_(b1).add_(grads[name], alpha=1 - b1)
            v.mul_(b2).addcmul_(grads[name], grads[name], value=1 - b2)
            denom = (v / (1 - b2**self.t)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-lr / (1 - b1**self.t))


def train_step(params: dict, opt: Adam, x_t, t, target, lr: float, frequencies: int):
    """One Adam step on ‖f_θ(x_t, t) − target‖², mean per model, summed over models (they share no
    weights, so each gets its own gradient). Returns the per-model loss (M,)."""
    per_model = ((forward(params, x_t, t, frequencies) - target) ** 2).mean((1, 2))  # (M,)
    grads = torch.autograd.grad(per_model.sum(), list(params.values()))
    opt.step(dict(zip(params, grads)), lr)
    return per_model.detach()
