"""Peak extra memory of one call, measured from the allocator: live bytes, not shapes.

What is counted (CPU): every allocation and free that torch's CPU allocator (c10) makes while the
call runs, as torch's profiler records them with `profile_memory=True` (one event per allocation,
with its address and requested size, and one per free). Walking those events in order, an
allocation adds its bytes to the live total and the free of an address allocated inside the call
subtracts them; the figure is the largest live total reached:

    peak = max over events t of  Σ_{allocated in the call, not yet freed at t} bytes

So it includes every tensor storage the call creates (outputs included: they are still alive when
the call returns) and every temporary buffer an ATen kernel takes from the allocator, and it
excludes the inputs and anything allocated before the call. Not counted: memory a BLAS library
allocates on its own (MKL's packing buffers, a fixed size independent of n) and Python objects.
Sizes depend only on shapes and the thread count, never on values or timing, so the figure is the
same on every repeat and every rerun at the same thread count. Run under `torch.no_grad()`:
autograd would keep every tile for the backward pass.

CUDA: the caching allocator's own statistics, `max_memory_allocated()` minus the bytes allocated
before the call (after `reset_peak_memory_stats()`); block sizes are rounded up to 512 bytes there.
"""

from __future__ import annotations

import os
from typing import Any, Callable

import torch
from torch._C._profiler import _ExtraFields_Allocation
from torch.profiler import ProfilerActivity, profile


def _allocation_events(prof) -> list[tuple[int, int]]:
    """(address, bytes) of every CPU allocator event in the order they happened (bytes < 0 for a
    free): a pre-order walk of the profiler's event tree, whose siblings are in call order."""
    events, stack = [], list(reversed(prof.profiler.kineto_results.experimental_event_tree()))
    while stack:
        e = stack.pop()
        extra = e.extra_fields
        if isinstance(extra, _ExtraFields_Allocation) and extra.device.type == "cpu":
            events.append((extra.ptr, extra.alloc_size))
        stack.extend(reversed(e.children))
    return events


def peak_live_bytes(events: list[tuple[int, int]]) -> int:
    """The largest total of bytes allocated and not yet freed, over the event sequence; frees of
    addresses allocated before the sequence are ignored (those bytes were never counted)."""
    live: dict[int, int] = {}
    total = peak = 0
    for ptr, nbytes in events:
        if nbytes > 0:
            live[ptr] = nbytes
            total += nbytes
            peak = max(peak, total)
        elif ptr in live:
            total -= live.pop(ptr)
    return peak


def _peak_cpu(fn: Callable[[], Any]) -> tuple[Any, int]:
    # kineto writes two "USDT" lines to stderr at every profiler start and stop; level 6 is above its
    # highest, read when the profiler first starts (a user's own setting is kept)
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()  # kept alive past the profiler: the output's storage counts as live at the end
    return out, peak_live_bytes(_allocation_events(prof))


def _peak_cuda(fn: Callable[[], Any], device: torch.device) -> tuple[Any, int]:
    with torch.no_grad():
        fn()  # warm-up: cuBLAS takes its workspace from the caching allocator on first use
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    with torch.no_grad():
        out = fn()
    torch.cuda.synchronize(device)
    return out, torch.cuda.max_memory_allocated(device) - before


def peak_extra_bytes(fn: Callable[[], Any], device: torch.device) -> tuple[Any, int]:
    """(fn()'s result, the peak extra bytes it allocated) on `device` (see the module docstring)."""
    if device.type == "cuda":
        return _peak_cuda(fn, device)
    return _peak_cpu(fn)
