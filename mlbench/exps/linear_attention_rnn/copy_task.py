"""The copy task (Katharopoulos et al. 2020, §4.1, Fig. 2): a causal Transformer reads L symbols
and a separator, then must repeat the L symbols. Softmax vs linear attention, every arm × seed
as one stacked model (parameters (M, ...), one Adam: elementwise, so M independent optimisers).

Sequence: s_1..s_L, SEP, s_1..s_L (SEP = token 0, symbols 1..V); the model predicts each next
token and is scored on the copied half only (inputs at positions L..2L-1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mlbench.core.plotting import curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.exps.linear_attention_rnn import COPY_ARMS
from mlbench.exps.linear_attention_rnn.attention import linear_chunked, softmax_causal

SEP = 0


def copy_batch(cfg, batch: int, gen):
    """inputs, targets (B, 2L) and the scored-position mask (2L,)."""
    L = cfg.copy_length
    sym = torch.randint(1, cfg.copy_symbols + 1, (batch, L), generator=gen)
    seq = torch.cat([sym, torch.full((batch, 1), SEP), sym], 1)  # (B, 2L+1)
    mask = torch.arange(2 * L) >= L
    return seq[:, :-1], seq[:, 1:], mask


def stacked_batch(cfg, grid, gens, batch: int, device):
    """One batch per seed, shared by both arms (paired): inputs, targets (M, B, 2L), mask (2L,)."""
    parts = [copy_batch(cfg, batch, g) for g in gens]
    inputs, targets = (grid.repeat(torch.stack([p[i] for p in parts])).to(device) for i in range(2))
    return inputs, targets, parts[0][2].to(device)


def init_params(cfg, grid, gens, device) -> dict:
    """Seed k's draw shared by both arms. Projections N(0, 1/fan_in), embeddings N(0, 0.02²)."""
    D, V, T = cfg.copy_width, cfg.copy_symbols + 1, 2 * cfg.copy_length
    shapes = {"emb": (V, D, 0.02), "pos": (T, D, 0.02), "unembed": (D, V, D ** -0.5)}
    for layer in range(cfg.copy_layers):
        shapes |= {f"l{layer}.wqkv": (D, 3 * D, D ** -0.5), f"l{layer}.wo": (D, D, D ** -0.5),
                   f"l{layer}.w1": (D, 4 * D, D ** -0.5), f"l{layer}.w2": (4 * D, D, (4 * D) ** -0.5)}
    per_seed = [{k: torch.randn(a, b, generator=g) * std for k, (a, b, std) in shapes.items()} for g in gens]
    return {k: grid.repeat(torch.stack([p[k] for p in per_seed])).to(device).requires_grad_(True) for k in shapes}


def attend(cfg, grid, x, wqkv, wo):
    """Multi-head causal attention of every stacked model: softmax for one arm, linear for the other."""
    M, B, T, D = x.shape
    H = cfg.copy_heads
    qkv = torch.einsum("mbtd,mde->mbte", x, wqkv).view(M, B, T, 3, H, D // H).permute(3, 0, 1, 4, 2, 5)
    q, k, v = qkv  # each (M, B, H, T, D/H)
    forms = {"softmax-copy": softmax_causal, "linear-copy": lambda q, k, v: linear_chunked(q, k, v, 64, cfg.eps)}
    parts = [forms[arm](qa, ka, va) for arm, qa, ka, va in
             zip(grid.arms, *(grid.by_arm(t).values() for t in (q, k, v)))]
    out = torch.cat(parts).transpose(2, 3).reshape(M, B, T, D)
    return torch.einsum("mbtd,mde->mbte", out, wo)


def forward(cfg, grid, params, inputs):
    """Pre-LayerNorm causal Transformer, logits (M, B, T, V)."""
    M = inputs.shape[0]
    x = params["emb"][torch.arange(M, device=inputs.device)[:, None, None], inputs] + params["pos"][:, None]
    D = x.shape[-1]
    for layer in range(cfg.copy_layers):
        p = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"l{layer}.")}
        x = x + attend(cfg, grid, F.layer_norm(x, (D,)), p["wqkv"], p["wo"])
        h = F.gelu(torch.einsum("mbtd,mde->mbte", F.layer_norm(x, (D,)), p["w1"]))
        x = x + torch.einsum("mbte,med->mbtd", h, p["w2"])
    return torch.einsum("mbtd,mdv->mbtv", F.layer_norm(x, (D,)), params["unembed"])


