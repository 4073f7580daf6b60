"""Matplotlib without a display, imported only when an experiment draws."""

from __future__ import annotations

from typing import Any


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 5.0, height: float = 3.6, **kw: Any):
    """(fig, axes) on the Agg backend, sized `width` x `height` inches per panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
