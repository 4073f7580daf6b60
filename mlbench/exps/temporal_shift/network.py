"""A small video ResNet in three temporal flavours, stacked over M = arms × seeds models.

Per model (C channels, B residual blocks, K classes; a video is T frames of H×W):

    h = relu(conv_stem(video))                       3×3 (×k_t) stride 2: (1, T, H, W) -> (C, T, H/2, W/2)
    h = relu(h + conv2(relu(conv1(shift(h)))))       each block; `shift` only in TSM arms (residual shift)
    logits = W_head · mean_{t, y, x} h + b           spatial and temporal average, then a 1×1 head (C -> K)

Arms (`VARIANTS`): `2d` (TSN: k_t = 1, every frame on its own, then the average consensus),
`tsm` (k_t = 1 plus the residual bidirectional shift before conv1 of every block), `tsm-inplace`
(the shift on the block's input itself, identity path included), `tsm-online` (uni-directional,
past -> present only) and `3d` (every conv 3×3×3, zero temporal padding).

Stacking: the M models are channel blocks of one tensor h (N, M·C, T, H, W) (model m owns
channels m·C .. (m+1)·C); each conv is one grouped `conv3d` (groups = models) per run of
consecutive arms with the same temporal kernel, and the shift acts inside each model's
channel block (the view (N, M, C, T, H, W)), never across models, never along the batch.

The temporal average sums each channel's T frame values in sorted order: the same multiset
gives the same float sum, so a net without shift or temporal kernel is *exactly* invariant to
any reordering of the frames (time reversal included), not only up to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mlbench.exps.temporal_shift import CLASSES
from mlbench.exps.temporal_shift.shift import temporal_shift


@dataclass(frozen=True)
class Variant:
    kernel_t: int  # temporal kernel of every conv: 1 (per frame, 2D) or 3 (3D)
    shift: str | None = None  # None | "residual" (branch input only) | "inplace" (the block input)
    bidirectional: bool = True  # False: online shift, past -> present only


VARIANTS = {"2d": Variant(1), "tsm": Variant(1, "residual"), "tsm-inplace": Variant(1, "inplace"),
            "tsm-online": Variant(1, "residual", False), "3d": Variant(3)}


def layer_shapes(channels: int, blocks: int, classes: int, kernel_t: int) -> dict[str, tuple[int, ...]]:
    """Per-model parameter shapes: convs (C_out, C_in, k_t, 3, 3) with biases, head (C, K)."""
    C, k = channels, (kernel_t, 3, 3)
    shapes = {"stem.w": (C, 1, *k), "stem.b": (C,)}
    for i in range(blocks):
        for j in (1, 2):
            shapes[f"block{i}.conv{j}.w"], shapes[f"block{i}.conv{j}.b"] = (C, C, *k), (C,)
    shapes["head.w"], shapes["head.b"] = (C, classes), (classes,)
    return shapes


def init_params(cfg, arms: tuple[str, ...], gens_2d: list, gens_3d: list) -> dict[str, dict[str, torch.Tensor]]:
    """{arm: {name: (S, ...)}}: conv weights normal with PyTorch's default conv variance 1 / (3·fan_in)
    (He's 2 / fan_in learnt the shape task more slowly: 0.91-0.95 vs 0.95-0.99 at 150 steps), head
    std C^-1/2, zero biases. Arms with the same temporal kernel share seed k's draw (paired: only
    the shift differs between 2d and tsm)."""
    drawn = {}
    for kernel_t, gens in ((1, gens_2d), (3, gens_3d)):
        if all(VARIANTS[a].kernel_t != kernel_t for a in arms):
            continue
        per_seed = []
        for g in gens:
            p = {}
            for name, shape in layer_shapes(cfg.channels, cfg.blocks, CLASSES, kernel_t).items():
                fan_in = math.prod(shape[1:]) if name.endswith(".w") and len(shape) > 2 else shape[0]
                std = 1.0 / math.sqrt((3.0 if len(shape) > 2 else 1.0) * fan_in)
                p[name] = torch.zeros(shape) if name.endswith(".b") else torch.randn(shape, generator=g) * std
            per_seed.append(p)
        drawn[kernel_t] = {name: torch.stack([p[name] for p in per_seed]) for name in per_seed[0]}
    return {arm: {n: t.clone() for n, t in drawn[VARIANTS[arm].kernel_t].items()} for arm in arms}


class StackedNet:
    """The forward pass of every (arm, seed) model at once; parameters live outside ({arm: {name: (S, ...)}}).

    Consecutive arms with the same temporal kernel form a run, computed as one grouped model
    (their models never mix, so runs need not share a tensor: slicing one would cost copies)."""

    def __init__(self, arms: tuple[str, ...], n_seeds: int, channels: int, blocks: int, fold_div: int):
        self.arms, self.S, self.C, self.blocks, self.fold_div = tuple(arms), n_seeds, channels, blocks, fold_div
        self.M = len(self.arms) * n_seeds
        self.runs: list[tuple[int, tuple[str, ...]]] = []  # (temporal kernel, its consecutive arms)
        for arm in self.arms:
            k = VARIANTS[arm].kernel_t
            if self.runs and self.runs[-1][0] == k:
                self.runs[-1] = (k, self.runs[-1][1] + (arm,))
            else:
                self.runs.append((k, (arm,)))

    def conv(self, h, params: dict, run_arms: tuple[str, ...], kernel_t: int, name: str, stride: int = 1):
        """One grouped conv3d over a run's G = arms·S models: (N, G·C_in, T, H, W) -> (N, G·C_out, T, H', W')."""
        w = torch.cat([params[a][f"{name}.w"] for a in run_arms]).flatten(0, 1)  # (G·C_out, C_in, k_t, 3, 3)
        b = torch.cat([params[a][f"{name}.b"] for a in run_arms]).flatten()
        return F.conv3d(h, w, b, stride=(1, stride, stride), padding=(kernel_t // 2, 1, 1),
                        groups=len(run_arms) * self.S)

    def shift(self, h, run_arms: tuple[str, ...], kind: str):
        """The temporal shift inside each model's channel block, for the run's arms whose shift is `kind`."""
        if not any(VARIANTS[a].shift == kind for a in run_arms):
            return h
        N, _, T, H, W = h.shape
        h6 = h.view(N, len(run_arms) * self.S, self.C, T, H, W)
        pieces = []
        for a, arm in enumerate(run_arms):
            block = h6[:, a * self.S:(a + 1) * self.S]  # (N, S, C, T, H, W): this arm's seeds
            v = VARIANTS[arm]
            pieces.append(temporal_shift(block, self.fold_div, v.bidirectional) if v.shift == kind else block)
        return torch.cat(pieces, 1).view(N, -1, T, H, W)

    def run_features(self, params: dict, run_arms: tuple[str, ...], kernel_t: int, x):
        """A run's videos x (N, G, T, H, W), model g's in channel g -> pooled features (N, G, C)."""
        conv = lambda h, name, stride=1: self.conv(h, params, run_arms, kernel_t, name, stride)  # noqa: E731
        h = F.relu(conv(x, "stem", stride=2))
        for i in range(self.blocks):
            h = self.shift(h, run_arms, "inplace")
            branch = F.relu(conv(self.shift(h, run_arms, "residual"), f"block{i}.conv1"))
            h = F.relu(h + conv(branch, f"block{i}.conv2"))
        N, _, T = h.shape[:3]
        per_frame = h.mean((-2, -1)).view(N, -1, self.C, T)  # spatial average
        return per_frame.sort(-1).values.sum(-1) / T  # temporal average, in an order-free sum

    def __call__(self, params: dict, x):
        """Logits (M, N, K) of every model on its videos x (N, M, T, H, W)."""
        feats, start = [], 0
        for kernel_t, run_arms in self.runs:
            G = len(run_arms) * self.S
            feats.append(self.run_features(params, run_arms, kernel_t, x[:, start:start + G]))
            start += G
        feats = feats[0] if len(feats) == 1 else torch.cat(feats, 1)  # (N, M, C)
        w = torch.cat([params[a]["head.w"] for a in self.arms])  # (M, C, K)
        b = torch.cat([params[a]["head.b"] for a in self.arms])  # (M, K)
        return torch.einsum("nmc,mck->mnk", feats, w) + b[:, None, :]
