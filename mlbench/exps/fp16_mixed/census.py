"""The gradient census: the fp32 arm's gradients and updates measured against fp16's range.

At a census step, for each seed: the share of the fp32 arm's non-zero gradients g (activation
gradients dL/dz and weight gradients dL/dW) with fp16(s·g) = 0 ("zeroed") or inf ("overflow"),
and the share of sum |g| that zeroing loses ("mass lost"), for loss scale s = 1, the static scale
and the dynamic scaler's current scale; a log2 histogram of |dL/dz|; the share of its updates
u = lr·v with |u| < 2^-11 |w| and of those lost when added in fp16; and the share of weights the
pure-fp16 arm left unchanged at this step.
"""

from __future__ import annotations

import torch

from mlbench.core.grid import Grid
from mlbench.exps.fp16_mixed import SCALES

HIST_LOW, HIST_HIGH = -48, 17  # log2 |g| bins; the first holds everything <= 2^-48


def before_update(grid: Grid, params: dict) -> dict:
    """What the census needs from before the step: the fp32 arm's weight gradients, every weight."""
    return {"w_grads": {k: grid.by_arm(p.grad)["fp32"].clone() for k, p in params.items()},
            "w_old": {k: p.detach().clone() for k, p in params.items()}}


def _frac(mask, among) -> float:
    return (mask & among).sum().item() / max(among.sum().item(), 1)


def _flat(tensors, k: int):
    """Seed k's values of several per-arm tensors (S, ...), concatenated."""
    return torch.cat([t[k].flatten() for t in tensors])


def _gradients(row: dict, kind: str, g, scales) -> None:
    nz, mass = g != 0, g.abs().sum().item()
    for name, s in zip(SCALES, scales):
        g16 = (g * s).half()
        row[f"{kind}_zeroed@{name}"] = _frac(g16 == 0, nz)
        row[f"{kind}_mass_lost@{name}"] = g[g16 == 0].abs().sum().item() / max(mass, 1e-300)
        row[f"{kind}_overflow@{name}"] = _frac(g16.isinf(), nz)


def census(cfg, grid: Grid, act_grads: list, before: dict, params: dict, velocity: dict, scale) -> list[dict]:
    """One row per seed (see the module docstring); `act_grads` are the hooked dL/dz (M, B, d_l)."""
    fp32 = lambda t: grid.by_arm(t)["fp32"]  # noqa: E731  (S, ...)
    pure = lambda t: grid.by_arm(t.detach())["fp16-pure"]  # noqa: E731
    act, w_grads = [fp32(h) for h in act_grads], list(before["w_grads"].values())
    names = list(before["w_old"])
    w32, v32 = [fp32(before["w_old"][n]) for n in names], [fp32(velocity[n]) for n in names]
    old16, new16, v16 = ([pure(t[n]) for n in names] for t in (before["w_old"], params, velocity))
    dynamic = grid.by_arm(scale)["fp16-dynamic"].tolist()
    out = []
    for k in range(len(grid.seeds)):
        row: dict = {}
        a = _flat(act, k)
        for kind, g in (("act", a), ("w", _flat(w_grads, k))):
            _gradients(row, kind, g, (1.0, cfg.static_scale, dynamic[k]))
        log2 = a[a != 0].abs().log2().floor().clamp(HIST_LOW, HIST_HIGH)
        bins = HIST_HIGH - HIST_LOW + 1
        row["act_log2_hist"] = (torch.bincount((log2 - HIST_LOW).long(), minlength=bins) / max(len(log2), 1)).tolist()
        w, u = _flat(w32, k), cfg.lr * _flat(v32, k)  # the fp32 arm's weights and the update it applied
        row["below_2^-11"] = _frac(u.abs() < 2.0**-11 * w.abs(), u != 0)
        row["lost_in_fp16"] = _frac((w.half().float() - u.half().float()).half() == w.half(), u != 0)
        unchanged = torch.cat([(n[k] == o[k]).flatten() for n, o in zip(new16, old16)])
        row["pure_lost"] = _frac(unchanged, _flat(v16, k) != 0)
        out.append(row)
    return out
