"""Binarised digits: x_d = [intensity_d >= threshold] on scikit-learn's shipped 8x8 set.

The images come through `mlbench.data.digits.load` (cached as Arrow, a fixed order); each seed
draws its own train / validation / test split, shared by every model of that seed (paired
comparisons). The negative control permutes every pixel column independently across the
images of each split: each pixel keeps its marginal, every dependency between pixels is gone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mlbench.data import digits

INTENSITY_MAX = 16  # scikit-learn's digits are integers 0..16


def intensities(cache_dir, image_size: int) -> torch.Tensor:
    """All 1,797 images as intensities in [0, 16], (N, image_size²); resized bilinearly when
    image_size != 8 (the full profile's 16x16 digits), so strokes stay smooth."""
    x, _, _, _ = digits.load(cache_dir, test_size=0)  # every image, one fixed order
    x = x * INTENSITY_MAX  # exact: the loader stores k/16 in float32
    if image_size != 8:
        x = F.interpolate(x.view(-1, 1, 8, 8), size=(image_size, image_size), mode="bilinear",
                          align_corners=False).flatten(1)
    return x


def binarise(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """x_d = [intensity_d >= threshold] as float32 0/1."""
    return (x >= threshold).to(torch.float32)


def permute_columns(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Each pixel column permuted on its own across the images: marginals kept, joint destroyed."""
    n, d = x.shape
    order = torch.argsort(torch.rand(n, d, generator=g), dim=0)  # (N, D): an independent permutation per column
    return torch.gather(x, 0, order)


def splits(images: torch.Tensor, gens: list[torch.Generator], train_size: int, val_size: int,
           shuffle_pixels: bool) -> dict[str, torch.Tensor]:
    """{"train", "val", "test"}: (S, N_split, D) binary images, one random split per seed.
    The test split is every image not in train or validation."""
    out: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": []}
    for g in gens:
        order = torch.randperm(len(images), generator=g)
        parts = {"train": order[:train_size], "val": order[train_size:train_size + val_size],
                 "test": order[train_size + val_size:]}
        for name, idx in parts.items():
            x = images[idx]
            out[name].append(permute_columns(x, g) if shuffle_pixels else x)
    return {name: torch.stack(xs) for name, xs in out.items()}
