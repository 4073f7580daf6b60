"""64 small MLPs (40-256-256-10), 50 SGD steps: one after another vs one vmapped ensemble."""

from __future__ import annotations

import torch

from benchmarks.common import alternate
from benchmarks.vmap_ensemble import mlp, train_sequential, train_vmapped


def run(device: str = "cpu", models: int = 64, steps: int = 50, repeats: int = 3) -> list[dict]:
    torch.manual_seed(0)
    nets = [mlp((40, 256, 256, 10)).to(device) for _ in range(models)]
    xs = torch.randn(models, 128, 40, device=device)
    ys = torch.randint(10, (models, 128), device=device)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def sequential():
        train_sequential([n for n in nets], xs, ys, steps, 0.01)
        sync()

    def batched():
        train_vmapped(nets, xs, ys, steps, 0.01)
        sync()

    t_seq, t_vmap = alternate([sequential, batched], repeats)
    return [{"device": device, "models": models, "steps": steps, "sequential_s": t_seq, "vmapped_s": t_vmap,
             "speedup": t_seq / t_vmap, "goal": ">= 10x on a GPU"}]
