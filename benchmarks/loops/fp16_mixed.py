"""fp16-mixed: run.train through ctx vs a bare loop over the experiment's own step functions
(scaled_backward, sgd_step, LossScaler.update), with the same evaluations and census steps."""

from __future__ import annotations

import tempfile

from benchmarks.loops import context, row


def run(repeats: int) -> dict:
    import torch

    from mlbench.data import digits
    from mlbench.exps import fp16_mixed as face
    from mlbench.exps.fp16_mixed.census import before_update, census
    from mlbench.exps.fp16_mixed.loss_scaling import LossScaler, scaled_backward
    from mlbench.exps.fp16_mixed.master_weights import sgd_step
    from mlbench.exps.fp16_mixed.precision import evaluate, init_params
    from mlbench.exps.fp16_mixed.run import recipes, train

    cfg, seeds = face.Config(), 5  # the quick profile's training unit: 6 arms x 5 seeds, 600 steps

    def ours():
        with tempfile.TemporaryDirectory() as tmp:
            train(cfg, context(tmp, "fp16-mixed", seeds))

    def minimal():  # no logging, curves, divergence watch, skipped-step counts or checkpoints
        ctx = context("/nonexistent", "fp16-mixed", seeds)  # seeds, generators, the data cache: writes nothing
        grid = ctx.grid(list(face.arm_specs(cfg)))
        x_tr, y_tr, x_te, y_te = digits.load(ctx.cache_dir)  # ours loads inside train, so this does too
        storage, updates, scaling = recipes(face.arm_specs(cfg), grid)
        params = init_params(cfg, grid, ctx.generators("init"), updates, "cpu")
        velocity = {k: torch.zeros_like(p) for k, p in params.items()}
        scaler = LossScaler(grid, scaling, cfg.static_scale, cfg.init_scale, cfg.growth_interval, "cpu")
        gens = ctx.generators("batches")
        for step in range(cfg.steps):
            if step % cfg.eval_every == 0:
                evaluate(params, x_te, y_te, storage)
            idx = grid.repeat(torch.stack([torch.randint(len(y_tr), (cfg.batch_size,), generator=g) for g in gens]))
            hooks = [] if step in cfg.census_steps else None
            scaled_backward(params, x_tr[idx], y_tr[idx], storage, scaler.scale, hooks)
            before = before_update(grid, params) if hooks is not None else None
            found_inf = sgd_step(params, velocity, scaler.scale, updates, cfg.lr, cfg.momentum)
            if hooks is not None:
                census(cfg, grid, hooks, before, params, velocity, scaler.scale)
            scaler.update(found_inf)
        evaluate(params, x_te, y_te, storage)
        evaluate(params, x_tr, y_tr, storage)  # ours' final training loss on the whole set

    return row("fp16-mixed", f"train: {len(face.ARMS)} arms x {seeds} seeds stacked, {cfg.steps} steps; "
               f"census at steps {list(cfg.census_steps)} in both", ours, minimal, repeats)
