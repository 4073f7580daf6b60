"""flash-attention-tiling: tiled attention with an online softmax is exact and needs O(n) extra memory.

Shows (Dao et al. 2022, FlashAttention, §3.1 and Algorithm 1; the README of Dao-AILab/flash-attention;
seed documents 001 and 004):

1. Headline: tiling Q, K, V into 64 × 64 blocks and combining the block softmaxes with a running
   max m and sum l (the online softmax) is exact, and its extra memory grows linearly in n.
   Exact means the FlashAttention repository's own test rule: the max error against a float64
   reference is at most 2× that of plain fp32 attention (plus twice the error of merely storing
   the exact output in fp32), for every seed, length and logit scale (1, 3 and 30). Memory: the
   log-log slope of the measured peak extra bytes vs n is in [1.9, 2.1] for plain attention (it
   materialises S and P, n × n each) and ≤ 1.2 for the tiled form.
2. The savings grow with n: the memory ratio plain / tiled at the largest n is ≥ 1.8× the ratio at
   half that n, beside the README's 10× at 2K and 20× at 4K (forward + backward on an A100; ours
   is the forward pass of one head on a CPU, so the ratios differ, their doubling does not).
3. The rescaling is what makes tiling exact: without the factor c = exp(m − m') the max error is
   ≥ 0.01 at every scale; without the max subtraction (exp(S) unshifted) the output is exact at
   scales 1 and 3 but non-finite at scale 30, where logits pass ln(FLT_MAX) ≈ 88.7.
4. Speed (full profile, GPU only: `speed = true`): torch's fused flash kernel is ≥ 2× faster than
   standard attention forward + backward at n = 1K..4K (README: 2-4×), and its output and gradients
   pass the same 2× rule against an fp32 reference. No speed figure is produced on a CPU: a Python
   tile loop measures the interpreter, not the memory traffic the paper is about.

How memory is measured (`memory.py`): peak live bytes taken from torch's CPU allocator while the
call runs (torch's profiler with `profile_memory=True` records every allocation with its address
and size, and every free): the largest total of bytes allocated inside the call and not yet freed,
outputs included, inputs excluded. Nothing is computed from shapes; the counts depend only on
shapes and the thread count (pinned to 1), so every repeat and every rerun gives the same bytes.
On CUDA: the caching allocator's `max_memory_allocated` over the call. Memory is measured on the
scale-1 calls, under `torch.no_grad()`.

Repeats ("seeds") draw fresh q, k, v ~ N(0, 1) (one head, d = 64). Everything the quick profile
writes is byte-identical on rerun at the same thread count; only the full profile's speed table
(table-speed.csv, plots/speed.png, the speed claim in summary.json and table.md) holds timings.

torch's own fused kernel (`scaled_dot_product_attention`, flash backend: on a CPU a blocked online
softmax in C++) is measured beside them as an independent tiled implementation; no claim rests on it.

Quick profile, 2-core CPU, 3 repeats, one thread (about 18 s of CPU time): all three claims
reproduced. Worst tiled error / (2 × plain error) 0.58 over 45 cases (the two errors are nearly
equal: ratios sit at 0.5); plain attention's peak is exactly 2·n²·4 bytes (S and P) at every n,
slope 2.00; tiled 0.17 MiB at n = 256 to 1.13 MiB at 4096, slope 0.68 (the n·d output dominates);
the fused kernel 0.90. Savings 51.8× at 2K and 113.7× at 4K (growth 2.20) beside the README's 10×
and 20×: our accounting leaves out the inputs and the backward pass the README includes. Without
rescaling the error is 0.13 to 4.3; without the max subtraction the output is non-finite at scale
30 at every n and passes the rule (worst 0.60) at scales 1 and 3. Under the negative control
(block_q = block_k = n: one tile is the whole score matrix) the tiled memory slope is 1.93 and the
headline is not reproduced; with a single key block the no-rescale ablation is as exact as the tiled
form (nothing to rescale), so claim 3 fails as well, and the savings stay at 0.5-0.66×.

Run: `mlbench run flash-attention-tiling` (quick, CPU); `--profile full --device cuda` for n to 16K
and the fused-kernel speed claim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mlbench.core.config import param
from mlbench.core.errors import UsageError
from mlbench.core.grid import arm_key
from mlbench.core.verdict import AllOf, Claim, Paired, Paper, Threshold, Trend
from mlbench.exps.flash_attention_tiling.rules import Every

VERSION = 1
SUMMARY = ("Tiled attention with an online softmax (running max and sum) is exact and needs extra memory "
           "linear in n, where plain attention's grows as n².")
CITATION = "Dao et al. 2022, FlashAttention (NeurIPS), §3.1, Algorithm 1"
README = "Dao-AILab/flash-attention README, Performance"
THREADS = 1  # memory counts include per-thread buffers of torch's fused kernel: pinned for byte-identical reruns

EXACT_FORMS = ("naive", "tiled", "no-rescale", "no-max", "fused")  # scored against float64
MEMORY_FORMS = ("naive", "tiled", "fused")  # peak extra bytes measured
SPEED_FORMS = ("standard", "flash")  # full profile: fwd + bwd, GPU
NAIVE_SLOPE = (1.9, 2.1)
TILED_SLOPE_MAX = 1.2
GROWTH_MIN = 1.8  # ratio at n_max / ratio at n_max / 2 (linear vs quadratic: 2)
NO_RESCALE_MIN_ERR = 0.01
SPEEDUP_MIN = 2.0
SPEED_CLAIM_LENGTHS = (1024, 4096)  # the README's range where it reports 2-4x, inclusive

TIMED_METRICS = ("ms", "log_ms", "speedup")
TIMED_FILES = ("table-speed.csv", "plots/speed.png")


@dataclass(frozen=True)
class Config:
    head_dim: int = param(64, "d of the single head (the README's memory figure uses 64 and 128)", min=1)
    lengths: tuple[int, ...] = param((256, 512, 1024, 2048, 4096), "sequence lengths n (the largest two "
                                     "must be a factor 2 apart: the growth claim)", min=1)
    block_q: int = param(64, "B_q: query rows per tile", min=1)
    block_k: int = param(64, "B_k: key rows per tile", min=1)
    logit_scales: tuple[float, ...] = param((1.0, 3.0), "multipliers of τ = 1/√d where every form must be "
                                            "exact (3 stresses the max subtraction without overflow)", min=1e-6)
    overflow_scale: float = param(30.0, "a larger multiplier where exp(S) unshifted overflows float32 "
                                  "(max logit ≳ 88.7); every other form must stay exact there too", min=1e-6)
    speed: bool = param(False, "fused flash kernel vs standard attention, forward + backward, timed "
                        "(GPU only; the full profile)")
    speed_lengths: tuple[int, ...] = param((1024, 2048, 4096, 8192, 16384), "n of the speed comparison",
                                           min=16)
    speed_batch: int = param(4, "B of the speed comparison", min=1)
    speed_heads: int = param(8, "H of the speed comparison", min=1)
    speed_dtype: Literal["bfloat16", "float16"] = param("bfloat16", "dtype of the speed comparison "
                                                        "(exactness there: against an fp32 reference)")
    speed_calls: int = param(10, "timed forward + backward calls per form, n and repeat (median)", min=1)
    speed_warmup: int = param(3, "untimed calls before the timed ones", min=0)
    negative_control: bool = param(False, "one tile covers the whole score matrix (block_q = block_k = n): "
                                   "quadratic memory, the headline must not reproduce")

    def validate(self) -> None:
        ns = sorted(set(self.lengths))
        if len(ns) < 2 or ns[-1] != 2 * ns[-2]:
            raise ValueError("lengths need two or more distinct values, the largest twice the second largest")
        if self.overflow_scale <= max(self.logit_scales):
            raise ValueError("overflow_scale must be larger than every logit_scale")
        lo, hi = SPEED_CLAIM_LENGTHS
        if self.speed and not any(lo <= n <= hi for n in self.speed_lengths):
            raise ValueError(f"speed_lengths need one n in {lo}..{hi} (where the README reports its speedups)")


def lengths(cfg: Config) -> tuple[int, ...]:
    return tuple(sorted(set(cfg.lengths)))


def scales(cfg: Config) -> tuple[float, ...]:
    """Every logit scale measured: the exact ones, then the overflow scale."""
    return (*sorted(set(cfg.logit_scales)), cfg.overflow_scale)


def blocks(cfg: Config, n: int) -> tuple[int, int]:
    """(B_q, B_k) at length n; the negative control makes one tile of the whole n × n matrix."""
    return (n, n) if cfg.negative_control else (cfg.block_q, cfg.block_k)


def tile_text(cfg: Config) -> str:
    return "one n×n tile: the negative control" if cfg.negative_control else f"{cfg.block_q}×{cfg.block_k} tiles"


def speed_claim_lengths(cfg: Config) -> tuple[int, ...]:
    lo, hi = SPEED_CLAIM_LENGTHS
    return tuple(n for n in sorted(set(cfg.speed_lengths)) if lo <= n <= hi)


def arms(cfg: Config) -> list[str]:
    """Every measurement key a run of `cfg` produces."""
    ns = lengths(cfg)
    exact = [arm_key(f, n=n, scale=s) for n in ns for s in scales(cfg) for f in EXACT_FORMS]
    memory = [arm_key(f, n=n) for n in ns for f in MEMORY_FORMS]
    savings = [arm_key("savings", n=n) for n in ns] + ["savings-growth"]
    speed = []
    if cfg.speed:
        speed = [arm_key(f, n=n) for n in sorted(set(cfg.speed_lengths)) for f in (*SPEED_FORMS, "speedup")]
    return [*exact, *memory, *savings, *speed]


def _slope(form: str, ns: tuple[int, ...], direction: str, bound: float) -> Trend:
    return Trend("log_peak_bytes", tuple(arm_key(form, n=n) for n in ns), tuple(math.log(n) for n in ns),
                 direction, bound, x_label="ln n")


def claims(cfg: Config) -> list[Claim]:
    ns, exact_scales, big = lengths(cfg), sorted(set(cfg.logit_scales)), cfg.overflow_scale
    every_scale = scales(cfg)
    keys = lambda form, ss: tuple(arm_key(form, n=n, scale=s) for n in ns for s in ss)  # noqa: E731
    scale_text = ", ".join(f"{s:g}" for s in every_scale)
    out = [
        Claim("exact-linear-memory", f"Tiled attention with the online softmax ({tile_text(cfg)}) "
              f"is exact (max error vs float64 ≤ 2× plain fp32 attention's, at every n = {ns[0]}..{ns[-1]}, "
              f"logit scale {scale_text} and seed) and its measured peak extra memory grows linearly in n "
              f"(log-log slope ≤ {TILED_SLOPE_MAX:g}) where plain attention's grows as n² (slope in "
              f"[{NAIVE_SLOPE[0]:g}, {NAIVE_SLOPE[1]:g}])", CITATION,
              AllOf((Every("rule_ratio", keys("tiled", every_scale), 1.0, "at_most"),
                     _slope("naive", ns, "greater", NAIVE_SLOPE[0]), _slope("naive", ns, "less", NAIVE_SLOPE[1]),
                     _slope("tiled", ns, "less", TILED_SLOPE_MAX))),
              paper=Paper("exact; memory linear in n", "vs quadratic for standard attention", f"{README} → Memory; "
                          "the paper's abstract", confirmed=True)),
        Claim("savings-grow", f"The memory savings grow with n: plain / tiled peak extra memory at n = {ns[-1]} is "
              f"≥ {GROWTH_MIN:g}× the ratio at n = {ns[-2]}", f"{README} → Memory",
              Threshold("growth", "savings-growth", GROWTH_MIN, "greater"),
              paper=Paper(20.0, "× memory savings at n = 4K (10× at 2K)", f"{README} → Memory", confirmed=True,
                          ours=(arm_key("savings", n=ns[-1]), "ratio"),
                          note="A100, forward + backward, head dim 64/128; ours: one head's forward pass on a CPU")),
        Claim("rescaling", f"The rescaling makes tiling exact: without the factor exp(m − m') the max error is "
              f"≥ {NO_RESCALE_MIN_ERR:g} at every n and scale; without the max subtraction the output passes the "
              f"2× rule at scale {', '.join(f'{s:g}' for s in exact_scales)} and is non-finite at scale {big:g}",
              f"{CITATION}; Milakov & Gimelshein 2018, online softmax",
              AllOf((Every("max_abs_err", keys("no-rescale", every_scale), NO_RESCALE_MIN_ERR, "at_least"),
                     Every("rule_ratio", keys("no-max", exact_scales), 1.0, "at_most"),
                     Every("finite", keys("no-max", (big,)), 0.0, "at_most")))),
    ]
    if cfg.speed:
        out += speed_claims(cfg)
    return out


def speed_claims(cfg: Config) -> list[Claim]:
    ns = speed_claim_lengths(cfg)  # beyond 4K standard attention and the fp32 reference may not fit
    faster = tuple(Paired("ms", arm_key("standard", n=n), arm_key("flash", n=n), "greater", math.log(SPEEDUP_MIN),
                          log_ratio=True) for n in ns)
    return [
        Claim("speed", f"torch's fused flash kernel is ≥ {SPEEDUP_MIN:g}× faster than standard attention, forward + "
              f"backward, at n = {', '.join(map(str, ns))} ({cfg.speed_dtype}, B={cfg.speed_batch}, "
              f"H={cfg.speed_heads}, d={cfg.head_dim})", f"{README} → A100",
              AllOf(faster),
              paper=Paper("2-4", "× speedup, forward + backward, n = 128..4K", f"{README} → A100 → Speedup",
                          confirmed=True, ours=(arm_key("speedup", n=ns[-1]), "speedup"),
                          note="A100, batch 8, 12 heads, head dim 64")),
        Claim("fused-exact", "The fused kernel's output and gradients pass the 2× rule against an fp32 reference "
              f"(error ≤ 2× standard {cfg.speed_dtype} attention's) at n = {', '.join(map(str, ns))}",
              f"{README} → Tests", Every("rule_ratio", tuple(arm_key("flash", n=n) for n in ns), 1.0, "at_most")),
    ]


def check(cfg: Config, device: str) -> None:
    """Refuse on a CPU what only a GPU can answer (the speed claim) or hold (the float64 reference
    and plain attention at large n: about 4 × 8 × n² bytes)."""
    if device != "cpu":
        return
    if cfg.speed:
        raise UsageError("the speed claim is about GPU memory traffic: use --device cuda, or --set speed=false "
                         "(exactness and memory only)")
    gib = 4 * 8 * max(cfg.lengths) ** 2 / 2 ** 30
    if gib > 4:
        raise UsageError(f"n = {max(cfg.lengths)} needs ~{gib:.0f} GiB for the float64 reference on a CPU: use "
                         "--device cuda, or smaller lengths (largest <= 8192)")
