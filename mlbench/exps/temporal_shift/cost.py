"""Cost of one model per video, counted: parameters by numel, multiply-adds by FlopCounterMode.

Closed form (biases, averages and the shift's copies not counted; side s = ⌈size/2⌉ after the
stride-2 stem, k_t = 1 for 2D and TSM, 3 for 3D, K classes):

    MACs = T·s²·(C·9·k_t)  +  2B·T·s²·(C²·9·k_t)  +  C·K
    params = (9·k_t·C + C) + 2B·(9·k_t·C² + C) + (C·K + K)

Quick config (T 8, s 8, C 16, B 2, K 2): 4,792,352 MACs and 9,474 parameters for 2D and TSM,
14,376,992 and 28,194 for 3D. FlopCounterMode reports 2 FLOPs per multiply-add of a conv or
matmul and nothing for slicing, padding and concatenation, i.e. 0 for the shift.
"""

from __future__ import annotations

import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from mlbench.exps.temporal_shift import CLASSES
from mlbench.exps.temporal_shift.network import VARIANTS, StackedNet, layer_shapes
from mlbench.exps.temporal_shift.shift import temporal_shift


def _shapes(cfg, arm: str) -> dict[str, tuple[int, ...]]:
    return layer_shapes(cfg.channels, cfg.blocks, CLASSES, VARIANTS[arm].kernel_t)


def param_count(cfg, arm: str) -> int:
    """Parameters of one model of `arm`, by numel of its tensors."""
    return sum(math.prod(shape) for shape in _shapes(cfg, arm).values())


def macs_formula(cfg, arm: str) -> int:
    """Multiply-adds per video of one model of `arm`, from the closed form (module docstring)."""
    side, k, C = (cfg.size + 1) // 2, VARIANTS[arm].kernel_t, cfg.channels
    return cfg.frames * side * side * 9 * k * (C + 2 * cfg.blocks * C * C) + C * CLASSES


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def counted_macs(cfg, arm: str) -> int:
    """Multiply-adds per video of one model of `arm`: FlopCounterMode on its forward pass, / 2."""
    net = StackedNet((arm,), 1, cfg.channels, cfg.blocks, cfg.fold_div)
    params = {arm: {name: torch.zeros(1, *shape) for name, shape in _shapes(cfg, arm).items()}}
    video = torch.zeros(1, 1, cfg.frames, cfg.size, cfg.size)  # (N, M, T, H, W)
    with torch.no_grad():
        flops = _flops(lambda: net(params, video))
    return flops // 2


def shift_flops(cfg) -> int:
    """FLOPs FlopCounterMode counts for the shift of one model's feature map (C, T, s, s): 0."""
    side = (cfg.size + 1) // 2
    feature_map = torch.zeros(1, cfg.channels, cfg.frames, side, side)
    return _flops(lambda: temporal_shift(feature_map, cfg.fold_div))


def costs(cfg, arms: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """{arm: params, macs (counted), macs_formula}; JSON-able."""
    return {arm: {"params": param_count(cfg, arm), "macs": counted_macs(cfg, arm),
                  "macs_formula": macs_formula(cfg, arm)} for arm in arms}
