"""ddpm-vs-sde: the forward chain, one ε-network per seed trained as a stacked ensemble, then every
sampler on the NFE grid and adaptive RK45, all measured against fresh data."""

from __future__ import annotations

import math

import torch

from mlbench.data import toy2d
from mlbench.exps.ddpm_vs_sde import SAMPLERS, marginal_arm
from mlbench.exps.ddpm_vs_sde.metrics import evaluator, quality
from mlbench.exps.ddpm_vs_sde.report import report
from mlbench.exps.ddpm_vs_sde.samplers import rk45, sample
from mlbench.exps.ddpm_vs_sde.score_model import init_params, score_fn, train_step, training_batch
from mlbench.exps.ddpm_vs_sde.sde import chain_max_error, marginal_stats

TRAIN = "train"  # the one trained arm: S ε-networks, one per seed


def checkpoint_name(seed: int) -> str:
    return f"eps-net-seed{seed}"


def load_data(cfg, ctx, stream: str, n: int):
    """(S, n, D): each seed its own draw of `cfg.dataset`, built once with `datasets` and cached."""
    per_seed = [toy2d.load(cfg.dataset, n, ctx.seed(stream, k), ctx.cache_dir) for k in ctx.seeds]
    return torch.stack(per_seed).to(ctx.device)


def train(cfg, ctx, data) -> dict:
    """Simple-loss ε-prediction with Adam and cosine decay, every seed's network at once; one
    checkpoint per seed. data: (S, N, D). Returns the loss record [step, loss per seed]."""
    grid = ctx.grid((TRAIN,))
    init = init_params(cfg, data.shape[-1], ctx.generators("init"))
    params = {k: v.to(ctx.device).requires_grad_(True) for k, v in init.items()}
    steps = 0 if cfg.negative_control else cfg.train_steps
    opt = torch.optim.Adam(params.values(), lr=cfg.lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)  # lr·½(1 + cos(π step/steps))
    gens = ctx.generators("train-batches")
    losses = []
    for step in ctx.steps(steps, every=100, desc=f"train {len(grid)} ε-networks"):
        if step.last:
            break
        loss = train_step(params, opt, cfg, training_batch(cfg, data, gens))  # (S,)
        decay.step()
        ctx.watch(grid, step.index, loss=loss)  # NaN/inf: logged as diverged; its samples become NaN
        if step.evaluate or step.index == steps - 1:  # the last trained step's loss too
            losses.append([step.index, *loss.tolist()])
            ctx.log_models(grid, step.index, loss=losses[-1][1:])
    ctx.save_models(grid, params, name=lambda m: checkpoint_name(grid.seed_of(m)),
                    metadata=lambda m: {"seed_index": str(grid.seed_of(m)), "dataset": cfg.dataset})
    return {"losses": losses}


def load_params(ctx) -> dict:
    """The trained ensemble back from its safetensors checkpoints (also when `train` was resumed)."""
    per_seed = [ctx.load_checkpoint(checkpoint_name(k)) for k in ctx.seeds]
    return {n: torch.stack([p[n] for p in per_seed]).to(ctx.device) for n in per_seed[0]}  # (S, ...)


def sample_at(nfe: int, cfg, ctx, params, x_T, ev: dict, keep: int) -> dict:
    """Every sampler at one NFE budget: quality per sampler and seed (logged, and as measurements)
    and `keep` points of seed 0 per sampler for the scatter. Ancestral, EM and the PC predictor
    with the same number of steps share their noise (common random numbers)."""
    grid = ctx.grid(cfg.samplers, nfe=nfe)
    steps = {name: nfe // SAMPLERS[name] for name in grid.arms}
    score, qual, points = score_fn(params, cfg), {}, {}
    for name, k in steps.items():
        with torch.no_grad():
            x = sample(name, score, x_T, k, cfg, ctx.generators(f"noise-K{k}"), ctx.generators(f"corrector-K{k}"))
        qual[name], points[grid.key(name)] = quality(cfg, x, ev), x[0, :keep].tolist()
    per_model = {q: grid.build(lambda arm, q=q: qual[arm][q]) for q in qual[grid.arms[0]]}  # (M,) each
    ctx.log_models(grid, steps=grid.per_arm(steps), **per_model)
    return {"measurements": grid.measurements(**per_model), "points": points}


def marginal_measurements(cfg, marg: list) -> dict:
    """Closed-form errors (deterministic: one value repeated per seed) and the chain's worst deviation."""
    S = len(marg)
    out = {marginal_arm(n): {"max_abs_err": [e] * S, "log10_max_err": [math.log10(e)] * S}
           for n, e in zip(cfg.marginal_steps, marg[0]["max_abs_err"])}
    out["ddpm-chain"] = {"mc_max_err": [chain_max_error(cfg, r) for r in marg]}
    return out


def per_seed(quality_tensors: dict) -> dict:
    return {k: v.tolist() for k, v in quality_tensors.items()}


def run(cfg, ctx) -> dict:
    train_data = load_data(cfg, ctx, "train-data", cfg.n_train)
    fresh = load_data(cfg, ctx, "floor-data", cfg.floor_draws * cfg.n_eval).unflatten(1, (cfg.floor_draws, cfg.n_eval))
    ev = evaluator(cfg, ctx.generators("metric"), load_data(cfg, ctx, "reference-data", cfg.n_reference), fresh)
    marg = ctx.unit("marginals", lambda: [marginal_stats(cfg, x[:cfg.n_mc].cpu(), g)
                                          for x, g in zip(train_data, ctx.generators("chain"))])
    losses = ctx.unit("train", lambda: train(cfg, ctx, train_data))["losses"]
    params = load_params(ctx)
    x_T = torch.stack([torch.randn(cfg.n_eval, train_data.shape[-1], generator=g)
                       for g in ctx.generators("prior")]).to(ctx.device)  # (S, n, D): the same x_T for every sampler
    keep = min(cfg.n_eval, 600)
    m = {"data-floor": {**per_seed(quality(cfg, fresh[:, 0], ev)), "mmd": ev["floor"].tolist(),
                        "mmd_over_floor": [1.0] * len(ctx.seeds)}}
    points = {"data": fresh[0, 0, :keep].tolist()}
    for nfe in ctx.track(sorted(cfg.nfe_grid), "sample (NFE grid)"):
        res = ctx.unit(f"sample-nfe{nfe}", lambda nfe=nfe: sample_at(nfe, cfg, ctx, params, x_T, ev, keep))
        m.update(res["measurements"])
        points.update(res["points"])

    def adaptive():
        x, nfe = rk45(params, x_T, cfg)
        return {**per_seed(quality(cfg, x, ev)), "nfe": nfe, "points": x[0, :keep].tolist()}

    m["ode-rk45"] = ctx.unit("rk45", adaptive)
    points["ode-rk45"] = m["ode-rk45"].pop("points")
    m.update(marginal_measurements(cfg, marg))
    report(cfg, ctx, m, marg, points, losses)
    return m
