"""The paper's hand-written gradients: a port of the authors' MATLAB, quirks included.

Zzh-tju/DIoU, `simulation experiment/`: `dIOU.m`, `dGIOU.m`, `dDIOU.m`, `dCIOU.m` with their
helpers `In.m`, `cover.m`, `dIbox.m`, `dUbox.m`, `dXbox.m`, `dCbox.m`, `to_xywh.m`. They return
the *ascent* direction D = −∂L/∂B that `test_1715k.m` adds: B ← B + η(2 − IoU)·D.
Edge derivatives first (t, b, l, r of the prediction), then to (x, y, w, h):

    ∂I/∂t = −(I_r − I_l)[t > t_gt]   ∂I/∂b = (I_r − I_l)[b < b_gt]   (l, r likewise, with I_b − I_t)
    ∂U = ∂|B| − ∂I,   ∂C/∂t = −(C_r − C_l)[t < t_gt], ...
    D_IoU  = (U ∂I − I ∂U)/U²   where B and B_gt overlap, else 0
    D_GIoU = D_IoU + (C ∂U − U ∂C)/C²
    D_x = D_l + D_r,  D_y = D_t + D_b,  D_w = ½(D_r − D_l),  D_h = ½(D_b − D_t)

then, in (x, y, w, h) directly, the DIoU penalty −∂(ρ²/c²) and the CIoU term −α ∂v.
Five quirks of the MATLAB, each switched off by its fix (`fixed[q]`, a bool per model):

  (i)   `to_xywh.m`: D_w = D_r − D_l and D_h = D_b − D_t, without the ½.
  (ii)  `dDIOU.m`/`dCIOU.m`: the structs of ∂C_w and ∂C_h get identical fields (∂C_w/∂y,
        ∂C_h/∂x non-zero), and ∂C_w/∂w (∂C_h/∂h) is set to −1 when B spans B_gt on that axis.
  (iii) `In.m`/`dIbox.m`: disjoint boxes keep negative intersection extents, so the U and ∂U
        that D_GIoU uses are not the union's (fixed: I = 0, ∂I = 0 there).
  (iv)  `dCIOU.m`: ∂v/∂w, ∂v/∂h lack their factor 1/(w² + h²).
  (v)   `dDIOU.m`/`dCIOU.m`: D_x = (2(x_gt − x)c² − ρ² ∂c²/∂x)/c⁴, a sign error: the exact
        −∂(ρ²/c²)/∂x has + ρ² ∂c²/∂x (y likewise).

With all five fixed, D equals −∂L/∂B of the losses in `boxes` (tests check it against autograd).
`dIOU.m` also swaps its t/b (l/r) derivatives for an inverted box (h ≤ 0); that is a no-op, left
out: an inverted box never overlaps its target, so D_IoU is 0 there anyway.
"""

from __future__ import annotations

import math

import torch

from mlbench.exps.diou_box_regression.boxes import ALPHA_EPS, Box, edges, iou

Fixes = dict  # {quirk: bool tensor broadcasting against the boxes' coordinates: True = fixed}


def edge_ascent(pred: Box, gt: Box, fixed: Fixes, giou: bool) -> tuple[torch.Tensor, ...]:
    """D_IoU (`dIOU.m`), or D_GIoU (`dGIOU.m`) if `giou`, on the edges (t, b, l, r)."""
    pt, pb, pl, pr = edges(pred)
    gt_, gb, gl, gr = edges(gt)
    ih = torch.minimum(pb, gb) - torch.maximum(pt, gt_)  # `In.m`: negative when disjoint
    iw = torch.minimum(pr, gr) - torch.maximum(pl, gl)
    overlap = (ih > 0) & (iw > 0)
    keep = overlap | ~fixed["iii"]  # quirk (iii): the unclamped I and ∂I of disjoint boxes stay in U
    inter = torch.where(keep, ih * iw, 0.0)
    d_inter = [torch.where(keep & c, v, 0.0) for c, v in ((pt > gt_, -iw), (pb < gb, iw), (pl > gl, -ih), (pr < gr, ih))]
    d_area = (pl - pr, pr - pl, pt - pb, pb - pt)  # `dXbox.m`: ∂|B| / ∂(t, b, l, r)
    union = (pb - pt) * (pr - pl) + (gb - gt_) * (gr - gl) - inter
    d_union = [da - di for da, di in zip(d_area, d_inter)]  # `dUbox.m`
    ok = overlap & (union > 0)
    out = [torch.where(ok, (union * di - inter * du) / union ** 2, 0.0) for di, du in zip(d_inter, d_union)]
    if giou:
        cw = torch.maximum(pr, gr) - torch.minimum(pl, gl)
        ch = torch.maximum(pb, gb) - torch.minimum(pt, gt_)
        cover = cw * ch
        d_cover = [torch.where(c, v, 0.0) for c, v in ((pt < gt_, -cw), (pb > gb, cw), (pl < gl, -ch), (pr > gr, ch))]
        out = [o + (cover * du - union * dc) / cover ** 2 for o, du, dc in zip(out, d_union, d_cover)]
    return tuple(out)


