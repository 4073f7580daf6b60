"""autoregressive-digits: independent pixels in closed form, then each family trained stacked.

Every family (FVSBN over its L2 arms, NADE per H, MADE per depth over its mask counts) is one
resumable unit: arms × seeds train together as one batched model with one Adam (elementwise,
so it equals separate training), evaluated on validation after every epoch (epoch 0 included);
each member keeps its best-validation weights, which are then measured and saved.
"""

from __future__ import annotations

import math

import torch

from mlbench.exps.autoregressive_digits import fvsbn_arm
from mlbench.exps.autoregressive_digits.binary_digits import binarise, intensities, splits
from mlbench.exps.autoregressive_digits.families import Family, build_fvsbn, build_made, build_nade
from mlbench.exps.autoregressive_digits.likelihood import (ancestral_sample, jacobian, log_odds, nll,
                                                           smoothed_marginals, used_context, violations)
from mlbench.exps.autoregressive_digits.report import report


def load_data(cfg, ctx) -> dict[str, torch.Tensor]:
    images = binarise(intensities(ctx.cache_dir, cfg.image_size), cfg.threshold)
    data = splits(images, ctx.generators("split"), cfg.train_size, cfg.val_size, cfg.negative_control)
    return {k: v.to(ctx.device) for k, v in data.items()}  # each (S, N, D)


def minibatches(train: torch.Tensor, gens: list[torch.Generator], batch_size: int):
    """One epoch: each seed's images in its own random order, (S, B, D) at a time."""
    s, n, d = train.shape
    order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(train.device)  # (S, N)
    for i in range(0, n, batch_size):
        idx = order[:, i:i + batch_size, None].expand(-1, -1, d)
        yield torch.gather(train, 1, idx)


EVAL_CHUNK = 300  # images per evaluation pass: NADE's (M, B, D, H) activations stay bounded


@torch.no_grad()
def mean_nll(fam: Family, params, x: torch.Tensor, score=None) -> torch.Tensor:
    """(M,) mean NLL per image of each member on its seed's images x (S, N, D); `score`
    (default: the exact NLL) may be another per-image score."""
    score = score or fam.eval_nll
    parts = [score(params, fam.grid.repeat(x[:, i:i + EVAL_CHUNK])) for i in range(0, x.shape[1], EVAL_CHUNK)]
    return torch.cat(parts, 1).mean(1)


def fit(cfg, ctx, fam: Family, data) -> dict:
    """Adam on the summed per-member mean NLL (+ λ·penalty); keeps each member's best-validation
    weights. Stops at the epoch budget, or once no member improved for `patience` epochs."""
    grid, params = fam.grid, {k: v.requires_grad_(True) for k, v in fam.params.items()}
    opt = torch.optim.Adam(list(params.values()), lr=fam.lr)
    best = {k: v.detach().clone() for k, v in params.items()}
    best_val = torch.full((len(grid),), math.inf, device=ctx.device)
    best_epoch = torch.zeros(len(grid), dtype=torch.long, device=ctx.device)
    gens, curve, minibatch, train_loss = ctx.generators("minibatches"), [], 0, torch.zeros(len(grid))
    for step in ctx.steps(fam.epochs, every=1, desc=f"train {fam.name} ({len(grid)} models)"):
        val = mean_nll(fam, params, data["val"])  # (M,)
        better = val < best_val
        best_val, best_epoch = torch.where(better, val, best_val), torch.where(better, step.index, best_epoch)
        for k, p in params.items():
            best[k] = torch.where(better.view(-1, *[1] * (p.dim() - 1)), p.detach(), best[k])
        curve.append(val.tolist())
        ctx.log_models(grid, step.index, val_nll=val, **({"train_nll": train_loss} if step.index else {}))
        if step.last or (cfg.patience and int((step.index - best_epoch).min()) >= cfg.patience):
            break
        for xb in minibatches(data["train"], gens, cfg.batch_size):
            per_member = nll(fam.train_logits(params, grid.repeat(xb), minibatch), grid.repeat(xb)).mean(1)  # (M,)
            loss = per_member + (fam.penalty(params) if fam.penalty else 0.0)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
            minibatch += 1
        train_loss = per_member.detach().cpu()
        ctx.watch(grid, step.index + 1, train_nll=train_loss)
    return {"best": best, "best_epoch": best_epoch, "epochs_run": len(curve) - 1, "curve": curve}


