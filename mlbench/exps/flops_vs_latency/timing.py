"""Shuffled round-robin timing of a group of networks, robust to a shared, noisy machine.

- The clock: on a CPU at one torch thread, the calling thread's CPU time (all of torch's work runs
  in it): the time the scheduler gives other processes is not counted, cache misses and page
  faults are. At more threads, the process's CPU time (the work of all of them). On CUDA, CUDA
  events recorded around the sample (the elapsed GPU time between them, read after a sync).
- A sample is `inner` back-to-back calls; `inner` is set once per group so the baseline's sample
  lasts at least `min_sample_s` (from the median of its last warm-up calls), the same for every
  variant of the group.
- A round times every network of the group once, in a fresh order drawn from the pass's
  generator, so load changes fall on every variant alike; a ratio is only ever taken within a
  round: r_j = t_variant,j / t_baseline,j.
- Each sample is preceded by one untimed call of the same network. Without it, a network timed
  right after one with large activations (G1's 1:12 and 1:16, 5-6 MB per feature map) ran 5-10 %
  slower, so two identical networks differed by up to 5 % in a pass, depending only on which
  networks the shuffled orders happened to put before them.
- Per pass and variant: the median and the quartiles of r_j over the rounds.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class Clock:
    """`sample(fn, inner)`: seconds for `inner` calls of `fn`, by `name`."""
    name: str
    sample: Callable[[Callable[[], object], int], float]


def cpu_clock() -> Clock:
    threads = torch.get_num_threads()
    now = time.thread_time_ns if threads == 1 else time.process_time_ns

    def sample(fn, inner: int) -> float:
        start = now()
        for _ in range(inner):
            fn()
        return (now() - start) / 1e9

    return Clock("thread CPU time" if threads == 1 else f"process CPU time, {threads} threads", sample)


def cuda_clock(device: torch.device) -> Clock:
    def sample(fn, inner: int) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    return Clock(f"CUDA events ({torch.cuda.get_device_name(device)})", sample)


def clock_for(device: torch.device) -> Clock:
    return cuda_clock(device) if device.type == "cuda" else cpu_clock()


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    """(q1, median, q3) by linear interpolation between order statistics (numpy's default)."""
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def warm_and_calibrate(fns: list[Callable[[], object]], warmup: int, min_sample_s: float, clock: Clock) -> int:
    """Run every network `warmup` times; return inner = ⌈min_sample_s / t_call⌉ from the baseline's
    (fns[0]) warm-up calls after the first."""
    base = [clock.sample(fns[0], 1) for _ in range(warmup)]
    for fn in fns[1:]:
        for _ in range(warmup):
            fn()
    t_call = statistics.median(base[1:] or base)
    return max(1, math.ceil(min_sample_s / max(t_call, 1e-9)))


def time_group(fns: list[Callable[[], object]], *, rounds: int, inner: int, clock: Clock,
               order: torch.Generator) -> dict[str, list[float]]:
    """Per network i, its per-round ratios to the baseline (fns[0]) and its per-call seconds; each
    sample follows one untimed call of its own network (see the module docstring)."""
    ratios: list[list[float]] = [[] for _ in fns]
    seconds: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        t = [0.0] * len(fns)
        for i in torch.randperm(len(fns), generator=order).tolist():
            fns[i]()
            t[i] = clock.sample(fns[i], inner)
        for i, ti in enumerate(t):
            ratios[i].append(ti / t[0])
            seconds[i].append(ti / inner)
    return {"ratios": ratios, "seconds": seconds}


def summarise(ratios: list[float]) -> dict[str, float]:
    """The per-pass figures of one variant: median and quartiles of its per-round ratios."""
    q1, med, q3 = quartiles(ratios)
    return {"ratio": med, "ratio_q1": q1, "ratio_q3": q3}
