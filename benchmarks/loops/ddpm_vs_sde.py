"""ddpm-vs-sde: the training unit through ctx vs a bare loop over score_model.train_step."""

from __future__ import annotations

import math
import tempfile

from benchmarks.loops import context, row


def run(repeats: int) -> dict:
    import torch

    from mlbench.exps import ddpm_vs_sde as face
    from mlbench.exps.ddpm_vs_sde.run import load_data, train
    from mlbench.exps.ddpm_vs_sde.score_model import init_params, train_step, training_batch

    cfg, seeds = face.Config(), 4  # the quick profile's training unit: 2500 Adam steps, 4 seeds
    ctx = context("/nonexistent", "ddpm-vs-sde", seeds)  # seeds, generators, the data cache: writes nothing
    data = load_data(cfg, ctx, "train-data", cfg.n_train)  # (S, N, 2): built once, outside both timings

    def ours():
        with tempfile.TemporaryDirectory() as tmp:
            train(cfg, context(tmp, "ddpm-vs-sde", seeds), data)

    def minimal():  # without the loss record, divergence watch, ctx.log, progress or checkpoints
        params = {k: v.requires_grad_(True) for k, v in init_params(cfg, data.shape[-1], ctx.generators("init")).items()}
        moments = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in params.items()}
        gens = ctx.generators("train-batches")
        for step in range(cfg.train_steps):
            lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.train_steps))
            train_step(params, moments, cfg, training_batch(cfg, data, gens), step, lr)
        return params

    threads = torch.get_num_threads()  # the runner pins the experiment's THREADS; so do both loops here
    torch.set_num_threads(face.THREADS)
    try:
        return row("ddpm-vs-sde", f"train: {seeds} seeds stacked, {cfg.train_steps} steps, B={cfg.batch_size}, "
                   f"{face.THREADS} thread", ours, minimal, repeats)
    finally:
        torch.set_num_threads(threads)
