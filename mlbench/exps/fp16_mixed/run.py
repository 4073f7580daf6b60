"""fp16-mixed: six arms x seeds trained together on digits, with a gradient census on the way."""

from __future__ import annotations

import math

import torch

from mlbench.data import digits
from mlbench.exps.fp16_mixed import SCALES, arm_specs
from mlbench.exps.fp16_mixed import lm
from mlbench.exps.fp16_mixed.census import before_update, census
from mlbench.exps.fp16_mixed.loss_scaling import LossScaler, scaled_backward
from mlbench.exps.fp16_mixed.master_weights import sgd_step
from mlbench.exps.fp16_mixed.precision import Storage, evaluate, init_params
from mlbench.exps.fp16_mixed.report import report


def recipes(specs: dict, grid):
    """Per arm: where its tensors are stored (weights, activations, gradients), where its update is
    computed (fp32 with a master copy, else its storage format), and its loss-scaling kind."""
    return (Storage(grid, {a: s[0] for a, s in specs.items()}),
            Storage(grid, {a: None if s[1] else s[0] for a, s in specs.items()}), {a: s[2] for a, s in specs.items()})


def watch_losses(ctx, grid, step: int, losses: list) -> list[float]:
    """The batch losses (M,) of the steps since the last evaluation, moved to the host at once: a
    NaN/inf loss marks that member diverged at that step. Returns their mean per member."""
    if not losses:
        return [math.nan] * len(grid)
    window = torch.stack(losses)  # (steps since, M)
    for i, row in enumerate(window.tolist()):
        ctx.watch(grid, step - len(losses) + i + 1, batch_loss=row)
    return window.mean(0).tolist()


def save_models(ctx, grid, specs: dict, params: dict) -> None:
    """One checkpoint per member, in the format its update keeps: fp32 masters, else the storage format."""
    def meta(m: int) -> dict:
        arm = grid.arm_of(m)
        return {"arm": arm, "seed_index": str(grid.seed_of(m)), "storage": str(specs[arm][0]), "master": str(specs[arm][1])}

    dtypes = {a: torch.float32 if s[1] else getattr(torch, s[0]) for a, s in specs.items()}
    ctx.save_models(grid, params, metadata=meta,
                    tensors=lambda m, w: {n: p.detach().to(dtypes[grid.arm_of(m)]) for n, p in w.items()})


def train(cfg, ctx) -> dict:
    """Every (arm, seed) model trained together; returns JSON-able measurements, curves, census."""
    specs = arm_specs(cfg)
    grid, dev = ctx.grid(list(specs)), ctx.device
    x_tr, y_tr, x_te, y_te = (t.to(dev) for t in digits.load(ctx.cache_dir))  # (1300, 64), ..., (497, 64)
    storage, updates, scaling = recipes(specs, grid)
    params = init_params(cfg, grid, ctx.generators("init"), updates, dev)
    velocity = {k: torch.zeros_like(p) for k, p in params.items()}
    scaler = LossScaler(grid, scaling, cfg.static_scale, cfg.init_scale, cfg.growth_interval, dev)
    skipped, gens = torch.zeros_like(scaler.scale), ctx.generators("batches")
    curves, censuses, losses = {"step": [], "test_acc": [], "train_loss": [], "scale": []}, {}, []
    for step in ctx.steps(cfg.steps, every=cfg.eval_every, desc=f"train {len(grid.arms)} arms x {len(grid.seeds)} seeds"):
        if step.evaluate:
            acc, test_loss = evaluate(params, x_te, y_te, storage)
            batch_l, scale_l = watch_losses(ctx, grid, step.index, losses), scaler.scale.tolist()
            for key, val in zip(curves, (step.index, acc.tolist(), batch_l, scale_l)):
                curves[key].append(val)
            ctx.log_models(grid, step.index, test_acc=acc, test_loss=test_loss, batch_loss=batch_l,
                           loss_scale=scale_l, skipped_steps=skipped)
            losses.clear()
            if step.last:
                break
        # (M, B): seed k's batch is shared by every arm
        idx = grid.repeat(torch.stack([torch.randint(len(y_tr), (cfg.batch_size,), generator=g) for g in gens])).to(dev)
        hooks = [] if step.index in cfg.census_steps else None
        losses.append(scaled_backward(params, x_tr[idx], y_tr[idx], storage, scaler.scale, hooks))
        before = before_update(grid, params) if hooks is not None else None
        found_inf = sgd_step(params, velocity, scaler.scale, updates, cfg.lr, cfg.momentum)
        if hooks is not None:
            censuses[str(step.index)] = census(cfg, grid, hooks, before, params, velocity, scaler.scale)
        scaler.update(found_inf)
        skipped += found_inf  # both stay on the device: no GPU sync per step
    save_models(ctx, grid, specs, params)
    _, train_loss = evaluate(params, x_tr, y_tr, storage)  # the whole training set: less noisy than batches
    measurements = grid.measurements(
        test_acc=acc, test_loss=test_loss, train_loss=train_loss, skipped_steps=skipped, final_scale=scaler.scale,
        log_train_loss=[math.log(max(v, 1e-30)) for v in train_loss.tolist()])
    per_arm = {key: {arm: t.tolist() for arm, t in grid.by_arm(torch.tensor(curves[key], dtype=torch.float64).T).items()}
               for key in ("test_acc", "train_loss", "scale")}  # {metric: {arm: (S, evaluations)}}
    return {"measurements": measurements, "curves": {"step": curves["step"], **per_arm}, "census": censuses}


def census_measurements(cfg, censuses: dict) -> tuple[dict, list, list]:
    """The last census step as measurements: arms scale-<s> (zeroed share and mass per loss scale,
    and what the scale removes against scale 1), the pure arm's lost updates, the fp32 arm's small ones."""
    last = censuses[str(max(cfg.census_steps))]
    out: dict = {}
    for name in SCALES:
        out[f"scale-{name}"] = {key: [r[f"{kind}@{name}"] for r in last] for key, kind in
                                (("zeroed_frac", "act_zeroed"), ("mass_lost", "act_mass_lost"), ("w_zeroed_frac", "w_zeroed"))}
        for removed, lost in (("removed_frac", "zeroed_frac"), ("removed_mass", "mass_lost")):  # vs scale 1
            out[f"scale-{name}"][removed] = [1.0 - s / u if u > 0 else 0.0 for s, u in
                                             zip(out[f"scale-{name}"][lost], out["scale-1"][lost])]
    return out, [r["pure_lost"] for r in last], [r["below_2^-11"] for r in last]


def run(cfg, ctx) -> dict:
    res = ctx.unit("train", lambda: train(cfg, ctx))
    m = res["measurements"]
    scales, pure_lost, below = census_measurements(cfg, res["census"])
    m.update(scales)
    m["fp16-pure"]["lost_update_frac"] = pure_lost
    m["fp32"]["update_below_2^-11"] = below
    if cfg.amp_benchmark:
        m.update(lm.measure(cfg, ctx))
    report(cfg, ctx, m, res)
    return m