def autoregressive_check(fam: Family, params, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
    """Jacobian ∂logit/∂x of every component at each point (P, M, D): per member, the entries
    that must be 0 but are not, the context entries that are nonzero, and component 0's
    nonzero pattern at any point (M, D, D), for the figure."""
    bad = torch.zeros(len(fam.grid), dtype=torch.long, device=points.device)
    used = torch.zeros_like(bad)
    pattern = torch.zeros(len(fam.grid), points.shape[-1], points.shape[-1], dtype=torch.bool, device=points.device)
    for k, comp in enumerate(fam.components(params)):
        for x in points:
            jac = jacobian(comp.logits, x)
            bad += torch.where(comp.active, violations(jac, comp.degrees), 0)
            used += torch.where(comp.active, used_context(jac, comp.degrees), 0)
            if k == 0:
                pattern |= jac != 0
    return bad, used, pattern.to(torch.uint8)


@torch.no_grad()
def draw_samples(fam: Family, params, u: torch.Tensor) -> torch.Tensor:
    """u (M, n, D): sample i of a member with K masks comes from its component i mod K."""
    comps = fam.components(params)
    out = torch.zeros_like(u)
    pick = torch.arange(u.shape[1], device=u.device)[None, :]  # (1, n)
    counts = fam.counts if fam.counts is not None else torch.ones(len(fam.grid), dtype=torch.long, device=u.device)
    for k, comp in enumerate(comps):
        take = (pick % counts[:, None] == k)[..., None]  # (M, n, 1)
        out = torch.where(take, ancestral_sample(comp.logits, comp.degrees, u), out)
    return out


def train_family(cfg, ctx, data, fam: Family) -> dict:
    """Fit, then measure the best-validation weights: JSON-able, for one resumable unit."""
    fitted = fit(cfg, ctx, fam, data)
    best, grid = fitted["best"], fam.grid
    points = torch.stack([data["test"][:, 0], torch.stack([torch.rand(data["test"].shape[-1], generator=g)
                                                             for g in ctx.generators("jacobian")]).to(ctx.device)])
    bad, used, pattern = autoregressive_check(fam, best, grid.repeat(points.transpose(0, 1)).transpose(0, 1))
    u = grid.repeat(torch.stack([torch.rand(cfg.samples, data["test"].shape[-1], generator=g)
                                 for g in ctx.generators("samples")]).to(ctx.device))
    samples = draw_samples(fam, best, u)
    extra = {}
    if fam.counts is not None:  # several masks: the invalid logit average, shown beside the mixture
        extra["test_nll_logit_average"] = mean_nll(fam, best, data["test"], fam.logit_average_nll)
    measurements = grid.measurements(
        test_nll=mean_nll(fam, best, data["test"]), val_nll=mean_nll(fam, best, data["val"]),
        train_nll=mean_nll(fam, best, data["train"]), **extra, best_epoch=fitted["best_epoch"].float(),
        epochs_run=[float(fitted["epochs_run"])] * len(grid),
        jacobian_violations=bad.float(), jacobian_context_nonzero=used.float())
    ctx.save_models(grid, {**best, **{k: v for k, v in fam.buffers.items()}})
    first = [m for m, _, seed in grid.members() if seed == grid.seeds[0]]
    curves = grid.by_arm(torch.tensor(fitted["curve"]).T.contiguous())  # {arm: (S, epochs + 1)}
    return {"measurements": measurements, "curves": {grid.key(a): c.tolist() for a, c in curves.items()},
            "samples": {grid.key(grid.arm_of(m)): samples[m].cpu().tolist() for m in first},
            "jacobian": {grid.key(grid.arm_of(m)): pattern[m].cpu().tolist() for m in first}}


def independent_unit(cfg, ctx, data) -> dict:
    """The closed-form independent-pixel model: its NLLs and samples, its p_d as a checkpoint."""
    p = smoothed_marginals(data["train"])  # (S, D)
    grid = ctx.grid(["independent"])
    logits = log_odds(p)[:, None, :]
    score = {name: nll(logits, data[name]).mean(1) for name in ("train", "val", "test")}
    u = torch.stack([torch.rand(cfg.samples, p.shape[1], generator=g) for g in ctx.generators("samples")]).to(p.device)
    ctx.save_models(grid, {"p": p})
    return {"measurements": grid.measurements(test_nll=score["test"], val_nll=score["val"], train_nll=score["train"]),
            "samples": {"independent": (u[0] < p[0]).float().cpu().tolist()}}


def select_fvsbn(cfg, m: dict) -> dict:
    """Per seed, the λ arm with the lowest validation NLL: its measurements, and the λ chosen."""
    keys = [fvsbn_arm(v) for v in cfg.fvsbn_l2]
    n = len(m[keys[0]]["val_nll"])
    chosen = [min(range(len(keys)), key=lambda a: (m[keys[a]]["val_nll"][s], a)) for s in range(n)]
    out = {metric: [m[keys[a]][metric][s] for s, a in enumerate(chosen)] for metric in m[keys[0]]}
    return {**out, "l2": [cfg.fvsbn_l2[a] for a in chosen]}


def run(cfg, ctx) -> dict:
    data = load_data(cfg, ctx)
    bias = log_odds(smoothed_marginals(data["train"])) if cfg.bias_init else torch.zeros_like(data["train"][:, 0])
    builders = {"fvsbn": lambda: build_fvsbn(cfg, ctx, bias),
                **{f"nade-H{h}": (lambda h=h: build_nade(cfg, ctx, bias, h)) for h in cfg.nade_hidden},
                **{f"made-L{l}": (lambda l=l: build_made(cfg, ctx, bias, l)) for l in cfg.made_layers}}
    units = {"independent": lambda: independent_unit(cfg, ctx, data),
             **{name: (lambda b=b: train_family(cfg, ctx, data, b())) for name, b in builders.items()}}
    results = ctx.map_units(units)
    measurements = {k: v for r in results.values() for k, v in r["measurements"].items()}
    measurements["fvsbn"] = select_fvsbn(cfg, measurements)
    report(cfg, ctx, measurements, results, data)
    return measurements
