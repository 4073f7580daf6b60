"""The three trained model families as stacked grids: what `run.fit` trains and measures.

A `Family` bundles a grid (arms × seeds), its stacked parameters, how to get training logits,
how to score held-out images (exact NLL; a probability average for several masks), and its
autoregressive components with their orderings (for the Jacobian check and for sampling).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from mlbench.core.grid import Grid
from mlbench.exps.autoregressive_digits import fvsbn, fvsbn_arm, made, nade
from mlbench.exps.autoregressive_digits.likelihood import LogitFn, mixture_nll, nll, logit_average_nll

Params = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Component:
    """One autoregressive model per member: its logits, the position of each pixel in its
    ordering (M, D), and which members have it (a member with K masks has K components)."""
    logits: LogitFn
    degrees: torch.Tensor
    active: torch.Tensor


@dataclass
class Family:
    name: str
    grid: Grid
    params: Params
    lr: float
    epochs: int
    train_logits: Callable[[Params, torch.Tensor, int], torch.Tensor]  # (params, x (M,B,D), minibatch index)
    components: Callable[[Params], list[Component]]
    penalty: Callable[[Params], torch.Tensor] | None = None  # (M,) already weighted by each member's λ
    buffers: dict[str, torch.Tensor] = field(default_factory=dict)  # saved beside the weights (masks)
    counts: torch.Tensor | None = None  # (M,) masks per member; None: one component

    def eval_nll(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """Exact NLL per image (M, B): the one component, or the average of the components'
        probabilities."""
        comps = self.components(params)
        if self.counts is None:
            return nll(comps[0].logits(x), x)
        return mixture_nll([c.logits(x) for c in comps], x, self.counts)

    def logit_average_nll(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        comps = self.components(params)
        if self.counts is None:
            return nll(comps[0].logits(x), x)
        return logit_average_nll([c.logits(x) for c in comps], x, self.counts)


def natural_degrees(m: int, d: int, device) -> torch.Tensor:
    return torch.arange(1, d + 1, device=device).expand(m, d)


def build_fvsbn(cfg, ctx, bias: torch.Tensor) -> Family:
    """One arm per L2 strength λ; W = 0 at init, so every arm starts identical."""
    grid = ctx.grid([fvsbn_arm(v) for v in cfg.fvsbn_l2])
    b = grid.repeat(bias)
    l2 = grid.per_arm(list(cfg.fvsbn_l2), dtype=torch.float32).to(b.device)
    one = lambda p: [Component(lambda x: fvsbn.logits(p, x), natural_degrees(len(grid), b.shape[1], b.device),
                               torch.ones(len(grid), dtype=torch.bool, device=b.device))]
    return Family("fvsbn", grid, fvsbn.init_params(b), cfg.fvsbn_lr, cfg.fvsbn_epochs,
                  lambda p, x, _: fvsbn.logits(p, x), one, penalty=lambda p: l2 * fvsbn.penalty(p))


def build_nade(cfg, ctx, bias: torch.Tensor, hidden: int) -> Family:
    grid = ctx.grid(["nade"], H=hidden)
    params = nade.init_params(grid.repeat(bias), hidden, ctx.generators(f"nade-init-H{hidden}"), grid.repeat)
    m, d = len(grid), bias.shape[1]
    one = lambda p: [Component(lambda x: nade.logits(p, x), natural_degrees(m, d, bias.device),
                               torch.ones(m, dtype=torch.bool, device=bias.device))]
    return Family(f"nade-H{hidden}", grid, params, cfg.nade_lr, cfg.nade_epochs,
                  lambda p, x, _: nade.logits(p, x), one)


def build_made(cfg, ctx, bias: torch.Tensor, layers: int) -> Family:
    """One arm per mask count K; a seed's arms share its initial weights and its first masks."""
    grid = ctx.grid([f"made-k{k}" for k in cfg.made_masks], L=layers)
    widths, d, dev = (cfg.made_width,) * layers, bias.shape[1], bias.device
    per_seed = [made.seed_masks(ctx.seed(f"made-masks-L{layers}", s), d, widths, max(cfg.made_masks))
                for s in grid.seeds]
    masks = [grid.repeat(torch.stack([ms[l] for ms, _ in per_seed])).to(dev) for l in range(layers + 1)]  # (M, K, out, in)
    degrees = grid.repeat(torch.stack([deg for _, deg in per_seed])).to(dev)  # (M, K, D)
    counts = grid.per_arm(list(cfg.made_masks)).to(dev)  # (M,)
    params = made.init_params(grid.repeat(bias), widths, ctx.generators(f"made-init-L{layers}"), grid.repeat)

    def train_logits(p, x, step):
        return made.logits(p, masks, x, torch.remainder(torch.full_like(counts, step), counts))

    def components(p):
        ks = range(max(cfg.made_masks))
        return [Component(lambda x, k=k: made.logits(p, masks, x, torch.full_like(counts, k)), degrees[:, k],
                          counts > k) for k in ks]

    buffers = {**{f"mask{l}": m.to(torch.uint8) for l, m in enumerate(masks)}, "input_degrees": degrees}
    return Family(f"made-L{layers}", grid, params, cfg.made_lr, cfg.made_epochs, train_logits, components,
                  buffers=buffers, counts=counts if max(cfg.made_masks) > 1 else None)
