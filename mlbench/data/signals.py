"""Continuous test signals on [0, 1] for memory experiments, as a cached HF dataset.

Every signal is a finite sum of sinusoids, stored by its spectrum (so it can be sampled at
any rate: the same signal "stretched" is the same function sampled more densely):

    f(x) = Σ_m s_m sin(2π ν_m x) + c_m (cos(2π ν_m x) − 1),   x ∈ [0, 1],  f(0) = 0.

Families (ν in cycles per history length):
- `bandlimited`: white noise band-limited to `cutoff` — ν = ½, 1, …, cutoff (a half-cycle
  grid, so the signal is not periodic on [0, 1]), s, c ~ N(0, 1/terms).
- `randomwalk`: Brownian motion by its Karhunen–Loève series, W(x) = Σ_k Z_k √2
  sin((k − ½)πx) / ((k − ½)π), truncated at `walk_terms` (= a walk of 2·walk_terms steps).
- `sines`: `sine_terms` sinusoids with frequencies log-uniform in [½, 2·cutoff] (several
  timescales), Gaussian amplitudes and uniform phases.
"""

from __future__ import annotations

import math
from pathlib import Path

from mlbench.data import cache

FAMILIES = ("bandlimited", "randomwalk", "sines")


def _spectrum(family: str, rng, cutoff: float, walk_terms: int, sine_terms: int):
    """(freq, sin_coef, cos_coef) of one signal, as lists."""
    import numpy as np

    if family == "bandlimited":
        freq = np.arange(1, int(2 * cutoff) + 1) / 2.0
        s, c = rng.standard_normal((2, len(freq))) / math.sqrt(len(freq))
    elif family == "randomwalk":
        half = np.arange(1, walk_terms + 1) - 0.5
        freq = half / 2.0
        s, c = rng.standard_normal(walk_terms) * math.sqrt(2.0) / (half * math.pi), np.zeros(walk_terms)
    elif family == "sines":
        freq = np.exp(rng.uniform(math.log(0.5), math.log(2 * cutoff), sine_terms))
        amp, phase = rng.standard_normal(sine_terms), rng.uniform(0, 2 * math.pi, sine_terms)
        s, c = amp * np.cos(phase), amp * np.sin(phase)
    else:
        raise ValueError(f"unknown signal family {family!r}: choose from {', '.join(FAMILIES)}")
    return freq.tolist(), s.tolist(), c.tolist()


def _signal_rows(seeds: tuple[int, ...], families: tuple[str, ...], count: int, cutoff: float,
                 walk_terms: int, sine_terms: int):
    """One row per (seed index, family, signal); randomness only from the given seeds.
    (Tuples, not lists: `datasets` would read lists as shards to split over workers.)"""
    import numpy as np

    for k, seed in enumerate(seeds):
        for family in families:
            rng = np.random.default_rng([seed, FAMILIES.index(family)])
            for i in range(count):
                freq, s, c = _spectrum(family, rng, cutoff, walk_terms, sine_terms)
                yield {"seed_index": k, "family": family, "index": i, "freq": freq, "sin_coef": s, "cos_coef": c}


def load(cache_dir: Path, seeds: list[int], families: tuple[str, ...], count: int, cutoff: float,
         walk_terms: int, sine_terms: int = 5):
    """Spectra of `count` signals per family per seed: dict of float64 tensors (S, B, M),
    zero-padded to the longest spectrum, with B = len(families) * count (family-major)."""
    import torch

    ds = cache.build(_signal_rows, cache_dir, seeds=tuple(seeds), families=tuple(families), count=count,
                     cutoff=float(cutoff), walk_terms=walk_terms, sine_terms=sine_terms)
    width = max(len(f) for f in ds["freq"])
    out = {}
    for key in ("freq", "sin_coef", "cos_coef"):
        rows = [r + [0.0] * (width - len(r)) for r in ds[key]]
        out[key] = torch.tensor(rows, dtype=torch.float64).view(len(seeds), len(families) * count, width)
    return out


def sample(spectra: dict, length: int, device="cpu", chunk: int = 4096):
    """f(x_k) at x_k = k / length, k = 1..length: float64 (S, B, length).

    Sinusoids are tabulated once per distinct frequency (U of them, `chunk` samples at a time)
    and mixed by a matmul.
    """
    import torch

    freq = spectra["freq"].to(device)
    uniq, where = torch.unique(freq, return_inverse=True)  # (U,), (S, B, M)
    S, B, M = freq.shape
    mix_sin = torch.zeros(S * B, len(uniq), dtype=torch.float64, device=device)
    mix_cos = torch.zeros_like(mix_sin)
    mix_sin.scatter_add_(1, where.view(S * B, M), spectra["sin_coef"].to(device).view(S * B, M))
    mix_cos.scatter_add_(1, where.view(S * B, M), spectra["cos_coef"].to(device).view(S * B, M))
    out = []
    for start in range(1, length + 1, chunk):
        x = torch.arange(start, min(start + chunk, length + 1), dtype=torch.float64, device=device) / length
        phase = 2 * math.pi * uniq[:, None] * x[None, :]  # (U, chunk)
        out.append(mix_sin @ torch.sin(phase) + mix_cos @ (torch.cos(phase) - 1.0))  # (S*B, chunk)
    return torch.cat(out, -1).view(S, B, length)
