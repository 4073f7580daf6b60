"""attn-scaling: train_head_dim through ctx vs a bare loop over attention.train_step."""

from __future__ import annotations

import dataclasses
import tempfile

from benchmarks.loops import context, row


def run(repeats: int) -> dict:
    import torch

    from mlbench.exps import attn_scaling as face
    from mlbench.exps.attn_scaling import attention
    from mlbench.exps.attn_scaling.run import train_head_dim

    # threshold above 1: no early stop, so both loops do exactly `steps` steps
    cfg = dataclasses.replace(face.Config(), steps=150, threshold=1.01)
    d, seeds = 64, 4

    def ours():
        with tempfile.TemporaryDirectory() as tmp:
            train_head_dim(cfg, context(tmp, "attn-scaling", seeds), d)

    def minimal():
        ctx = context("/nonexistent", "attn-scaling", seeds)  # seeds and generators only: writes nothing
        grid = ctx.grid(face.ARMS, d=d)
        params = {k: v.requires_grad_(True) for k, v in attention.init_params(cfg, d, grid, ctx.generators(f"init-d{d}")).items()}
        scale = attention.logit_scales(cfg, grid, d, "cpu")
        heldout = attention.recall_batches(cfg, grid, ctx.generators("heldout"), cfg.eval_size, "cpu")
        gens = ctx.generators(f"data-d{d}")
        opt = torch.optim.Adam(params.values(), lr=cfg.lr)
        for step in range(cfg.steps + 1):
            if step % cfg.eval_every == 0 or step == cfg.steps:
                with torch.no_grad():
                    logits, _ = attention.forward(params, heldout[0], heldout[1], scale)
                    (logits.argmax(-1) == heldout[2]).float().mean(1).tolist()
                if step == cfg.steps:
                    break
            attention.train_step(params, opt, attention.recall_batches(cfg, grid, gens, cfg.batch_size, "cpu"), scale)

    return row("attn-scaling", f"train_head_dim d={d}, {seeds} seeds x 3 arms, {cfg.steps} steps", ours, minimal, repeats)
