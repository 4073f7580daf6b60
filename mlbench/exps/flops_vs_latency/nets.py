"""The measured networks: stacks of convolutions at (nearly) equal FLOPs, and their closed-form costs.

For a conv with c_in → c_out channels, a k×k kernel and g groups on b images of h×w (stride 1,
"same" padding), ShuffleNet V2 §2:

    multiply-adds   B   = b·h·w · c_in·c_out·k² / g             FLOPs = 2B (FlopCounterMode's count)
    memory access   MAC = b·h·w · (c_in + c_out) + c_in·c_out·k² / g   (numbers read or written)

For a 1×1 conv (b = 1), MAC ≥ 2·√(h·w·B) + B/(h·w), with equality iff c_in = c_out (G1).
ReLU and the residual add cost no FLOPs by this count (G4's point); `elementwise` counts the
numbers they write. A network is a `Design`: its input width and its blocks, applied in order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from mlbench.exps.flops_vs_latency import (G1_ALIGNED, G1_PAPER, G2_GROUPS, G3_PARALLEL, G3_SERIES, G3_WIDTH,
                                           G4_VARIANTS, g1_name, group_variants)


@dataclass(frozen=True)
class Conv:
    c_in: int
    c_out: int
    k: int = 1
    groups: int = 1

    def multiply_adds(self, pixels: int) -> int:
        """B over `pixels` = b·h·w output positions."""
        return pixels * self.c_in * self.c_out * self.k ** 2 // self.groups

    def memory_access_cost(self, pixels: int) -> int:
        return pixels * (self.c_in + self.c_out) + self.c_in * self.c_out * self.k ** 2 // self.groups


@dataclass(frozen=True)
class Chain:
    """Convs in series."""
    convs: tuple[Conv, ...]


@dataclass(frozen=True)
class Parallel:
    """n copies of `conv` (each with its own weights) on the same input, outputs concatenated."""
    n: int
    conv: Conv


@dataclass(frozen=True)
class Bottleneck:
    """ResNet bottleneck c → m (1×1) → m (3×3) → c (1×1), ReLU after each conv (after the add in
    the last) where `relu`, the input added back where `shortcut`. Out of place (`F.relu(h)`,
    `h + x`: each writes a new tensor, as the paper's operators do) unless `inplace` (torchvision's
    `ReLU(inplace=True)` and `out += identity`)."""
    c: int
    m: int
    relu: bool
    shortcut: bool
    inplace: bool = False

    @property
    def convs(self) -> tuple[Conv, ...]:
        return (Conv(self.c, self.m), Conv(self.m, self.m, 3), Conv(self.m, self.c))


@dataclass(frozen=True)
class Design:
    c_in: int
    blocks: tuple[Chain | Parallel | Bottleneck, ...]

    def convs(self) -> list[Conv]:
        out: list[Conv] = []
        for b in self.blocks:
            out += [b.conv] * b.n if isinstance(b, Parallel) else list(b.convs)
        return out

    def elementwise(self, pixels: int) -> int:
        """Numbers written by ReLUs and residual adds."""
        return sum(pixels * (2 * b.m + b.c) * b.relu + pixels * b.c * b.shortcut
                   for b in self.blocks if isinstance(b, Bottleneck))


def catalogue(cfg) -> dict[str, Design]:
    """Every variant's design by name (the names of `group_variants`)."""
    n = cfg.blocks
    d: dict[str, Design] = {}
    for c1, c2 in (*G1_PAPER, *G1_ALIGNED):
        d[g1_name(c1, c2)] = Design(c1, (Chain((Conv(c1, c2), Conv(c2, c1))),) * n)
    d["null"] = d[g1_name(*G1_PAPER[0])]
    for g, c in G2_GROUPS:
        d[f"g2-groups{g}"] = Design(c, (Chain((Conv(c, c, 1, g),)),) * n)
    d["g3-1"] = Design(G3_WIDTH, (Chain((Conv(G3_WIDTH, G3_WIDTH),)),) * n)
    for s in G3_SERIES:
        w = round(G3_WIDTH / math.sqrt(s))
        d[f"g3-series{s}"] = Design(w, (Chain((Conv(w, w),) * s),) * n)
    for p in G3_PARALLEL:
        d[f"g3-parallel{p}"] = Design(G3_WIDTH, (Parallel(p, Conv(G3_WIDTH, G3_WIDTH // p)),) * n)
    for name, relu, shortcut in G4_VARIANTS:
        block = Bottleneck(256, 64, relu, shortcut, inplace=cfg.elementwise == "in-place")
        d[f"g4-{name}"] = Design(256, (block,) * cfg.bottlenecks)
    d["dw-dense"] = Design(128, (Chain((Conv(128, 128, 3),)),) * cfg.dw_layers)
    d["dw-separable"] = Design(128, (Chain((Conv(128, 128, 3, 128), Conv(128, 128))),) * cfg.dw_layers)
    return d


def timed_designs(cfg) -> dict[str, tuple[int, list[tuple[str, Design]]]]:
    """group -> (resolution, [(variant, design)]), baseline first. Under the negative control every
    variant is the baseline's design (it still gets its own weights and input)."""
    book = catalogue(cfg)
    out = {}
    for group, (hw, names) in group_variants(cfg).items():
        base = book[names[0]]
        out[group] = (hw, [(name, base if cfg.negative_control else book[name]) for name in names])
    return out


def weights(design: Design, make: Callable[[tuple[int, ...], float], torch.Tensor]) -> list[list[torch.Tensor]]:
    """Per block, its conv weights (c_out, c_in/g, k, k), `make(shape, σ)` drawing N(0, σ²): σ² = 2/fan_in
    before a ReLU, else 1/fan_in, so activations stay O(1) through the stack (no overflow, no slow
    denormals)."""
    out = []
    for b in design.blocks:
        convs = [b.conv] * b.n if isinstance(b, Parallel) else list(b.convs)
        gain = 2.0 if isinstance(b, Bottleneck) and b.relu else 1.0
        out.append([make((c.c_out, c.c_in // c.groups, c.k, c.k), math.sqrt(gain * c.groups / (c.k ** 2 * c.c_in)))
                    for c in convs])
    return out


def _conv(x: torch.Tensor, w: torch.Tensor, c: Conv) -> torch.Tensor:
    return F.conv2d(x, w, padding=c.k // 2, groups=c.groups)


def forward(design: Design, ws: list[list[torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    """One pass through the network: x (b, c_in, h, w) -> (b, c_out, h, w)."""
    for block, w in zip(design.blocks, ws):
        if isinstance(block, Chain):
            for c, wc in zip(block.convs, w):
                x = _conv(x, wc, c)
        elif isinstance(block, Parallel):
            x = torch.cat([_conv(x, wc, block.conv) for wc in w], dim=1)
        else:
            x = _bottleneck(block, w, x)
    return x


def _bottleneck(block: Bottleneck, w: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    relu = (lambda t: t.relu_()) if block.inplace else F.relu
    c1, c2, c3 = block.convs
    h = _conv(x, w[0], c1)
    h = _conv(relu(h) if block.relu else h, w[1], c2)
    h = _conv(relu(h) if block.relu else h, w[2], c3)
    if block.shortcut:
        h = h.add_(x) if block.inplace else h + x
    return relu(h) if block.relu else h


def closed_form(design: Design, batch: int, hw: int) -> dict[str, int]:
    """FLOPs = 2B, memory access cost, parameters, conv calls and element-wise numbers of a design."""
    pixels = batch * hw * hw
    convs = design.convs()
    return {"flops": 2 * sum(c.multiply_adds(pixels) for c in convs),
            "memory_access_cost": sum(c.memory_access_cost(pixels) for c in convs),
            "params": sum(c.c_in * c.c_out * c.k ** 2 // c.groups for c in convs),
            "convs": len(convs), "elementwise": design.elementwise(pixels)}


def counted_flops(design: Design, batch: int, hw: int) -> int:
    """FLOPs of one forward pass as torch's FlopCounterMode counts them, on meta tensors (no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = lambda shape, std: torch.empty(shape, device="meta")  # noqa: E731
    x = torch.empty(batch, design.c_in, hw, hw, device="meta")
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        forward(design, weights(design, meta), x)
    return int(counter.get_total_flops())
