"""Procedural images: sums of Gaussian blobs, as a cached HF dataset of blob parameters.

An image of side n is x(u, v) = Σ_j a_j exp(−((u − c_j)² + (v − d_j)²) / (2σ_j²)) over K blobs
with centres (c_j, d_j) ~ U[0, n)², widths σ_j ~ U[σ_min, σ_max] px and amplitudes a_j ~ N(0, 1).
The dataset stores only the 4K numbers of each image (drawn by numpy from an explicit seed in a
pure module-level generator, so `datasets` fingerprints it by its arguments and a second call,
even in a new process, reads the Arrow cache); `render` draws any batch of them at any size.
"""

from __future__ import annotations

from pathlib import Path

from mlbench.data import cache


def _blob_rows(n: int, blobs: int, size: int, sigma_min: float, sigma_max: float, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.0, size, (n, blobs, 2))
    sigma = rng.uniform(sigma_min, sigma_max, (n, blobs, 1))
    amplitude = rng.standard_normal((n, blobs, 1))
    for row in np.concatenate([centres, sigma, amplitude], -1).tolist():  # (n, K, 4)
        yield {"blobs": [v for blob in row for v in blob]}


def load(n: int, seed: int, cache_dir: Path, *, blobs: int = 4, size: int = 32, sigma_min: float = 2.0,
         sigma_max: float = 5.0):
    """(n, K, 4) float64 tensor of blob parameters (centre row, centre column, σ, amplitude)."""
    import torch

    ds = cache.build(_blob_rows, cache_dir, n=n, blobs=blobs, size=size, sigma_min=float(sigma_min),
                     sigma_max=float(sigma_max), seed=seed).with_format("torch")
    return ds[:]["blobs"].to(torch.float64).view(n, blobs, 4)  # ds[:]: a dict of tensors (datasets 5)


def render(params, size: int, dtype=None):
    """Images (..., size, size) from blob parameters (..., K, 4), computed in float64, returned in
    `dtype` (default float32)."""
    import torch

    grid = torch.arange(size, dtype=torch.float64, device=params.device)
    p = params.to(torch.float64)
    du = grid - p[..., 0:1]  # (..., K, n): row offsets
    dv = grid - p[..., 1:2]
    inv = 1.0 / (2.0 * p[..., 2:3] ** 2)  # (..., K, 1)
    rows = torch.exp(-du ** 2 * inv)  # separable: exp(−(du² + dv²)/2σ²) = exp(−du²/2σ²)·exp(−dv²/2σ²)
    cols = torch.exp(-dv ** 2 * inv) * p[..., 3:4]
    img = torch.einsum("...ku,...kv->...uv", rows, cols)
    return img.to(dtype or torch.float32)
