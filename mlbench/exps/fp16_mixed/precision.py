"""Storage formats, emulated exactly: each member of the grid keeps its tensors in its arm's format.

fp16 (1 sign, 5 exponent, 10 mantissa bits): max 65504, smallest normal 2^-14, smallest subnormal
2^-24, so |x| <= 2^-25 rounds to 0 and w + u rounds back to w when |u| < ~2^-11 |w|. bf16 (8
exponent, 7 mantissa bits) has fp32's range and ε = 2^-7. A tensor "stored in fp16" is the fp32
value after an fp32 -> fp16 -> fp32 round trip (round to nearest even, subnormals kept): the same
numbers a GPU would hold, computed in fp32 on the CPU (whose fp16 kernels are ~100x slower).

Products of two fp16 values are exact in fp32 and the MLP sums them in fp32, as tensor cores do
("fp32 accumulation", Micikevicius et al. §3.3); each layer's output is stored in fp16 again.
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F

from mlbench.core.grid import Grid


class Storage:
    """Each member's storage format: its arm's (`None`: fp32, else a torch dtype name)."""

    def __init__(self, grid: Grid, formats: Mapping[str, str | None]):
        self.grid = grid
        self.dtypes = {arm: None if formats[arm] is None else getattr(torch, formats[arm]) for arm in grid.arms}

    @property
    def all_fp32(self) -> bool:
        return all(d is None for d in self.dtypes.values())

    def round(self, x):
        """x (M, ...) with each member rounded to its format: fp32 -> format -> fp32."""
        if self.all_fp32:
            return x
        parts = self.grid.by_arm(x)  # {arm: (S, ...)}
        return self.grid.build(lambda arm: parts[arm] if self.dtypes[arm] is None
                               else parts[arm].to(self.dtypes[arm]).to(x.dtype))


class Round(torch.autograd.Function):
    """Identity that stores its input (forward) and its gradient (backward) in each member's format."""

    @staticmethod
    def forward(ctx, x, storage: Storage):
        ctx.storage = storage
        return storage.round(x)

    @staticmethod
    def backward(ctx, grad):
        return ctx.storage.round(grad), None


def forward(params: dict, x, storage: Storage, hooks: list | None = None):
    """Logits (M, B, 10) of M stacked MLPs: z_l = fp16(fp16(h) fp16(W_l) + fp16(b_l)), h = relu(z).

    `hooks`, if a list, receives dL/dz of every layer as the (scaled) loss delivers it."""
    n = len(params) // 2
    h = Round.apply(x, storage)  # (M, B, 64)
    for l in range(n):
        b, w = Round.apply(params[f"b{l}"], storage), Round.apply(params[f"w{l}"], storage)
        z = Round.apply(torch.baddbmm(b, h, w), storage)  # (M, B, d_l)
        if hooks is not None:
            z.register_hook(hooks.append)
        h = z.relu() if l < n - 1 else z
    return h


def init_params(cfg, grid: Grid, gens: list, updates: Storage, device) -> dict:
    """He-initialised stacked MLPs, w_l (M, fan_in, fan_out), b_l (M, 1, fan_out): seed k's draw is
    shared by every arm; members without a master copy hold their weights in their own format."""
    sizes = (64, *cfg.hidden, 10)
    per_seed = [{} for _ in gens]
    for p, g in zip(per_seed, gens):
        for l, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
            p[f"w{l}"], p[f"b{l}"] = torch.randn(i, o, generator=g) * math.sqrt(2.0 / i), torch.zeros(1, o)
    stacked = {k: grid.repeat(torch.stack([p[k] for p in per_seed])) for k in per_seed[0]}  # (M, ...)
    return {k: updates.round(v).to(device).requires_grad_(True) for k, v in stacked.items()}


def evaluate(params: dict, x, y, storage: Storage):
    """Accuracy and mean cross-entropy (M,) on (x, y), each member in its own storage format."""
    M = params["w0"].shape[0]
    with torch.no_grad():
        logits = forward(params, x.expand(M, -1, -1), storage)  # (M, N, 10)
    y = y.expand(M, -1)
    loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
    return (logits.argmax(-1) == y).float().mean(1).cpu(), loss.cpu()
