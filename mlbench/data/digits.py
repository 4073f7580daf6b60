"""scikit-learn's shipped 8x8 `digits` (1797 images, 10 classes) as a cached HF dataset."""

from __future__ import annotations

from pathlib import Path

from mlbench.data import cache


def _digits_rows(order_seed: int):
    import numpy as np
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(order_seed).permutation(len(data.target))
    for i in order:
        yield {"pixels": (data.data[i] / 16.0).astype("float32").tolist(), "label": int(data.target[i])}


def load(cache_dir: Path, test_size: int = 497, order_seed: int = 0):
    """(x_train, y_train, x_test, y_test) as torch tensors; pixels scaled to [0, 1], shape (n, 64).

    The split is a fixed shuffle (by `order_seed`), the same for every run and process.
    """
    import torch

    # ds[:] materialises the columns (with datasets 5.x, ds["pixels"] is a lazy Column)
    cols = cache.build(_digits_rows, cache_dir, order_seed=order_seed).with_format("torch")[:]
    x, y = cols["pixels"].to(torch.float32), cols["label"].to(torch.long)
    return x[test_size:], y[test_size:], x[:test_size], y[:test_size]
