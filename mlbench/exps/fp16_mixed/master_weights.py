"""The update: SGD with momentum on fp32 master weights, or all in fp16 (Micikevicius et al. §3.1).

With a master copy, the fp16 weights are a rounded view of fp32 weights that accumulate every
update, however small. Without one, w <- fp16(w - fp16(lr v)) and an update |lr v| < ~2^-11 |w|
rounds away: a share of the weights stops moving as the updates shrink.
"""

from __future__ import annotations

import torch

from mlbench.exps.fp16_mixed.precision import Storage


def sgd_step(params: dict, velocity: dict, scale, updates: Storage, lr: float, momentum: float):
    """Unscale g = grad / s, skip members with inf/NaN gradients, then SGD with momentum (torch's
    form: v <- mu v + g, w <- w - lr v). Members without a master copy (fp16 in `updates`) round
    every op: v <- fp16(fp16(mu v) + fp16(g)), w <- fp16(w - fp16(lr v)). Returns found_inf (M,)."""
    found_inf = ~torch.stack([p.grad.isfinite().flatten(1).all(1) for p in params.values()]).all(0)  # (M,)
    with torch.no_grad():
        for k, p in params.items():
            skip = found_inf.view(-1, *[1] * (p.dim() - 1))
            g = updates.round(p.grad / scale.view_as(skip))
            v = updates.round(updates.round(momentum * velocity[k]) + g)
            velocity[k] = torch.where(skip, velocity[k], v)
            p.copy_(torch.where(skip, p, updates.round(p - updates.round(lr * v))))
            p.grad = None
    return found_inf
