"""Sample quality against fresh data: MMD by random Fourier features (with its data-vs-data noise
floor), sliced Wasserstein-2, and for 8 Gaussians the per-mode std (true value 0.1).

Frequencies and directions are fixed per seed, so every sampler of a seed is measured alike.
"""

from __future__ import annotations

import torch

from mlbench.data.toy2d import ring_centres


def fourier_mean(x, omega):
    """Empirical characteristic function at frequencies ω: mean_i [cos ω·x_i, sin ω·x_i].

    x (S, n, D), omega (S, D, F) -> (S, 2F)."""
    total = 0
    for chunk in x.split(4096, dim=1):  # bounded memory for large reference sets
        arg = chunk @ omega  # (S, c, F)
        total = total + torch.cat([arg.cos(), arg.sin()], -1).sum(1)
    return total / x.shape[1]


def mmd(x, ref_features, omega):
    """MMD with the kernel k(x, y) = mean_h exp(−‖x − y‖²/2h²), by random Fourier features ω ~ N(0, I/h²):
    MMD² = mean_j |φ_x(ω_j) − φ_ref(ω_j)|² (a V-statistic: ≥ 0, with an O(1/n) floor). -> (S,)"""
    return ((fourier_mean(x, omega) - ref_features) ** 2).sum(-1).div(omega.shape[-1]).sqrt()


def reference_quantiles(ref, proj, n: int):
    """Quantiles at levels (i + ½)/n of the reference data projected on each direction. -> (S, n, P)"""
    idx = ((torch.arange(n, device=ref.device) + 0.5) * ref.shape[1] / n).long()
    return (ref @ proj).sort(1).values[:, idx]


def sliced_w2(x, ref_q, proj):
    """Sliced Wasserstein-2: sqrt(mean over directions of ∫(F_x⁻¹ − F_ref⁻¹)²) from sorted projections.

    x (S, n, D); ref_q (S, n, P) from `reference_quantiles`; proj (S, D, P) unit directions -> (S,)."""
    return (((x @ proj).sort(1).values - ref_q) ** 2).mean((1, 2)).sqrt()


def mode_std(x):
    """8 Gaussians: RMS distance to the nearest centre over sqrt(2) (true value 0.1). x (S, n, 2) -> (S,)."""
    centres = torch.as_tensor(ring_centres(), dtype=x.dtype, device=x.device)
    return (((x[:, :, None, :] - centres) ** 2).sum(-1).min(-1).values.mean(1) / 2).sqrt()


def quality(cfg, x, ev: dict) -> dict:
    """Per seed (S,) tensors: MMD (and its ratio to the floor), sliced W2, mode_std. A seed whose
    samples are not all finite (a sampler or a network that blew up) gets NaN."""
    finite = torch.isfinite(x).flatten(1).all(1)  # (S,)
    x = torch.where(finite[:, None, None], x, 0)
    nan = lambda v: torch.where(finite, v, torch.nan)
    d = nan(mmd(x, ev["ref_features"], ev["omega"]))
    out = {"mmd": d, "mmd_over_floor": d / ev["floor"], "sw2": nan(sliced_w2(x, ev["ref_q"], ev["proj"]))}
    if cfg.dataset == "8gaussians":
        out["mode_std"] = nan(mode_std(x))
    return out


def evaluator(cfg, gens: list, ref, fresh) -> dict:
    """Fixed per-seed frequencies, directions and reference statistics (one generator per seed);
    the floor = mean MMD of `floor_draws` fresh data sets. ref (S, n_ref, D), fresh (S, draws, n, D)."""
    S, _, dim = ref.shape
    h = torch.tensor(cfg.bandwidths)
    omega = torch.stack([torch.randn(dim, cfg.fourier_features, generator=g)
                         / h[torch.randint(len(h), (cfg.fourier_features,), generator=g)] for g in gens])
    proj = torch.stack([torch.randn(dim, cfg.projections, generator=g) for g in gens])
    proj = torch.nn.functional.normalize(proj, dim=1)
    omega, proj = omega.to(ref.device), proj.to(ref.device)  # (S, D, F), (S, D, P)
    ev = {"omega": omega, "ref_features": fourier_mean(ref, omega), "proj": proj,
          "ref_q": reference_quantiles(ref, proj, cfg.n_eval)}
    ev["floor"] = torch.stack([mmd(f, ev["ref_features"], omega) for f in fresh.unbind(1)]).mean(0)  # (S,)
    return ev
