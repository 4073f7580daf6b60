"""The paper's simulation (§ "Simulation experiment", Fig. 3; the authors' `test_1715k.m`).

Targets sit at (10, 10) with area 1 and aspect ratio w:h in {1:4, 1:3, 1:2, 1:1, 2:1, 3:1, 4:1}.
Anchors are centred uniformly in the disc of radius 3 around them (r = 3√U, θ = 2πU'), with
area s × the target's, s ∈ {0.5, 0.67, 0.75, 1, 1.33, 1.5, 2}, and the same 7 aspect ratios:
343 cases per centre, 5,000 centres in the paper (1,715,000 cases). Each case is regressed by
gradient descent on its loss,

    B_{t+1} = B_t − η_t (2 − IoU(B_t, B_gt)) ∂L/∂B_t,    η_t = 0.1 (t ≤ 160), 0.01 (≤ 180), 0.001 (≤ 200),

and its error is |x − x_gt| + |y − y_gt| + |w − w_gt| + |h − h_gt|. The ascent direction
D = −∂L/∂B comes from autograd (`exact_ascent`) or from the MATLAB's hand-written gradients
(`paper_gradients.paper_ascent`).

Boxes are stacked as (4, M, N) tensors: coordinate (x, y, w, h), model, case. Models of one
loss are contiguous rows (a `Block`), so each loss's terms are computed on its rows only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mlbench.exps.diou_box_regression.boxes import LOSSES, iou
from mlbench.exps.diou_box_regression.paper_gradients import Fixes, paper_ascent

CENTRE = (10.0, 10.0)
ASPECT_RATIOS = ((0.5, 2.0), (math.sqrt(3) / 3, math.sqrt(3)), (math.sqrt(2) / 2, math.sqrt(2)), (1.0, 1.0),
                 (math.sqrt(2), math.sqrt(2) / 2), (math.sqrt(3), math.sqrt(3) / 3), (2.0, 0.5))  # (w, h), area 1
ANCHOR_SCALES = (0.5, 0.67, 0.75, 1.0, 1.33, 1.5, 2.0)  # anchor area / target area
CASES_PER_CENTRE = len(ASPECT_RATIOS) * len(ANCHOR_SCALES) * len(ASPECT_RATIOS)  # 343


def anchor_centres(n: int, radius: float, generator: torch.Generator) -> torch.Tensor:
    """n centres uniform in the disc of `radius` around CENTRE, (n, 2) float64: r = radius·√U, θ = 2πU'."""
    r = radius * torch.sqrt(torch.rand(n, generator=generator, dtype=torch.float64))
    theta = 2 * math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    return torch.stack((CENTRE[0] + r * torch.cos(theta), CENTRE[1] + r * torch.sin(theta)), -1)


def regression_cases(centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors and targets (4, n·343) as (x, y, w, h), in the MATLAB's loop order: centre,
    target ratio, anchor scale, anchor ratio (innermost)."""
    ratio = torch.tensor(ASPECT_RATIOS, dtype=torch.float64)                       # (7, 2)
    scale = torch.tensor(ANCHOR_SCALES, dtype=torch.float64)                       # (7,)
    side = torch.sqrt(scale[None, :] * ratio[:, 0:1] * ratio[:, 1:2])              # (7 targets, 7 scales)
    anchor_wh = ratio[None, None, :, :] * side[:, :, None, None]                   # (7, 7, 7, 2)
    target_wh = ratio[:, None, None, :].expand_as(anchor_wh)
    n = centres.shape[0]
    xy = centres[:, None, None, None, :].expand(n, *anchor_wh.shape)               # (n, 7, 7, 7, 2)
    anchors = torch.cat((xy, anchor_wh.expand_as(xy)), -1).reshape(-1, 4).T
    centre = torch.tensor(CENTRE, dtype=torch.float64).expand_as(xy)
    targets = torch.cat((centre, target_wh.expand_as(xy)), -1).reshape(-1, 4).T
    return anchors.contiguous(), targets.contiguous()


def learning_rates(stage_steps: tuple[int, ...], stage_lrs: tuple[float, ...]) -> list[float]:
    """η_t for t = 1..T: the paper's piecewise-constant schedule."""
    return [lr for steps, lr in zip(stage_steps, stage_lrs) for _ in range(steps)]


def case_error(boxes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """|x − x_gt| + |y − y_gt| + |w − w_gt| + |h − h_gt|: (4, ...) -> (...)."""
    return (boxes - targets).abs().sum(0)


@dataclass(frozen=True)
class Block:
    """Rows `start:stop` of the stacked models train with loss `name`; `fixed` ({quirk: (rows, 1)
    bool}) says which of the MATLAB's quirks the paper-mode gradient of each row leaves out."""
    name: str
    start: int
    stop: int
    fixed: Fixes


def exact_ascent(boxes: torch.Tensor, targets: torch.Tensor, blocks: list[Block]) -> torch.Tensor:
    """D = −∂L/∂B by autograd, (4, M, N): one backward per block of rows."""
    out = []
    for blk in blocks:
        leaves = [c.detach().requires_grad_(True) for c in boxes[:, blk.start:blk.stop]]
        out.append(-torch.stack(torch.autograd.grad(LOSSES[blk.name](leaves, targets).sum(), leaves)))
    return torch.cat(out, 1)


def hand_ascent(boxes: torch.Tensor, targets: torch.Tensor, blocks: list[Block]) -> torch.Tensor:
    """D from the MATLAB's hand-written gradients, (4, M, N)."""
    return torch.cat([paper_ascent(b.name, boxes[:, b.start:b.stop], targets, b.fixed) for b in blocks], 1)


def descend(boxes: torch.Tensor, targets: torch.Tensor, ascent: torch.Tensor, lr: float) -> torch.Tensor:
    """B + η(2 − IoU)·D, IoU clamped (as the MATLAB's `iou.m`)."""
    return boxes + lr * (2 - iou(boxes, targets)) * ascent
