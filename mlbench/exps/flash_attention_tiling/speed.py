"""Full profile, GPU: torch's fused flash kernel vs standard attention, forward + backward, as the
README benchmarks them (its speedup and memory figures are forward + backward).

Per repeat and n: q, k, v, and an upstream gradient g, (B, H, n, d) in bf16/fp16. Each form's
forward + backward (`autograd.grad` of O·g) is
- timed: `speed_warmup` untimed calls, then `speed_calls` timed calls alternating between the two
  forms call by call, wall clock between device syncs; the repeat reports the median;
- measured: peak extra bytes of one call (the allocator's statistics, `memory.peak_extra_bytes`),
  gradients included, inputs excluded;
- scored: the 2× rule on O, dQ, dK, dV against the same computation in fp32 (the repository's
  test: `upcast=True` reference, standard attention in the low dtype as the baseline); the ratio
  reported is the worst of the four, err / (2·err_standard + rounding floor).
A form that runs out of memory gets NaN everywhere (standard attention does at large n).
On a CPU it runs too (the tests use it for plumbing, with the thread's CPU clock); `check()` keeps
the speed claim off CPUs, where no speed figure means anything for this claim.
"""

from __future__ import annotations

import math
import statistics
import time

import torch
from torch.nn.attention import SDPBackend

from mlbench.exps.flash_attention_tiling import SPEED_FORMS
from mlbench.exps.flash_attention_tiling.attention import (fused_attention, max_abs_err, naive_attention,
                                                           rounding_floor, softmax_scale)
from mlbench.exps.flash_attention_tiling.memory import peak_extra_bytes

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
FORMS = {"standard": naive_attention,
         "flash": lambda q, k, v, tau: fused_attention(q, k, v, tau, backends=(SDPBackend.FLASH_ATTENTION,))}


def _now(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return time.perf_counter_ns()
    return time.thread_time_ns()


def _release(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


def forward_backward(form, q, k, v, g, tau) -> tuple[torch.Tensor, ...]:
    """(O, dQ, dK, dV) of one forward + backward pass."""
    q, k, v = (x.detach().requires_grad_() for x in (q, k, v))
    with torch.enable_grad():
        out = FORMS[form](q, k, v, tau)
        grads = torch.autograd.grad(out, (q, k, v), g)
    return (out.detach(), *grads)


def _rule_ratio(outs: tuple, base: tuple, ref: tuple, dtype) -> float:
    """The worst over O, dQ, dK, dV of err / (2·err_standard + rounding floor)."""
    return max(max_abs_err(x, r) / (2 * max_abs_err(b, r) + rounding_floor(r, dtype)) for x, b, r in zip(outs, base, ref))


def _time(cfg, calls: dict, device) -> dict[str, float]:
    """Median ms per call of each form, calls alternating form by form."""
    for fn in calls.values():
        for _ in range(cfg.speed_warmup):
            fn()
    samples: dict[str, list[int]] = {f: [] for f in calls}
    for _ in range(cfg.speed_calls):
        for form, fn in calls.items():
            start = _now(device)
            fn()
            samples[form].append(_now(device) - start)
    return {f: statistics.median(ns) / 1e6 for f, ns in samples.items()}


def one_length(cfg, device, n: int, gen) -> dict[str, dict[str, float]]:
    dtype, tau = DTYPES[cfg.speed_dtype], softmax_scale(cfg.head_dim, 1.0)
    shape = (cfg.speed_batch, cfg.speed_heads, n, cfg.head_dim)
    q, k, v, g = (torch.randn(shape, generator=gen).to(device=device, dtype=dtype) for _ in range(4))
    call = {f: (lambda f=f: forward_backward(f, q, k, v, g, tau)) for f in SPEED_FORMS}
    outs, peaks = {}, {}
    for form in SPEED_FORMS:
        try:
            outs[form], peaks[form] = peak_extra_bytes(call[form], device)
        except torch.OutOfMemoryError:  # standard attention at large n: NaN, the other form goes on
            _release(device)
    ratios = {}
    if "standard" in outs:
        try:  # the fp32 reference is standard attention too, at twice the bytes
            ref = forward_backward("standard", *(x.float() for x in (q, k, v, g)), tau)
            ratios = {f: _rule_ratio(o, outs["standard"], ref, dtype) for f, o in outs.items()}
            del ref
        except torch.OutOfMemoryError:
            _release(device)
    outs.clear()
    ms = _time(cfg, {f: call[f] for f in peaks}, device)
    return {f: {"ms": ms.get(f, math.nan), "peak_bytes": float(peaks.get(f, math.nan)),
                "rule_ratio": ratios.get(f, math.nan)} for f in SPEED_FORMS}


def speed_repeat(cfg, ctx, seed: int) -> dict[str, dict[str, dict[str, float]]]:
    """One repeat: {str(n): {form: {"ms", "peak_bytes", "rule_ratio"}}}."""
    gen, out = ctx.generator("speed", seed), {}
    ns = sorted(set(cfg.speed_lengths))
    with ctx.task(f"fused kernel vs standard, forward + backward, repeat {seed}", len(ns)) as bar:
        for n in ns:
            out[str(n)] = one_length(cfg, ctx.device, n, gen)
            bar.advance()
    return out