def losses(cfg, grid, params, batch):
    """Per-model cross-entropy and token accuracy on the copied half: (M,), (M,)."""
    inputs, targets, mask = batch
    logits = forward(cfg, grid, params, inputs)[:, :, mask]  # (M, B, L, V)
    tgt = targets[:, :, mask]
    M = logits.shape[0]
    ce = F.cross_entropy(logits.flatten(0, 2), tgt.flatten(), reduction="none").view(M, -1).mean(1)
    return ce, (logits.argmax(-1) == tgt).float().flatten(1).mean(1)


def train_copy(cfg, ctx) -> dict:
    grid, dev = ctx.grid(COPY_ARMS), ctx.device
    params = init_params(cfg, grid, ctx.generators("copy-init"), dev)
    heldout = stacked_batch(cfg, grid, ctx.generators("copy-heldout"), 256, dev)
    data = ctx.generators("copy-data")
    opt = torch.optim.Adam(list(params.values()), lr=cfg.copy_lr)
    steps, curve, train_loss = [], [], torch.zeros(len(grid))
    for step in ctx.steps(cfg.copy_steps, every=cfg.copy_eval_every, desc=f"copy task ({len(grid)} models)"):
        if step.evaluate:
            with torch.no_grad():
                loss, acc = (t.cpu() for t in losses(cfg, grid, params, heldout))
            steps.append(step.index)
            curve.append(loss.tolist())
            ctx.log_models(grid, step.index, heldout_loss=loss, heldout_acc=acc, train_loss=train_loss)
            if step.last or grid.all_diverged:
                break
        if step.index == (3 * cfg.copy_steps) // 4:  # the paper lowers the learning rate late in training
            for group in opt.param_groups:
                group["lr"] = cfg.copy_lr / 10
        ce, _ = losses(cfg, grid, params, stacked_batch(cfg, grid, data, cfg.copy_batch, dev))
        opt.zero_grad(set_to_none=True)
        ce.sum().backward()  # the models share no parameters: each gets its own gradient
        opt.step()
        train_loss = ce.detach().cpu()
        ctx.watch(grid, step.index + 1, train_loss=train_loss)
    ctx.save_models(grid, params)
    final = curve[-1]
    meas = grid.measurements(final_loss=final, log_loss=[math.log(max(x, 1e-300)) for x in final], final_acc=acc)
    per_arm = grid.by_arm(torch.tensor(curve, dtype=torch.float64).T)
    return {"measurements": meas, "steps": steps, "loss": {a: c.tolist() for a, c in per_arm.items()}}


def report_copy(cfg, ctx, m: dict, copy: dict) -> None:
    rows = [{"arm": a, **mean_ci_cells("final_loss", m[a]["final_loss"], lower=0),
             **mean_ci_cells("final_acc", m[a]["final_acc"], lower=0, upper=1)} for a in COPY_ARMS]
    ctx.table(rows, name="copy", title=f"Copy task, {cfg.copy_layers}-layer causal Transformer (width {cfg.copy_width}, "
              f"{cfg.copy_heads} heads), L={cfg.copy_length} symbols of {cfg.copy_symbols}, {cfg.copy_steps} Adam "
              f"steps: held-out loss and token accuracy on the copied half, mean and 95% CI over seeds")
    fig, ax = figure(1, 1)
    curves(ax[0][0], copy["steps"], copy["loss"], xlabel="training step", ylabel="held-out cross-entropy (nats)",
           title="copy task (thin lines: seeds)")
    ax[0][0].set_yscale("log")
    ctx.plot("copy", fig)
