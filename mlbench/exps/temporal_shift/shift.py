"""The temporal shift (Lin, Gan, Han 2019, §3 and Fig. 1): move a fraction of the channels one frame
along time, zero-padded, with no parameters and no multiply-adds.

For a feature map x of shape (..., C, T, H, W) and fold = C // fold_div (fold_div = 8 in the
paper, so 1/8 of the channels each way):

    bidirectional (offline, Fig. 1b):  y[:fold, t]       = x[:fold, t+1]        (0 at t = T−1)
                                       y[fold:2·fold, t] = x[fold:2·fold, t−1]  (0 at t = 0)
                                       y[2·fold:, t]     = x[2·fold:, t]
    uni-directional (online, Fig. 1c): y[:fold, t]       = x[:fold, t−1]        (0 at t = 0)
                                       y[fold:, t]       = x[fold:, t]

Zero padding, not a roll: `torch.roll` would join the last frame to the first. A 3-D
convolution with temporal kernel (w₋, w₀, w₊) is w₋·x(t−1) + w₀·x(t) + w₊·x(t+1); after the
shift, a 2-D convolution sees x(t−1), x(t) and x(t+1) in different channels and mixes them at
the cost of one frame's convolution: a 3-D kernel whose temporal taps are fixed and sparse.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _from_next(part: torch.Tensor) -> torch.Tensor:
    """Frame t takes frame t+1 (zeros at the last frame): (..., T, H, W)."""
    return F.pad(part[..., 1:, :, :], (0, 0, 0, 0, 0, 1))


def _from_prev(part: torch.Tensor) -> torch.Tensor:
    """Frame t takes frame t−1 (zeros at the first frame): (..., T, H, W)."""
    return F.pad(part[..., :-1, :, :], (0, 0, 0, 0, 1, 0))


def temporal_shift(x: torch.Tensor, fold_div: int = 8, bidirectional: bool = True) -> torch.Tensor:
    """Shift channel folds of x (..., C, T, H, W) one frame in time (see the module docstring)."""
    fold = x.shape[-4] // fold_div
    if bidirectional:
        pieces = [_from_next(x[..., :fold, :, :, :]), _from_prev(x[..., fold:2 * fold, :, :, :]),
                  x[..., 2 * fold:, :, :, :]]
    else:
        pieces = [_from_prev(x[..., :fold, :, :, :]), x[..., fold:, :, :, :]]
    return torch.cat(pieces, dim=-4)
