"""2-D toy distributions (8 Gaussians, two moons, swiss roll, checkerboard) as cached HF datasets.

Every set is drawn by numpy from an explicit seed inside a pure module-level generator, so
`datasets` fingerprints it by (name, n, seed) and a second call, even in a new process, reads
the Arrow cache instead of regenerating. All sets are roughly centred with unit-order scale.
"""

from __future__ import annotations

import math
from pathlib import Path

from mlbench.data import cache

NAMES = ("8gaussians", "moons", "swissroll", "checkerboard")
RING_RADIUS = 1.4  # 8 Gaussians: centres on this circle (Song et al.-style toy; science doc)
RING_STD = 0.1  # ... each with this isotropic std


def ring_centres():
    """The 8 mode centres of `8gaussians`, shape (8, 2)."""
    import numpy as np

    angles = 2 * math.pi * np.arange(8) / 8
    return RING_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1)


def draw(name: str, n: int, seed: int):
    """n points of distribution `name` as a float64 numpy array (n, 2), from `seed` alone."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if name == "8gaussians":
        return ring_centres()[rng.integers(0, 8, n)] + RING_STD * rng.standard_normal((n, 2))
    if name == "moons":  # sklearn's make_moons, centred and scaled to unit-order spread
        t = math.pi * rng.random(n)
        upper = rng.random(n) < 0.5
        x = np.where(upper, np.cos(t), 1 - np.cos(t))
        y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
        return 1.2 * (np.stack([x - 0.5, y - 0.25], 1) + 0.05 * rng.standard_normal((n, 2)))
    if name == "swissroll":
        t = 1.5 * math.pi * (1 + 2 * rng.random(n))
        pts = np.stack([t * np.cos(t), t * np.sin(t)], 1) / 7.0
        return pts + 0.05 * rng.standard_normal((n, 2))
    if name == "checkerboard":  # 8 filled squares of a 4x4 board on [-2, 2]^2 (FFJORD's toy)
        x1 = 4 * rng.random(n) - 2
        x2 = rng.random(n) - 2 * rng.integers(0, 2, n) + np.floor(x1) % 2
        return np.stack([x1, x2], 1) * 0.75
    raise ValueError(f"unknown toy distribution {name!r}: choose from {', '.join(NAMES)}")


def _toy_rows(name: str, n: int, seed: int):
    for x, y in draw(name, n, seed).tolist():
        yield {"x": [x, y]}


def load(name: str, n: int, seed: int, cache_dir: Path):
    """(n, 2) float32 torch tensor of `name`, built once with `datasets` and cached as Arrow."""
    import torch

    if name not in NAMES:
        raise ValueError(f"unknown toy distribution {name!r}: choose from {', '.join(NAMES)}")
    ds = cache.build(_toy_rows, cache_dir, name=name, n=n, seed=seed).with_format("torch")
    return ds[:]["x"].to(torch.float32)  # ds["x"] is a lazy Column in datasets 5; ds[:] a dict of tensors