def to_xywh(dt: torch.Tensor, db: torch.Tensor, dl: torch.Tensor, dr: torch.Tensor, fixed: Fixes) -> torch.Tensor:
    """`to_xywh.m`: edge derivatives -> (x, y, w, h), a (4, ...) tensor; quirk (i) drops the ½."""
    half = torch.where(fixed["i"], 0.5, 1.0).to(dt.dtype)
    return torch.stack((dl + dr, dt + db, half * (dr - dl), half * (db - dt)))


def diou_ascent(pred: Box, gt: Box, fixed: Fixes) -> torch.Tensor:
    """−∂(ρ²/c²)/∂(x, y, w, h) as `dDIOU.m` writes it, (4, ...); quirks (ii) and (v)."""
    pt, pb, pl, pr = edges(pred)
    gt_, gb, gl, gr = edges(gt)
    left, right, top, bottom = pl < gl, pr > gr, pt < gt_, pb > gb  # which edges of C are B's
    cw = torch.where(right, pr, gr) - torch.where(left, pl, gl)
    ch = torch.where(bottom, pb, gb) - torch.where(top, pt, gt_)
    c2 = cw ** 2 + ch ** 2
    cw_dx, cw_dw = right.to(c2.dtype) - left.to(c2.dtype), 0.5 * (right.to(c2.dtype) + left.to(c2.dtype))
    ch_dy, ch_dh = bottom.to(c2.dtype) - top.to(c2.dtype), 0.5 * (bottom.to(c2.dtype) + top.to(c2.dtype))
    quirk = ~fixed["ii"]  # C_w's struct also carries ∂/∂y, ∂/∂h of the height and vice versa ...
    mixed = quirk.to(c2.dtype)
    span_x, span_y = left & right & quirk, top & bottom & quirk  # ... and ∂C_w/∂w = −1 when B spans B_gt
    dc2_dx = 2 * cw_dx * (cw + mixed * ch)
    dc2_dy = 2 * ch_dy * (ch + mixed * cw)
    dc2_dw = 2 * cw * torch.where(span_x, -1.0, cw_dw) + 2 * mixed * ch * cw_dw
    dc2_dh = 2 * ch * torch.where(span_y, -1.0, ch_dh) + 2 * mixed * cw * ch_dh
    dx, dy = pred[0] - gt[0], pred[1] - gt[1]
    rho2 = dx ** 2 + dy ** 2
    sign = torch.where(fixed["v"], 1.0, -1.0).to(c2.dtype)  # quirk (v): − ρ²∂c²/∂x where the derivative has +
    c4 = c2 ** 2
    return torch.stack(((sign * rho2 * dc2_dx - 2 * dx * c2) / c4, (sign * rho2 * dc2_dy - 2 * dy * c2) / c4,
                        rho2 * dc2_dw / c4, rho2 * dc2_dh / c4))


def ciou_ascent(pred: Box, gt: Box, fixed: Fixes) -> torch.Tensor:
    """−α ∂v/∂(x, y, w, h) as `dCIOU.m` writes it, (4, ...); quirk (iv) drops 1/(w² + h²)."""
    w, h = pred[2], pred[3]
    delta = torch.atan(gt[2] / gt[3]) - torch.atan(w / h)
    v = 4 / math.pi ** 2 * delta ** 2
    alpha = v / (1 - iou(pred, gt) + v + ALPHA_EPS)
    k = alpha * (8 / math.pi ** 2) * delta * torch.where(fixed["iv"], 1 / (w ** 2 + h ** 2), 1.0)
    zero = torch.zeros_like(k)
    return torch.stack((zero, zero, k * h, -k * w))


def paper_ascent(name: str, pred: Box, gt: Box, fixed: Fixes) -> torch.Tensor:
    """D = −∂L/∂(x, y, w, h) of loss `name` as the MATLAB computes it, (4, ...): `to_xywh(dIOU)`,
    `to_xywh(dGIOU)`, `dDIOU` or `dCIOU`."""
    out = to_xywh(*edge_ascent(pred, gt, fixed, giou=name == "giou"), fixed)
    if name in ("diou", "ciou"):
        out = out + diou_ascent(pred, gt, fixed)
    if name == "ciou":
        out = out + ciou_ascent(pred, gt, fixed)
    return out
