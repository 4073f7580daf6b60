"""Where this process runs: accelerate's device for it, explicitly (never a side effect).

`place(device)` turns the user's resolved word ("cpu" or "cuda") into this process's placement.
Under `accelerate launch` / `torchrun`, accelerate's `PartialState` initialises the process
group and gives each rank its own device (`cuda:LOCAL_RANK`; gloo on a CPU launch); alone on a
GPU it is accelerate's default device. Alone on a CPU the answer is `cpu`, which is what
`PartialState(cpu=True).device` says too, so accelerate (about 1 s to import on a small CPU) is
not imported for it. Each rank's device and its name go into the manifest.

`accelerator(device, mixed_precision=...)` hands out an `Accelerator` on that placement:
accelerate keeps one `AcceleratorState` per process and refuses a second one with another mixed
precision, so a different setting resets that state (the process group and device stay).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

_PLACED: dict[str, "Placement"] = {}  # per process: the user's device word -> where we run


@dataclass(frozen=True)
class Placement:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"  # accelerate's: "cpu", "cuda", "cuda:1", "mps"
    name: str = "cpu"  # what the hardware calls itself
    backend: str | None = None  # the process group's ("gloo", "nccl"); None for one process
    ranks: tuple[dict[str, Any], ...] = field(default=())  # every rank's record (rank order)

    def record(self) -> dict[str, Any]:
        return {"rank": self.rank, "local_rank": self.local_rank, "device": self.device, "name": self.name}

    def manifest(self) -> dict[str, Any]:
        """The manifest's `device`: this (main) process's type and name, and every rank's device."""
        kind = self.device.split(":")[0]
        out: dict[str, Any] = {"type": kind, "name": self.name, "device": self.device}
        if self.world > 1:
            out.update(backend=self.backend, ranks=list(self.ranks))
        return out


def launched() -> bool:
    """Started by `accelerate launch` / `torchrun` with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def place(device: str) -> Placement:
    """This process's placement for the resolved `device` ("cpu" or "cuda"). Under a launch the
    first call is collective (the process group, the gloo payload group, every rank's record):
    every rank makes it at the start of a run."""
    if device not in _PLACED:
        _PLACED[device] = Placement() if device == "cpu" and not launched() else _accelerate_placement(device)
    return _PLACED[device]


def _accelerate_placement(device: str) -> Placement:
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu")
    if state.device.type != device and state.num_processes == 1:  # another run of this process
        _reset_accelerate()  # left a single-process state for the other device: start over
        state = PartialState(cpu=device == "cpu")
    if state.device.type != device:
        from mlbench.core.errors import DeviceError

        raise DeviceError(f"this launch placed the process on {state.device}, not on {device}: launch again "
                          f"for {device} (or run with --device {state.device.type})")
    here = Placement(state.process_index, state.num_processes, state.local_process_index, str(state.device),
                     device_name(state.device), state.backend)
    if here.world == 1:
        return here
    from mlbench.core.distributed import all_gather_values, payload_group

    payload_group()  # made here, by every rank at once, before any gather needs it
    ranks = tuple(all_gather_values(here.record(), here.world))
    return dataclasses.replace(here, ranks=ranks)


def device_name(device: Any) -> str:
    """'NVIDIA H100 80GB HBM3' for a CUDA device; the processor (or 'cpu') otherwise."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return "cpu"


def accelerator(device: str, mixed_precision: str = "no", **kwargs: Any):
    """An `Accelerator` on this process's placement with `mixed_precision` ("no", "fp16",
    "bf16") and any other `Accelerator` arguments (`log_with`, `project_dir`, ...)."""
    place(device)  # the PartialState first: on a launch it exists already
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)  # keep the process group and device
    return Accelerator(cpu=device == "cpu", mixed_precision=mixed_precision, **kwargs)


def _reset_accelerate() -> None:
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
