"""The digits split, the 64-h-h-10 BatchNorm MLP as M stacked models in one flat tensor, its
evaluation, and one training step of every model."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mlbench.data import digits
from mlbench.exps.adam_vs_adamw.optimisers import adam_step


def load_data(cfg, ctx) -> dict:
    """Digits standardised with the training mean and std. x_train (K shifts, N, 64); eval = val + test."""
    x_pool, y_pool, x_test, y_test = digits.load(ctx.cache_dir)  # (1300, 64), (1300,), (497, 64), (497,)
    x_train = x_pool[: cfg.train_size]
    mu, sd = x_train.mean(0), x_train.std()
    shifts = [(0, 0)] + [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if cfg.augment and (dy or dx)]
    img = F.pad(x_train.view(-1, 8, 8), (1, 1, 1, 1))  # shifted-in pixels are blank
    x_shifted = torch.stack([img[:, 1 + dy:9 + dy, 1 + dx:9 + dx].reshape(-1, 64) for dy, dx in shifts])
    x_eval = torch.cat([x_pool[-cfg.val_size:], x_test])  # (V + T, 64)
    return {"x_train": ((x_shifted - mu) / sd).to(ctx.device), "y_train": y_pool[: cfg.train_size].to(ctx.device),
            "x_eval": ((x_eval - mu) / sd).to(ctx.device),
            "y_eval": torch.cat([y_pool[-cfg.val_size:], y_test]).to(ctx.device)}


def shapes(h: int) -> dict[str, tuple[int, int]]:
    return {"w1": (64, h), "b1": (1, h), "w2": (h, h), "b2": (1, h), "w3": (h, 10), "b3": (1, 10)}


def unflatten(flat, h: int) -> dict:
    """(M, P) -> named views (M, fan_in, fan_out). One flat tensor keeps the optimiser at ~15 ops a
    step; `split` (not slicing) makes the backward one concatenation."""
    sizes = shapes(h)
    parts = flat.split([a * b for a, b in sizes.values()], dim=1)
    return {name: part.view(-1, a, b) for (name, (a, b)), part in zip(sizes.items(), parts)}


def init_params(cfg, grid, gens: list, device):
    """He-normal weights, zero biases; one draw per seed, shared by every cell: (M, P)."""
    per_seed = torch.stack([torch.cat([(torch.randn(a, b, generator=g) * math.sqrt(2 / a)).flatten()
                                       if n[0] == "w" else torch.zeros(b) for n, (a, b) in shapes(cfg.hidden).items()])
                            for g in gens])  # (S, P)
    return grid.repeat(per_seed).to(device).requires_grad_(True)


def decay_mask(cfg, device):
    """(P,) 1 for decayed weights; biases are 0 unless decay_biases."""
    return torch.cat([torch.full((a * b,), float(cfg.decay_biases or n[0] == "w"))
                      for n, (a, b) in shapes(cfg.hidden).items()]).to(device)


def forward(p: dict, x, batch_norm: bool = False, stats: list | None = None):
    """x (M, B, 64) -> logits (M, B, 10) for M stacked MLPs. BatchNorm uses the batch's statistics,
    or those in `stats` (an empty list is filled from this x: the population pass)."""
    h = x
    for layer in (1, 2):
        h = h @ p[f"w{layer}"] + p[f"b{layer}"]  # (M, B, h)
        h = (_batch_norm(h, stats, layer - 1) if batch_norm else h).relu()
    return h @ p["w3"] + p["b3"]


def _batch_norm(h, stats: list | None, layer: int):
    if stats is None:  # training: the fused kernel on a (B, M·h) view, 3x faster than by hand
        M, B, H = h.shape
        out = F.batch_norm(h.transpose(0, 1).reshape(B, M * H), None, None, training=True, eps=1e-5)
        return out.view(B, M, H).transpose(0, 1)
    if len(stats) == layer:
        stats.append((h.mean(1, keepdim=True), h.var(1, unbiased=False, keepdim=True)))
    mu, var = stats[layer]
    return (h - mu) / (var + 1e-5).sqrt()


def evaluate(flat, data: dict, cfg) -> dict:
    """Per-model val error, val loss, test error (errors in %), each (M,); BatchNorm statistics from
    the whole unshifted training set. A model with non-finite logits gets every image wrong."""
    V, M = cfg.val_size, flat.shape[0]
    params = unflatten(flat, cfg.hidden)
    with torch.no_grad():
        stats: list = []
        forward(params, data["x_train"][0].expand(M, -1, -1), cfg.batch_norm, stats)
        logits = forward(params, data["x_eval"].expand(M, -1, -1), cfg.batch_norm, stats)  # (M, V+T, 10)
        wrong = (logits.argmax(-1) != data["y_eval"]).float() * 100  # (M, V+T)
        wrong = torch.where(torch.isfinite(logits).all(-1), wrong, torch.full_like(wrong, 100.0))
        loss = F.cross_entropy(logits[:, :V].transpose(1, 2), data["y_eval"][:V].expand(M, -1), reduction="none")
    return {"val_err": wrong[:, :V].mean(1).cpu(), "test_err": wrong[:, V:].mean(1).cpu(),
            "val_loss": loss.mean(1).nan_to_num(math.inf).cpu()}


def sample_batch(grid, gens: list, data: dict, batch_size: int):
    """Indices (M, B) into the (shifts × training digits) pool: seed k's draw, shared by every cell."""
    pool = data["x_train"].shape[0] * data["x_train"].shape[1]
    idx = torch.stack([torch.randint(pool, (batch_size,), generator=g) for g in gens])  # (S, B)
    return grid.repeat(idx.to(data["x_train"].device))


def train_step(flat, moments: tuple, idx, data: dict, hyp: dict, mask, eta: float, t: int, cfg):
    """One step of every stacked model on its batch `idx` (M, B): per-model loss (M,) on the device."""
    x = data["x_train"].flatten(0, 1)[idx]  # (M, B, 64)
    logits = forward(unflatten(flat, cfg.hidden), x, cfg.batch_norm)  # (M, B, 10)
    y = data["y_train"][idx % cfg.train_size]
    per_model = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)  # (M,)
    grad, = torch.autograd.grad(per_model.sum(), flat)  # models share nothing: per-model gradients
    with torch.no_grad():
        adam_step(flat, grad, *moments, t, eta * hyp["alpha"], hyp["l2"], eta * hyp["decay"], cfg, mask)
    return per_model.detach()
