"""Four ways to sample one score model: DDPM ancestral, reverse-SDE Euler–Maruyama,
predictor–corrector, and the probability-flow ODE (Euler, Heun, adaptive RK45).

One time grid t_k = linspace(1, eps, K+1) serves every sampler; a discrete step t -> s uses the
exact β = 1 − ᾱ(t)/ᾱ(s), so any K is valid, and the last step returns the noise-free mean.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.integrate import solve_ivp

from mlbench.exps.ddpm_vs_sde.score_model import score_fn
from mlbench.exps.ddpm_vs_sde.sde import beta_t, posterior_variance, step_beta


def pf_drift(score, x, t: float, cfg):
    """Probability-flow ODE drift f − ½g²s = −½β(t)(x + s(x, t))."""
    return -0.5 * beta_t(t, cfg) * (x + score(x, t))


def _noise(gens: list, like):
    return torch.stack([torch.randn(like.shape[1:], generator=g) for g in gens]).to(like.device)  # (S, n, D)


def sample(name: str, score, x, steps: int, cfg, gens: list, corrector_gens: list):
    """Integrate x (S, n, D) ~ N(0, I) from t=1 down to t=eps in `steps` steps of sampler `name`."""
    ts = [1 + (cfg.eps - 1) * k / steps for k in range(steps + 1)]
    for k in range(steps):
        t, s, last = ts[k], ts[k + 1], k == steps - 1
        b, beta, dt = beta_t(t, cfg), step_beta(t, s, cfg), s - t  # dt < 0
        if name == "ode-euler":
            x = x + pf_drift(score, x, t, cfg) * dt
            continue
        if name == "ode-heun":  # trapezoid with an Euler predictor
            d1 = pf_drift(score, x, t, cfg)
            x = x + 0.5 * (d1 + pf_drift(score, x + d1 * dt, s, cfg)) * dt
            continue
        if name == "pc":  # Langevin corrector at t (score_sde: batch-mean norms), then reverse diffusion
            grad, z = score(x, t), _noise(corrector_gens, x)
            ratio = z.norm(dim=-1).mean(-1) / grad.norm(dim=-1).mean(-1)  # (S,)
            step = (2 * (1 - beta) * (cfg.snr * ratio) ** 2)[:, None, None]
            x = x + step * grad + (2 * step).sqrt() * z
            mean, std = (2 - math.sqrt(1 - beta)) * x + beta * score(x, t), math.sqrt(beta)
        elif name == "em":  # x + [f − g²s]dt + g sqrt(|dt|) z
            mean, std = x + (-0.5 * b * x - b * score(x, t)) * dt, math.sqrt(-b * dt)
        else:  # ancestral: σ² = β, or the posterior variance β̃ = β(1 − ᾱ_s)/(1 − ᾱ_t)
            mean = (x + beta * score(x, t)) / math.sqrt(1 - beta)
            std = math.sqrt(beta if name == "ancestral" else posterior_variance(t, s, cfg))
        x = mean if last else mean + std * _noise(gens, x)
    return x


def rk45(params: dict, x_T, cfg) -> tuple:
    """PF-ODE from t=1 to eps by scipy's adaptive Dormand–Prince RK45, one seed at a time.

    Returns samples (S, n, D) and the network evaluations (nfev) per seed."""
    out, nfe = [], []
    for k in range(x_T.shape[0]):
        score = score_fn({n: p[k:k + 1] for n, p in params.items()}, cfg)

        def drift(t, y):
            x = torch.from_numpy(y).to(x_T.device, torch.float32).view(1, *x_T.shape[1:])
            with torch.no_grad():
                return pf_drift(score, x, float(t), cfg).double().cpu().numpy().ravel()

        sol = solve_ivp(drift, (1.0, cfg.eps), x_T[k].double().cpu().numpy().ravel(), method="RK45",
                        rtol=cfg.rk45_tol, atol=cfg.rk45_tol)
        out.append(torch.from_numpy(np.ascontiguousarray(sol.y[:, -1])).float().view(x_T.shape[1:]))
        nfe.append(float(sol.nfev))
    return torch.stack(out).to(x_T.device), nfe
