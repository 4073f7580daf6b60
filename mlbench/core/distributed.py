"""Multi-process launches (`accelerate launch`, `torchrun`): rank, world size, gathering results.

Results travel between ranks as JSON bytes in CPU tensors. accelerate picks NCCL for a CUDA
launch, and NCCL has no collectives on CPU tensors, so those payloads go over a gloo group of
the same ranks, made once beside the default group (on a CPU launch the default group is gloo
already and is used as it is). Device tensors never need to cross ranks here.
"""

from __future__ import annotations

import atexit
import json
from typing import Any

_PAYLOAD_GROUPS: dict[str, Any] = {}  # default-group backend -> the group CPU payloads use


def rank_and_world(device: str) -> tuple[int, int]:
    """(rank, world size) under `accelerate launch` / `torchrun`; (0, 1) otherwise."""
    from mlbench.core.device import place

    placement = place(device)
    return placement.rank, placement.world


def payload_group() -> Any:
    """The process group for CPU payloads: None (the default group) when that is gloo, else a
    gloo group of all ranks. Collective the first time: every rank calls it at the same point
    (`device.place` does, right after the process group exists)."""
    import torch.distributed as dist

    if not _PAYLOAD_GROUPS:
        _PAYLOAD_GROUPS["registered"] = atexit.register(_destroy_groups)
    backend = str(dist.get_backend())
    if backend == "gloo":
        return None
    if backend not in _PAYLOAD_GROUPS:
        _PAYLOAD_GROUPS[backend] = dist.new_group(backend="gloo")
    return _PAYLOAD_GROUPS[backend]


def _destroy_groups() -> None:
    """At exit, the process groups go down before the interpreter does: a gloo group's threads
    still running then abort the process ("terminate called without an active exception",
    SIGABRT), which the launcher reports as a failed rank after the run has finished."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier(group=payload_group())


def all_gather_bytes(data: bytes, world_size: int) -> list[bytes]:
    """Every rank's `data` on every rank (CPU uint8 tensors on the payload group)."""
    import torch
    import torch.distributed as dist

    group = payload_group()
    size = torch.tensor([len(data)], dtype=torch.int64)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world_size)]
    dist.all_gather(sizes, size, group=group)
    longest = max(1, int(max(s.item() for s in sizes)))
    buf = torch.zeros(longest, dtype=torch.uint8)
    if data:
        buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    bufs = [torch.zeros(longest, dtype=torch.uint8) for _ in range(world_size)]
    dist.all_gather(bufs, buf, group=group)
    return [b[: int(n.item())].numpy().tobytes() for b, n in zip(bufs, sizes)]


def all_gather_values(obj: Any, world_size: int) -> list[Any]:
    """Every rank's JSON-able `obj`, in rank order, sent as JSON text."""
    return [json.loads(part) for part in all_gather_bytes(json.dumps(obj).encode(), world_size)]


def all_gather_json(payload: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """Every rank's finished units on every rank, sent as JSON bytes (checkpoint bytes as base64):
    torch's object collectives would unpickle what the other ranks send."""
    import base64

    def encode(unit: dict[str, Any]) -> dict[str, Any]:
        return {**unit, "checkpoints": {n: base64.b64encode(b).decode() for n, b in unit["checkpoints"].items()}}

    def decode(unit: dict[str, Any]) -> dict[str, Any]:
        return {**unit, "checkpoints": {n: base64.b64decode(b) for n, b in unit["checkpoints"].items()}}

    parts = all_gather_values({k: encode(v) for k, v in payload.items()}, world_size)
    return [{k: decode(v) for k, v in part.items()} for part in parts]
