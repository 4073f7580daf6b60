"""Axis-aligned boxes and the IoU-family losses (Zheng et al. 2020, eqs. 1, 3, 6, 9-11).

A box is B = (x, y, w, h): its centre and size, given as four tensors of one shape (or a
(4, ...) tensor, which unpacks into them). Its edges follow the MATLAB's image convention
(y grows downwards): t = y − h/2, b = y + h/2, l = x − w/2, r = x + w/2. For a prediction B
and its target B_gt:

    IoU    = |B ∩ B_gt| / |B ∪ B_gt|,  the intersection's extents clamped at 0
    L_IoU  = 1 − IoU
    L_GIoU = 1 − IoU + |C − B ∪ B_gt| / |C|        C: the smallest box enclosing both
    L_DIoU = 1 − IoU + ρ²(b, b_gt) / c²            ρ: centre distance, c: C's diagonal
    L_CIoU = L_DIoU + α v,  v = (4/π²)(arctan(w_gt/h_gt) − arctan(w/h))²,
                            α = v / ((1 − IoU) + v + 1e-7), taken without gradient

Min and max are written as `where(a < b, a, b)`: at a tie the gradient goes to the target's
edge, the convention of the MATLAB's strict comparisons (`pred.t > gt.t`, ...).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

Box = Sequence[torch.Tensor]  # (x, y, w, h)
ALPHA_EPS = 1e-7  # the authors' guard in α's denominator


def edges(box: Box) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x, y, w, h) -> the edges (t, b, l, r)."""
    x, y, w, h = box
    return y - h / 2, y + h / 2, x - w / 2, x + w / 2


def smaller(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """min(a, b) with the gradient on `a` only where a < b."""
    return torch.where(a < b, a, b)


def larger(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """max(a, b) with the gradient on `a` only where a > b."""
    return torch.where(a > b, a, b)


def positive(a: torch.Tensor) -> torch.Tensor:
    """max(a, 0), gradient only where a > 0."""
    return torch.where(a > 0, a, 0.0)


def intersection(pred: Box, gt: Box) -> torch.Tensor:
    """|B ∩ B_gt| with each extent clamped at 0 (disjoint boxes: 0, and no gradient)."""
    pt, pb, pl, pr = edges(pred)
    gt_, gb, gl, gr = edges(gt)
    return positive(smaller(pb, gb) - larger(pt, gt_)) * positive(smaller(pr, gr) - larger(pl, gl))


def area(box: Box) -> torch.Tensor:
    return box[2] * box[3]


def iou(pred: Box, gt: Box) -> torch.Tensor:
    """IoU = I / (|B| + |B_gt| − I)."""
    inter = intersection(pred, gt)
    return inter / (area(pred) + area(gt) - inter)


def enclosing(pred: Box, gt: Box) -> tuple[torch.Tensor, torch.Tensor]:
    """Width and height of C, the smallest box enclosing B and B_gt."""
    pt, pb, pl, pr = edges(pred)
    gt_, gb, gl, gr = edges(gt)
    return larger(pr, gr) - smaller(pl, gl), larger(pb, gb) - smaller(pt, gt_)


def giou_penalty(pred: Box, gt: Box) -> torch.Tensor:
    """|C − B ∪ B_gt| / |C| (Rezatofighi et al. 2019)."""
    inter = intersection(pred, gt)
    union = area(pred) + area(gt) - inter
    cw, ch = enclosing(pred, gt)
    return 1 - union / (cw * ch)


def diou_penalty(pred: Box, gt: Box) -> torch.Tensor:
    """ρ²(b, b_gt) / c²: squared centre distance over C's squared diagonal (eq. 6)."""
    cw, ch = enclosing(pred, gt)
    return ((pred[0] - gt[0]) ** 2 + (pred[1] - gt[1]) ** 2) / (cw ** 2 + ch ** 2)


def aspect_v(pred: Box, gt: Box) -> torch.Tensor:
    """v = (4/π²)(arctan(w_gt/h_gt) − arctan(w/h))² (eq. 9)."""
    return 4 / math.pi ** 2 * (torch.atan(gt[2] / gt[3]) - torch.atan(pred[2] / pred[3])) ** 2


def ciou_term(pred: Box, gt: Box) -> torch.Tensor:
    """αv with α = v / ((1 − IoU) + v + 1e-7) detached (eqs. 10-11): the gradient flows through v only."""
    v = aspect_v(pred, gt)
    alpha = (v / ((1 - iou(pred, gt)) + v + ALPHA_EPS)).detach()
    return alpha * v


def iou_loss(pred: Box, gt: Box) -> torch.Tensor:
    return 1 - iou(pred, gt)


def giou_loss(pred: Box, gt: Box) -> torch.Tensor:
    return 1 - iou(pred, gt) + giou_penalty(pred, gt)


def diou_loss(pred: Box, gt: Box) -> torch.Tensor:
    return 1 - iou(pred, gt) + diou_penalty(pred, gt)


def ciou_loss(pred: Box, gt: Box) -> torch.Tensor:
    return 1 - iou(pred, gt) + diou_penalty(pred, gt) + ciou_term(pred, gt)


LOSSES = {"iou": iou_loss, "giou": giou_loss, "diou": diou_loss, "ciou": ciou_loss}
