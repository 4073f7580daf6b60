"""Variational lower bounds on I(x; y) from one batch of critic scores.

Every function takes s (..., N, N) with s[..., i, j] = f(y_i, x_j): row i holds one y and all N
x's of its batch, the positive pair (x_i, y_i) on the diagonal; leading dims are stacked models
and independent batches. Each returns one value per batch (...,).

InfoNCE (van den Oord et al. 2018, CPC), the positive kept in the denominator:
    Î_NCE = log N + (1/N) Σ_i [ s_ii − log Σ_j exp(s_ij) ].
Every bracket is a log-softmax, ≤ 0, so Î_NCE ≤ log N for every batch and every critic.

NWJ (Nguyen, Wainwright, Jordan 2010), with f = s − 1 (Poole et al. 2019's baseline e):
    Î_NWJ = 1 + mean_i f_ii − mean_{i≠j} exp(f_ij)    (unbounded above, high variance).

SMILE (Song & Ermon 2020): trained through the Jensen-Shannon f-GAN bound, valued as
Donsker-Varadhan with a clipped partition function:
    Î_SMILE = mean_i s_ii − log mean_{i≠j} exp(clip(s_ij, −τ, τ)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _diag(s: torch.Tensor) -> torch.Tensor:
    return s.diagonal(dim1=-2, dim2=-1)  # (..., N): the positive pairs


def infonce(s: torch.Tensor) -> torch.Tensor:
    """log N + mean_i log softmax_j(s_ij)[j = i]: logsumexp over the x_j of a fixed y_i (dim −1)."""
    return math.log(s.shape[-1]) + (_diag(s) - s.logsumexp(-1)).mean(-1)


def _logmeanexp_offdiag(s: torch.Tensor) -> torch.Tensor:
    """log mean_{i≠j} exp(s_ij) over each batch's N(N − 1) negative pairs."""
    n = s.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=s.device)
    return s.masked_fill(eye, -math.inf).flatten(-2).logsumexp(-1) - math.log(n * (n - 1))


def nwj(s: torch.Tensor) -> torch.Tensor:
    f = s - 1.0
    return 1.0 + _diag(f).mean(-1) - _logmeanexp_offdiag(f).exp()


def js_fgan(s: torch.Tensor) -> torch.Tensor:
    """Nowozin et al. 2016's lower bound on the Jensen-Shannon divergence (up to constants)."""
    n, d = s.shape[-1], _diag(s)
    negatives = (F.softplus(s).sum((-2, -1)) - F.softplus(d).sum(-1)) / (n * (n - 1))
    return -F.softplus(-d).mean(-1) - negatives


def smile(s: torch.Tensor, tau: float) -> torch.Tensor:
    """Value: DV with the partition clipped to [−τ, τ]; gradient: that of the JS bound."""
    dv = _diag(s).mean(-1) - _logmeanexp_offdiag(s.clamp(-tau, tau))
    js = js_fgan(s)
    return js + (dv - js).detach()


def bound(s: torch.Tensor, objective: str, smile_tau: float) -> torch.Tensor:
    """The named bound of every batch in s (..., N, N) -> (...,)."""
    if objective == "infonce":
        return infonce(s)
    if objective == "nwj":
        return nwj(s)
    if objective == "smile":
        return smile(s, smile_tau)
    raise ValueError(f"unknown objective {objective!r}")
