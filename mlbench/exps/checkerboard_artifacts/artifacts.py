"""The two artifact measures, and the overlap arithmetic of a transposed convolution.

Phase contrast (at initialisation, constant input). A stride-s upsampler writes s² interleaved
output phases; with the border cropped, m_ab = mean of y[a::s, b::s] (a, b < s) and

    P = std(m) / √(mean(m²))      (unbiased std over the s² phases, per channel, then averaged).

A flat output gives P = 0 exactly; the uniform k3s2 kernel gives std(4, 2, 2, 1)/2.5 = 0.503;
the maximum, √(s²/(s² − 1)) (√(4/3) ≈ 1.155 for s = 2), when the phase means sum to zero.

Artifact energy (after training). Crop the border, subtract the mean, multiply by a 2-D Hann
window (periodic=False), and take the share of |FFT2|² at max(|f_u|, |f_v|) ≥ band cycles/px
(Nyquist is 0.5): the checkerboard of a stride-2 layer lives at (½, ½), (½, 0) and (0, ½).

Overlap (Odena et al. 2016). A transposed convolution paints a k-wide copy of its kernel every s
output pixels; on a constant input, output phase r (per axis) receives the taps j ≡ r (mod s),
n_r = ⌈(k − r)/s⌉ of them, and in 2-D phase (a, b) sums the polyphase sub-kernel w[a::s, b::s].
All n_r are equal iff s divides k: for an all-ones kernel that is exactly "uneven overlap".
"""

from __future__ import annotations

import math
import statistics

import torch

ENERGY_FLOOR = 1e-30  # clamp before the log: a dead (constant) output has no energy at all


def phase_means(y, stride: int = 2, crop: int = 2):
    """(..., H, W) -> (..., s²) float64: the mean of each output phase y[a::s, b::s] after
    dropping `crop` border pixels (zero padding makes edge pixels differ)."""
    inner = y[..., crop:y.shape[-2] - crop, crop:y.shape[-1] - crop].double()
    return torch.stack([inner[..., a::stride, b::stride].mean((-2, -1))
                        for a in range(stride) for b in range(stride)], -1)


def phase_contrast(y, stride: int = 2, crop: int = 2):
    """P of each image, averaged over channels: y (N, C, H, W) -> (N,) float64."""
    m = phase_means(y, stride, crop)  # (N, C, s²)
    rms = m.square().mean(-1).sqrt().clamp_min(1e-300)
    return (m.std(-1, unbiased=True) / rms).mean(-1)


def windowed_power(y, crop: int = 2):
    """|FFT2|² of each cropped, mean-removed, Hann-windowed image: (..., H, W) -> (..., h, w) float64,
    and the Chebyshev frequency max(|f_u|, |f_v|) (cycles/px) of every bin, (h, w)."""
    inner = y[..., crop:y.shape[-2] - crop, crop:y.shape[-1] - crop].double()
    inner = inner - inner.mean((-2, -1), keepdim=True)
    h, w = inner.shape[-2:]
    window = (torch.hann_window(h, periodic=False, dtype=torch.float64, device=y.device)[:, None]
              * torch.hann_window(w, periodic=False, dtype=torch.float64, device=y.device)[None, :])
    power = torch.fft.fft2(inner * window).abs().square()
    fu = torch.fft.fftfreq(h, dtype=torch.float64, device=y.device).abs()
    fv = torch.fft.fftfreq(w, dtype=torch.float64, device=y.device).abs()
    return power, torch.maximum(fu[:, None], fv[None, :])


def artifact_energy(y, crop: int = 2, band: float = 0.4):
    """Share of the windowed output power at max(|f_u|, |f_v|) ≥ band: (..., H, W) -> (...) float64."""
    power, freq = windowed_power(y, crop)
    return (power * (freq >= band)).sum((-2, -1)) / power.sum((-2, -1)).clamp_min(ENERGY_FLOOR)


def power_profile(y, crop: int = 2):
    """Share of the windowed power at each Chebyshev frequency of a square image:
    (..., H, H) -> frequencies (n//2 + 1,) = k/n cycles/px, shares (..., n//2 + 1) float64."""
    power, freq = windowed_power(y, crop)
    n = power.shape[-1]
    index = (freq * n).round().long().flatten()  # (n·n,) bin of each frequency
    share = power.flatten(-2) / power.sum((-2, -1)).clamp_min(ENERGY_FLOOR)[..., None]
    out = torch.zeros(*share.shape[:-1], n // 2 + 1, dtype=torch.float64, device=y.device)
    return torch.arange(n // 2 + 1, dtype=torch.float64) / n, out.index_add_(-1, index, share)


def log10_energy(energy: float) -> float:
    return math.log10(max(energy, ENERGY_FLOOR))


def tap_counts(kernel: int, stride: int) -> list[int]:
    """Per axis: taps of a k-wide kernel landing on each of the s output phases, ⌈(k − r)/s⌉."""
    return [-(-(kernel - r) // stride) for r in range(stride)]


def uniform_phase_sums(kernel: int, stride: int) -> list[int]:
    """In 2-D: the s² phase sums n_a·n_b of an all-ones kernel on a constant input of 1."""
    n = tap_counts(kernel, stride)
    return [na * nb for na in n for nb in n]


def uniform_phase_contrast(kernel: int, stride: int) -> float:
    """Closed-form P of an all-ones k x k, stride-s transposed convolution (0 iff s divides k)."""
    sums = uniform_phase_sums(kernel, stride)
    return statistics.stdev(sums) / math.sqrt(statistics.fmean([v * v for v in sums]))


def tconv_padding(kernel: int, stride: int) -> tuple[int, int]:
    """(padding, output_padding) that make ConvTranspose2d exactly s x larger:
    out = (in − 1)·s − 2p + k + op = s·in for p = ⌊(k − s + 1)/2⌋, op = (k − s) mod 2 (k ≥ s)."""
    return (kernel - stride + 1) // 2, (kernel - stride) % 2


def uniform_tconv_output(kernel: int, stride: int, channels: int, size: int):
    """An all-ones transposed convolution (C -> C channels, no bias) applied to an all-ones
    input (1, C, size, size): the measured overlap pattern, (1, C, s·size, s·size) float32."""
    p, op = tconv_padding(kernel, stride)
    weight = torch.ones(channels, channels, kernel, kernel)
    x = torch.ones(1, channels, size, size)
    return torch.nn.functional.conv_transpose2d(x, weight, stride=stride, padding=p, output_padding=op)
