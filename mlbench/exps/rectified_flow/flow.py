"""Rectified flow (Liu, Gong, Liu 2022) in SD3's time convention: t = 0 is data, t = 1 is noise.

Straight interpolation between a data point x₀ and noise ε, and the velocity that follows it:

    x_t = (1 − t)·x₀ + t·ε,      v = dx_t/dt = ε − x₀,      L(θ) = E_t E ‖v_θ(x_t, t) − (ε − x₀)‖²

Sampling integrates dx/dt = v_θ(x, t) from t = 1 (noise) to t = 0 with Euler steps on a uniform
grid. Reflow (Liu et al. §2.3) retrains on the coupling (z, x = ODE(z)) that the learned flow
induces; on an independent coupling it is plain rectified-flow training again.
"""

from __future__ import annotations

import torch


def uniform_t(u):
    """t ~ U(0, 1) from u ~ U(0, 1) (the identity; named for symmetry with `logit_normal_t`)."""
    return u


def logit_normal_t(u, mean: float = 0.0, std: float = 1.0):
    """SD3's logit-normal timesteps, t = sigmoid(n), n ~ N(mean, std²), by inverting the normal CDF
    at u ~ U(0, 1), so arms that share u share their timestep ranks. Density
    π(t) = exp(−(logit t − m)²/2s²) / (s·√(2π)·t·(1 − t))."""
    return torch.sigmoid(mean + std * torch.special.ndtri(u))


def interpolate(x0, eps, t):
    """x_t and the regression target v = ε − x₀ for x₀, ε (M, B, D) and t (M, B)."""
    tt = t[..., None]
    return (1 - tt) * x0 + tt * eps, eps - x0


def time_grid(nfe: int, start: float = 1.0, end: float = 0.0) -> list[float]:
    """NFE + 1 uniformly spaced times from `start` (noise) to `end` (data), as Python floats."""
    return torch.linspace(start, end, nfe + 1, dtype=torch.float64).tolist()


def euler(velocity, z, nfe: int, *, keep: bool = False):
    """Euler on dx/dt = v(x, t) from z at t = 1 to t = 0: x ← x + (t_{i+1} − t_i)·v(x, t_i).

    `velocity(x, t)` takes x (M, n, D) and a float t. Returns x at t = 0, and with `keep` also the
    velocities (NFE, M, n, D) and the states (NFE + 1, M, n, D) along the way."""
    ts, x = time_grid(nfe), z
    velocities, states = [], [z]
    for t_now, t_next in zip(ts[:-1], ts[1:]):
        v = velocity(x, t_now)
        x = x + (t_next - t_now) * v
        if keep:
            velocities.append(v)
            states.append(x)
    if keep:
        return x, torch.stack(velocities), torch.stack(states)
    return x


def straightness(z, x, velocities):
    """Liu et al.'s straightness, normalised to be scale-free, along the model's own trajectory:

        S = ∫₀¹ E‖(z − x) − v(x_t, t)‖² dt / E‖z − x‖²

    (the time integral is the mean over the Euler steps). S = 0 iff every path is a straight line
    run at constant speed. z, x (M, n, D), velocities (NFE, M, n, D) -> (M,), in float64."""
    d = (z - x).double()  # (M, n, D)
    deviation = ((d[None] - velocities.double()) ** 2).sum(-1).mean((0, 2))  # (M,)
    return deviation / (d**2).sum(-1).mean(1)


def reflow_pairs(velocity, z, steps: int):
    """The coupling the flow induces: (z, x = Euler_steps(z)) for fixed noise z (M, n, D)."""
    with torch.no_grad():
        return z, euler(velocity, z, steps)


def shuffle_pairs(x, gens: list):
    """An independent coupling with the same marginals: each seed's x permuted by its own generator.
    x (S, n, D) -> (S, n, D)."""
    return torch.stack([x[k, torch.randperm(x.shape[1], generator=g)] for k, g in enumerate(gens)])
