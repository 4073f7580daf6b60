"""Loss scaling (Micikevicius et al. §3.2) and torch.amp.GradScaler's dynamic rule, per member.

Gradients of a converging network fall below fp16's smallest subnormal 2^-24 and become 0.
Multiplying the loss by s shifts every gradient by log2 s (the chain rule is linear), and the
update divides by s again in fp32. Static: one s for the whole run (the paper used 8 to 32k).
Dynamic (GradScaler): start at s0 = 2^16; on inf/NaN gradients skip the step and halve s; after
`growth_interval` clean steps in a row double s.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from mlbench.core.grid import Grid
from mlbench.exps.fp16_mixed.precision import Storage, forward

GROWTH, BACKOFF = 2.0, 0.5  # torch.amp.GradScaler defaults


def update_scale(scale, tracker, found_inf, interval: int):
    """GradScaler's rule (torch._amp_update_scale_), elementwise over members:
    inf/NaN: s <- s·BACKOFF, tracker <- 0; else tracker += 1 and at `interval`: s <- s·GROWTH, tracker <- 0."""
    grown = tracker + 1
    grow = ~found_inf & (grown >= interval) & torch.isfinite(scale * GROWTH)
    scale = torch.where(found_inf, scale * BACKOFF, torch.where(grow, scale * GROWTH, scale))
    return scale, torch.where(found_inf | grow, torch.zeros_like(tracker), grown)


class LossScaler:
    """Each member's loss scale s (M,): 1 ("none"), `static`, or dynamic from `init` by GradScaler's rule."""

    def __init__(self, grid: Grid, kinds: Mapping[str, str], static: float, init: float, interval: int, device):
        s0 = {"none": 1.0, "static": static, "dynamic": init}
        self.scale = grid.per_arm({arm: s0[kinds[arm]] for arm in grid.arms}, device=device)  # (M,)
        self.dynamic = grid.per_arm({arm: kinds[arm] == "dynamic" for arm in grid.arms}, device=device)
        self.tracker = torch.zeros_like(self.scale, dtype=torch.long)  # clean steps since the last change
        self.interval = interval

    def update(self, found_inf) -> None:
        """After a step: the dynamic members' scales follow GradScaler; the others keep theirs."""
        scale, tracker = update_scale(self.scale, self.tracker, found_inf, self.interval)
        self.scale = torch.where(self.dynamic, scale, self.scale)
        self.tracker = torch.where(self.dynamic, tracker, self.tracker)


def scaled_backward(params: dict, x, y, storage: Storage, scale, hooks: list | None = None):
    """Per-member mean cross-entropy L (M,) on the batch (x (M, B, 64), y (M, B)); backward of
    sum_m s_m L_m, so each member's parameters get its own scaled gradient s_m dL_m/dθ."""
    loss = F.cross_entropy(forward(params, x, storage, hooks).transpose(1, 2), y, reduction="none").mean(1)  # (M,)
    (loss * scale).sum().backward()  # members share nothing: each gets its own gradient
    return loss.detach()
