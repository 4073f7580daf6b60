"""Figures for run folders, built on `matplotlib.figure.Figure` with its own Agg canvas.

Nothing here touches pyplot or the process's global backend, so a notebook user's backend is
left alone. Helpers draw the two plots most experiments need: curves by arm (mean over seeds,
thin per-seed lines) and a metric against x by arm (mean line, a dot per seed).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 5.0, height: float = 3.6, **kw: Any):
    """(fig, axes) with axes[row][col], sized `width` x `height` inches per panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def _finite_mean(values: Sequence[float]) -> float:
    xs = [v for v in values if not math.isnan(v)]
    return sum(xs) / len(xs) if xs else math.nan


def curves(ax, x: Sequence[float], by_arm: Mapping[str, Sequence[Sequence[float]]], *,
           xlabel: str, ylabel: str, title: str = "", seeds: bool = True, **line_kw: Any) -> None:
    """One line per arm: the mean over seeds of `by_arm[arm]` (seeds × len(x)), with each seed a
    thin line of the same colour. NaN values (diverged seeds) are left out of the mean."""
    for arm, rows in by_arm.items():
        mean = [_finite_mean(col) for col in zip(*rows)]
        line, = ax.plot(x, mean, label=arm, **line_kw)
        if seeds and len(rows) > 1:
            for row in rows:
                ax.plot(x, row, color=line.get_color(), lw=0.5, alpha=0.35)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if by_arm:
        ax.legend(fontsize="small")


def by_x(ax, xs: Sequence[float], by_arm: Mapping[str, Sequence[Sequence[float]]], *,
         xlabel: str, ylabel: str, title: str = "", style: str = "o-") -> None:
    """A metric against x for each arm: `by_arm[arm][i]` holds the per-seed values at xs[i];
    the line is their mean, each seed a dot."""
    for arm, per_x in by_arm.items():
        line, = ax.plot(xs, [_finite_mean(v) for v in per_x], style, label=arm)
        for x, vals in zip(xs, per_x):
            ax.scatter([x] * len(vals), vals, s=10, color=line.get_color(), alpha=0.5)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if by_arm:
        ax.legend(fontsize="small")
