"""Stride-2 upsamplers (C -> C channels) for G stacked models at once, as grouped convolutions.

Every layer acts on (B, G·C, h, w) with group g holding model g's C channels, and returns
(B, G·C, 2h, 2w) with the same layout, so G models (seeds, or initialisations) run as one call:

- transposed conv, k x k, stride 2: out = (in − 1)·2 − 2p + k + op, p = ⌊(k − 1)/2⌋, op = (k − 2) mod 2
  (Odena et al.: "deconvolution"); the negative control makes it stride 1 after a nearest resize.
- resize + conv: nearest or bilinear (align_corners=False) x2, then a 3x3 conv (Odena et al.).
- sub-pixel conv (Shi et al. 2016): 3x3 conv to 4C channels, then PixelShuffle, which sends conv
  channel c·4 + i·2 + j to output channel c at sub-pixel (i, j). With groups, model g's conv
  channels g·4C … g·4C + 4C − 1 are contiguous and land in its own output channels g·C … g·C + C − 1.
- ICNR (Aitken et al. 2017): the four sub-kernels of each output channel, conv channels
  c·4 … c·4 + 3, start equal (bias too), so the layer starts as nearest resize + conv.
- blur (fastai `PixelShuffle_ICNR(blur=True)`, Sugawara et al. 2018): ICNR, then
  ReplicationPad2d((1, 0, 1, 0)) and a 2x2 average with stride 1.

Initialisation is PyTorch's default for Conv2d / ConvTranspose2d: weight and bias
U(−b, b), b = 1/√fan_in, fan_in = C·k² (ConvTranspose2d counts its output channels, also C).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mlbench.exps.checkerboard_artifacts.artifacts import tconv_padding

SCALE = 2  # every layer here doubles the resolution


@dataclass(frozen=True)
class Upsampler:
    """How an arm upsamples: `kind` tconv | resize | subpixel."""
    kind: str
    kernel: int = 3
    stride: int = SCALE  # tconv only (1 under the negative control)
    resize: str | None = None  # interpolation before the conv: nearest | bilinear
    icnr: bool = False
    blur: bool = False


def upsampler(arm: str, negative_control: bool = False) -> Upsampler:
    """The layer of each arm; the negative control swaps both transposed convs for a stride-1,
    3x3 transposed conv after a nearest resize (same kernel family, no uneven overlap)."""
    if arm.startswith("tconv_"):
        if negative_control:
            return Upsampler("tconv", 3, 1, resize="nearest")
        return Upsampler("tconv", int(arm[len("tconv_k")]), SCALE)
    specs = {"nearest_conv": Upsampler("resize", resize="nearest"),
             "bilinear_conv": Upsampler("resize", resize="bilinear"),
             "pixelshuffle": Upsampler("subpixel"),
             "pixelshuffle_icnr": Upsampler("subpixel", icnr=True),
             "pixelshuffle_icnr_blur": Upsampler("subpixel", icnr=True, blur=True)}
    return specs[arm]


def uniform(shape, bound: float, gen):
    return (torch.rand(shape, generator=gen) * 2.0 - 1.0) * bound


def init_params(spec: Upsampler, channels: int, gens: list, draws: int = 1) -> dict:
    """Stacked weights of G = len(gens)·draws models (generator-major, draw innermost), on CPU:
    weight (G, C_out, C, k, k) [tconv: (G, C, C, k, k), (in, out) as ConvTranspose2d], bias (G, C_out)."""
    C, k = channels, spec.kernel
    bound = 1.0 / math.sqrt(C * k * k)
    weights, biases = [], []
    for g in gens:
        for _ in range(draws):
            if spec.kind == "subpixel" and spec.icnr:  # one sub-kernel per output channel, copied 4x
                w, b = uniform((C, C, k, k), bound, g), uniform((C,), bound, g)
                w, b = w.repeat_interleave(SCALE ** 2, 0), b.repeat_interleave(SCALE ** 2, 0)
            else:
                out = C * SCALE ** 2 if spec.kind == "subpixel" else C
                w, b = uniform((out, C, k, k), bound, g), uniform((out,), bound, g)
            weights.append(w)
            biases.append(b)
    return {"weight": torch.stack(weights), "bias": torch.stack(biases)}


def forward(spec: Upsampler, params: dict, h):
    """(B, G·C, h, w) -> (B, G·C, 2h, 2w) for the G stacked models of `params` (weights (G, ...))."""
    groups = params["weight"].shape[0]
    w, b = params["weight"].flatten(0, 1), params["bias"].flatten()  # grouped-conv layout: group g's rows contiguous
    if spec.resize is not None:
        h = F.interpolate(h, scale_factor=SCALE, mode=spec.resize,
                          **({"align_corners": False} if spec.resize == "bilinear" else {}))
    if spec.kind == "tconv":
        p, op = tconv_padding(spec.kernel, spec.stride)
        return F.conv_transpose2d(h, w, b, stride=spec.stride, padding=p, output_padding=op, groups=groups)
    y = F.conv2d(h, w, b, padding=spec.kernel // 2, groups=groups)
    if spec.kind == "resize":
        return y
    y = F.pixel_shuffle(y, SCALE)
    if spec.blur:
        y = F.avg_pool2d(F.pad(y, (1, 0, 1, 0), mode="replicate"), 2, stride=1)
    return y


def same_sign(params: dict) -> dict:
    """The |w| variant: absolute weights, zero bias (a stand-in for smoothing kernels)."""
    return {"weight": params["weight"].abs(), "bias": torch.zeros_like(params["bias"])}
