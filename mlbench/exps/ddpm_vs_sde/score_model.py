"""The ε-network ε_θ(x, t), its score s = −ε_θ/σ(t), and the simple denoising loss it trains on.

S networks (one per seed) are stacked along a leading dimension and evaluated with `bmm`; they
share no weights, so the sum of their losses gives each its own gradient, and one elementwise
optimiser (Adam) over the stacked tensors is S independent optimisers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mlbench.exps.ddpm_vs_sde.sde import log_alpha, marginal_prob


def init_params(cfg, dim: int, gens: list) -> dict:
    """Stacked MLP weights for S seeds: [x, features(t)] -> 3 x hidden (SiLU) -> dim; nn.Linear init."""
    H = cfg.hidden
    sizes = [(dim + cfg.time_features, H), (H, H), (H, H), (H, dim)]
    params = {}
    for layer, (fan_in, fan_out) in enumerate(sizes):
        bound = 1 / math.sqrt(fan_in)
        for name, shape in ((f"w{layer}", (fan_in, fan_out)), (f"b{layer}", (1, fan_out))):
            params[name] = torch.stack([(2 * torch.rand(shape, generator=g) - 1) * bound for g in gens])  # (S, ...)
    return params


def time_embedding(t, n: int):
    """[sin(ω t), cos(ω t)] with ω geometric in [1, 1000]: (..., ) -> (..., n)."""
    omega = torch.logspace(0, 3, n // 2, dtype=t.dtype, device=t.device)
    arg = t[..., None] * omega
    return torch.cat([arg.sin(), arg.cos()], -1)


def eps_net(params: dict, x, t, n_features: int):
    """ε_θ(x, t) for S stacked networks: x (S, B, D), t (S, B) or (S, 1) -> (S, B, D)."""
    dim = x.shape[-1]
    w0 = params["w0"]
    h = torch.baddbmm(params["b0"], x, w0[:, :dim]) + time_embedding(t, n_features) @ w0[:, dim:]  # (S, B, H)
    for layer in (1, 2):
        h = torch.baddbmm(params[f"b{layer}"], F.silu(h), params[f"w{layer}"])
    return torch.baddbmm(params["b3"], F.silu(h), params["w3"])


def score_fn(params: dict, cfg):
    """s(x, t) = −ε_θ(x, t)/σ(t) for a scalar t in [eps, 1]."""
    def score(x, t: float):
        sigma = marginal_prob(t, cfg)[1]
        return -eps_net(params, x, x.new_full((x.shape[0], 1), t), cfg.time_features) / sigma
    return score


def training_batch(cfg, data, gens: list):
    """Per seed, from its own generator: B data points x_0, times t = eps + (1 − eps)u^p, noise z.

    data (S, N, D) -> x_0 (S, B, D), t (S, B), z (S, B, D)."""
    S, N, D = data.shape
    idx = torch.stack([torch.randint(N, (cfg.batch_size,), generator=g) for g in gens]).to(data.device)  # (S, B)
    u = torch.stack([torch.rand(cfg.batch_size, generator=g) for g in gens]).to(data.device)
    t = u ** cfg.t_power * (1 - cfg.eps) + cfg.eps
    z = torch.stack([torch.randn(cfg.batch_size, D, generator=g) for g in gens]).to(data.device)  # (S, B, D)
    return data.gather(1, idx[..., None].expand(-1, -1, D)), t, z


def denoising_loss(params: dict, cfg, x0, t, z):
    """Ho et al.'s simple loss per network, ‖ε_θ(α(t)x_0 + σ(t)z, t) − z‖² (mean over batch and D): (S,)."""
    la = log_alpha(t, cfg)[..., None]
    x_t = la.exp() * x0 + (-torch.expm1(2 * la)).sqrt() * z
    return ((eps_net(params, x_t, t, cfg.time_features) - z) ** 2).mean((1, 2))


def train_step(params: dict, opt, cfg, batch):
    """One optimiser step on every stacked network; returns the per-network loss (S,)."""
    per_seed = denoising_loss(params, cfg, *batch)  # (S,)
    opt.zero_grad(set_to_none=True)
    per_seed.sum().backward()  # seeds share no weights: each network gets its own gradient
    opt.step()
    return per_seed.detach()
