"""Multi-process launches (`accelerate launch`, `torchrun`): rank, world size, gathering results."""

from __future__ import annotations

import json
import os
from typing import Any


def rank_and_world(device: str) -> tuple[int, int]:
    """(rank, world size) under `accelerate launch` / `torchrun`; (0, 1) otherwise."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")  # initialises the process group (gloo on CPU)
    return state.process_index, state.num_processes


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def all_gather_json(payload: dict[str, Any], world_size: int) -> list[dict[str, Any]]:
    """Every rank's `payload` on every rank, sent as JSON bytes (checkpoint bytes as base64):
    torch's object collectives would unpickle what the other ranks send."""
    import base64

    import torch
    import torch.distributed as dist

    def encode(unit: dict[str, Any]) -> dict[str, Any]:
        return {**unit, "checkpoints": {n: base64.b64encode(b).decode() for n, b in unit["checkpoints"].items()}}

    def decode(unit: dict[str, Any]) -> dict[str, Any]:
        return {**unit, "checkpoints": {n: base64.b64decode(b) for n, b in unit["checkpoints"].items()}}

    data = json.dumps({k: encode(v) for k, v in payload.items()}).encode()
    size = torch.tensor([len(data)], dtype=torch.int64)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world_size)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    buf = torch.zeros(longest, dtype=torch.uint8)
    buf[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    bufs = [torch.zeros(longest, dtype=torch.uint8) for _ in range(world_size)]
    dist.all_gather(bufs, buf)
    parts = [json.loads(b[: int(n.item())].numpy().tobytes()) for b, n in zip(bufs, sizes)]
    return [{k: decode(v) for k, v in part.items()} for part in parts]
