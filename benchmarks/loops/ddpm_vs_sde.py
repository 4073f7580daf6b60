"""ddpm-vs-sde: the training unit through ctx vs a bare loop over score_model.train_step."""

from __future__ import annotations

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
        init = init_params(cfg, data.shape[-1], ctx.generators("init"))
        params = {k: v.requires_grad_(True) for k, v in init.items()}
        opt = torch.optim.Adam(params.values(), lr=cfg.lr)
        decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.train_steps)
        gens = ctx.generators("train-batches")
        for _ in range(cfg.train_steps):
            train_step(params, opt, cfg, training_batch(cfg, data, gens))
            decay.step()
        return params

    threads = torch.get_num_threads()  # the runner pins the experiment's THREADS; so do both loops here
    torch.set_num_threads(face.THREADS)
    try:
        return row("ddpm-vs-sde", f"train: {seeds} seeds stacked, {cfg.train_steps} steps, B={cfg.batch_size}, "
                   f"{face.THREADS} thread", ours, minimal, repeats)
    finally:
        torch.set_num_threads(threads)
