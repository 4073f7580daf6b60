"""Timing single decode steps and single forward passes, robust to a shared, noisy machine.

- The clock: on CPU at one torch thread, the calling thread's CPU time (all of torch's work runs
  in it): time the scheduler gives to other processes is not counted, page faults and cache
  misses are. With more threads, the process's CPU time (the work of all of them; wall time
  under load swings by more than the effects measured). On CUDA, wall time between two syncs.
- Blocks: each arm runs `warmup` untimed calls, then its timed calls, and the arms alternate
  block by block, so a change in load hits both and each block starts with warm caches.
- Each repeat reports the median of its timed calls; verdicts use the spread over repeats.
"""

from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Callable

import torch

from mlbench.exps.linear_attention_rnn.attention import (linear_chunked, linear_noncausal, rnn_init, rnn_step,
                                                         softmax_causal, softmax_decode_step)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def clock(device: torch.device) -> tuple[str, Callable[[], int]]:
    """(name, now in ns) for timing one call on `device`."""
    if device.type == "cuda":
        def now() -> int:
            torch.cuda.synchronize(device)
            return time.perf_counter_ns()
        return "wall (CUDA synced)", now
    if torch.get_num_threads() == 1:
        return "thread CPU time", time.thread_time_ns
    return f"process CPU time, {torch.get_num_threads()} threads", time.process_time_ns


def time_calls(fn: Callable[[], object], calls: int, warmup: int, now: Callable[[], int]) -> list[int]:
    """ns per call of `calls` timed calls of `fn`, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(calls):
        start = now()
        fn()
        out.append(now() - start)
    return out


def _randn(shape, gen, dtype, device):
    """Drawn on the CPU from the repeat's generator (same numbers on every device), then moved."""
    return torch.randn(shape, generator=gen).to(device=device, dtype=dtype)


@torch.inference_mode()
def decode_repeat(cfg, positions: tuple[int, ...], gen, device) -> dict[str, dict[str, float]]:
    """One repeat: median µs of one decode step at each position t, {str(t): {arm: µs}}.

    softmax-kv: write (k_t, v_t) into a pre-allocated cache (1, H, T, d) and attend over t+1
    slots. rnn: S += φ(k_t)v_tᵀ, z += φ(k_t), read out; its state never grows."""
    dtype, (_, now) = DTYPES[cfg.timing_dtype], clock(device)
    H, d = cfg.heads, cfg.head_dim
    cap = max(positions) + 1
    k_cache, v_cache = (_randn((1, H, cap, d), gen, dtype, device) for _ in range(2))
    q, k, v = (_randn((1, H, 1, d), gen, dtype, device) for _ in range(3))
    state, norm = rnn_init((1, H), d, d, dtype, device)
    out = {}
    for t in positions:
        arms = {"softmax-kv": partial(softmax_decode_step, q, k, v, k_cache, v_cache, t),
                "rnn": partial(rnn_step, q[:, :, 0], k[:, :, 0], v[:, :, 0], state, norm, cfg.eps)}
        samples: dict[str, list[int]] = {a: [] for a in arms}
        for _ in range(cfg.decode_blocks):
            for name, fn in arms.items():
                samples[name] += time_calls(fn, cfg.decode_block_calls, cfg.decode_warmup, now)
        out[str(t)] = {name: statistics.median(ns) / 1e3 for name, ns in samples.items()}
    return out


@torch.inference_mode()
def forward_repeat(cfg, lengths: dict[str, tuple[int, ...]], gen, device) -> dict[str, dict[str, float]]:
    """One repeat: median ms of one forward pass (B, 1, n, d) per arm and n, {str(n): {arm: ms}}."""
    dtype, (_, now) = DTYPES[cfg.timing_dtype], clock(device)
    forms = {"softmax": softmax_causal, "linear": partial(linear_noncausal, eps=cfg.eps),
             "linear-causal": partial(linear_chunked, chunk=cfg.chunk, eps=cfg.eps)}
    out = {}
    for n in sorted({n for ns in lengths.values() for n in ns}):
        q, k, v = (_randn((cfg.forward_batch, 1, n, cfg.head_dim), gen, dtype, device) for _ in range(3))
        out[str(n)] = {}
        for name, form in forms.items():
            if n in lengths[name]:
                ns = time_calls(partial(form, q, k, v), cfg.forward_calls, 1, now)
                out[str(n)][name] = statistics.median(ns) / 1e6
    return out
