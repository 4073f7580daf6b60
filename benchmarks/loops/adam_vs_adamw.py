"""adam-vs-adamw: train_grid through ctx vs a bare loop over mlp.train_step (same grid, same data)."""

from __future__ import annotations

import tempfile

from benchmarks.loops import context, row


def run(repeats: int) -> dict:
    import torch

    from mlbench.exps import adam_vs_adamw as face
    from mlbench.exps.adam_vs_adamw import mlp
    from mlbench.exps.adam_vs_adamw.optimisers import grid_hypers, schedule
    from mlbench.exps.adam_vs_adamw.run import train_grid

    cfg, seeds = face.Config(), 4  # the quick profile's grid: 3 optimisers x 4 lr x 4 wd x 4 seeds, 600 steps
    ctx = context("/nonexistent", "adam-vs-adamw", seeds)  # seeds, generators, the data cache: writes nothing
    data = mlp.load_data(cfg, ctx)  # built once, outside both timings
    weights = {}

    def ours():
        with tempfile.TemporaryDirectory() as tmp:
            weights["ours"] = train_grid(cfg, context(tmp, "adam-vs-adamw", seeds), data, face.cell_grid(cfg, ctx.seeds))[0]

    def minimal():  # the same steps and evaluations, without ctx.steps, ctx.log_models or the loss record
        grid = face.cell_grid(cfg, ctx.seeds)
        flat = mlp.init_params(cfg, grid, ctx.generators("init"), "cpu")
        moments = torch.zeros_like(flat), torch.zeros_like(flat)
        hyp, mask, gens = grid_hypers(cfg, grid, "cpu"), mlp.decay_mask(cfg, "cpu"), ctx.generators("batches")
        for step in range(cfg.steps):
            if step % cfg.eval_every == 0:
                mlp.evaluate(flat, data, cfg)
            idx = mlp.sample_batch(grid, gens, data, cfg.batch_size)
            mlp.train_step(flat, moments, idx, data, hyp, mask, schedule(step, cfg.steps, cfg.restarts), step + 1, cfg)
        mlp.evaluate(flat, data, cfg)
        weights["minimal"] = flat.detach()

    out = row("adam-vs-adamw", f"train_grid: {len(face.cells(cfg))} cells x {seeds} seeds = "
              f"{len(face.cells(cfg)) * seeds} MLPs stacked, {cfg.steps} steps", ours, minimal, repeats)
    a, b = weights["ours"], weights["minimal"]
    out["same_weights"] = bool(((a == b) | (a.isnan() & b.isnan())).all())  # bit for bit; a diverged cell is NaN in both
    return out
