"""rectified-flow: three objectives × seeds trained as one stacked model, reflow of the uniform-t
flow (on its own pairs and on shuffled ones) as a second stacked model, then every sampler scored."""

from __future__ import annotations

import functools

import torch

from mlbench.core.grid import arm_key
from mlbench.data import toy2d
from mlbench.exps.rectified_flow import FLOOR, FLOWS, OBJECTIVES, REFLOWS, SAMPLERS, reference_nfe
from mlbench.exps.rectified_flow.flow import (euler, interpolate, logit_normal_t, reflow_pairs, shuffle_pairs,
                                              straightness, uniform_t)
from mlbench.exps.rectified_flow.report import report
from mlbench.exps.rectified_flow.sliced import directions, sorted_projections, sw1
from mlbench.exps.rectified_flow.velocity_net import Adam, cosine_lr, forward, init_params, train_step
from mlbench.exps.rectified_flow.vp import ddim, perturb, pf_ode_euler, vp_t

MODEL_OF = {"vp-euler": "vp-eps", "vp-ddim": "vp-eps"}  # samplers of the VP ε-model; others sample themselves
PLOT_POINTS, PLOT_PATHS = 500, 48  # seed 0's samples and trajectories kept for the figures


def data(cfg, ctx, stream: str, n: int):
    """(S, n, 2): each seed its own draw of the target, built once with `datasets` and cached."""
    return torch.stack([toy2d.load(cfg.dataset, n, ctx.seed(stream, k), ctx.cache_dir) for k in ctx.seeds]).to(ctx.device)


def per_seed(gens: list, draw, device):
    return torch.stack([draw(g) for g in gens]).to(device)


def objective_batch(cfg, arm: str, x0, eps, u):
    """(x_t, t, target) of one objective for per-seed x₀, ε (S, B, 2) and u ~ U(0, 1) (S, B)."""
    if arm == "vp-eps":
        t = vp_t(u, cfg.t_min)
        x_t, target = perturb(x0, eps, t, cfg.beta_min, cfg.beta_max)
        return x_t, t, target
    t = uniform_t(u) if arm == "rf-uniform" else logit_normal_t(u, cfg.logit_mean, cfg.logit_std)
    x_t, target = interpolate(x0, eps, t)
    return x_t, t, target


def fit(cfg, ctx, grid, params: dict, batch, steps: int, lr: float, desc: str) -> dict:
    """Adam with cosine decay on every stacked model; `batch()` gives (x_t, t, target), each (M, ...)."""
    params = {k: v.requires_grad_(True) for k, v in params.items()}
    opt, curve = Adam(params), {"steps": [], "loss": []}
    for step in ctx.steps(steps, every=cfg.log_every, desc=f"{desc} ({len(grid)} models)"):
        if step.last:
            break
        losses = train_step(params, opt, *batch(), cosine_lr(lr, step.index, steps), cfg.frequencies)
        ctx.watch(grid, step.index + 1, train_loss=losses)  # NaN/inf: recorded, never a crash
        if step.evaluate or step.index == steps - 1:
            ctx.log_models(grid, step.index, train_loss=losses)
            curve["steps"].append(step.index)
            curve["loss"].append(losses.tolist())
    ctx.save_models(grid, {k: v.detach() for k, v in params.items()})
    per_arm = grid.by_arm(torch.tensor(curve["loss"], dtype=torch.float64).T)  # {arm: (S, logged steps)}
    return {"steps": curve["steps"], "loss": {arm: v.tolist() for arm, v in per_arm.items()}}


def train_objectives(cfg, ctx) -> dict:
    """Stage 1: rf-uniform, rf-lognorm, vp-eps × seeds; seed k's init, points, ε and u shared by every arm."""
    grid, dev, B = ctx.grid(OBJECTIVES), ctx.device, cfg.batch_size
    x_data = data(cfg, ctx, "train-data", cfg.n_train)  # (S, N, 2)
    init = init_params(2, cfg.hidden, cfg.frequencies, ctx.generators("init"))
    gens = ctx.generators("batches")

    def batch():
        idx = per_seed(gens, lambda g: torch.randint(cfg.n_train, (B,), generator=g), dev)  # (S, B)
        x0 = x_data.gather(1, idx[..., None].expand(-1, -1, 2))
        eps = per_seed(gens, lambda g: torch.randn(B, 2, generator=g), dev)
        u = per_seed(gens, lambda g: torch.rand(B, generator=g), dev)
        parts = {arm: objective_batch(cfg, arm, x0, eps, u) for arm in grid.arms}
        return tuple(grid.build(lambda arm: parts[arm][i]) for i in range(3))  # (M, B, ...) each

    params = {k: grid.repeat(v).to(dev) for k, v in init.items()}
    return fit(cfg, ctx, grid, params, batch, cfg.steps, cfg.lr, "train objectives")


def load_models(ctx, model: str) -> dict:
    """One model's seeds back from their checkpoints, stacked (S, ...) (also after a resume)."""
    per = [ctx.load_checkpoint(f"{model}-seed{k}") for k in ctx.seeds]
    return {n: torch.stack([p[n] for p in per]).to(ctx.device) for n in per[0]}


def network(cfg, params: dict):
    """f(x, t) for stacked params and a float t: the velocity of a flow, or ε̂ of the VP model."""
    return lambda x, t: forward(params, x, x.new_full(x.shape[:2], t), cfg.frequencies)


def train_reflow(cfg, ctx) -> dict:
    """Stage 2: 2-RF fine-tuned from rf-uniform on (z, ODE(z)) pairs; rf2-shuffled on the same pairs
    with x permuted (under the negative control, rf2 too)."""
    grid, dev, B = ctx.grid(REFLOWS), ctx.device, cfg.batch_size
    base = load_models(ctx, "rf-uniform")
    z0 = per_seed(ctx.generators("reflow-noise"), lambda g: torch.randn(cfg.reflow_pairs, 2, generator=g), dev)
    z, x = reflow_pairs(network(cfg, base), z0, cfg.reflow_pair_steps)  # (S, n, 2) each
    x_shuffled = shuffle_pairs(x.cpu(), ctx.generators("reflow-shuffle")).to(dev)
    pair_x = grid.build(lambda arm: x_shuffled if arm == "rf2-shuffled" or cfg.negative_control else x)
    pair_z = grid.repeat(z)
    gens = ctx.generators("reflow-batches")

    def batch():
        idx = grid.repeat(per_seed(gens, lambda g: torch.randint(cfg.reflow_pairs, (B,), generator=g), dev))
        u = grid.repeat(per_seed(gens, lambda g: torch.rand(B, generator=g), dev))
        take = idx[..., None].expand(-1, -1, 2)
        x_t, target = interpolate(pair_x.gather(1, take), pair_z.gather(1, take), u)
        return x_t, u, target

    params = {k: grid.repeat(v) for k, v in base.items()}
    return fit(cfg, ctx, grid, params, batch, cfg.reflow_steps, cfg.reflow_lr, "reflow")


def evaluation_set(cfg, ctx) -> tuple:
    """Per seed, shared by every sampler: noise z (S, n, 2), directions (S, 2, P), fresh data
    (S, n, 2) and its sorted projections (S, n, P)."""
    z = per_seed(ctx.generators("eval-noise"), lambda g: torch.randn(cfg.n_eval, 2, generator=g), ctx.device)
    dirs = directions(cfg.projections, ctx.generators("directions")).to(ctx.device)
    ref = data(cfg, ctx, "eval-data", cfg.n_eval)
    return z, dirs, ref, sorted_projections(ref, dirs)


def sample(cfg, sampler: str, net, z, nfe: int):
    if sampler == "vp-euler":
        return pf_ode_euler(net, z, nfe, cfg.beta_min, cfg.beta_max, cfg.t_min)
    if sampler == "vp-ddim":
        return ddim(net, z, nfe, cfg.beta_min, cfg.beta_max, cfg.t_min)
    return euler(net, z, nfe)


def rounded(t) -> list:
    return [[round(v, 4) for v in row] for row in t.tolist()]


@torch.no_grad()
def evaluate(cfg, ctx, sampler: str, eval_set) -> dict:
    """SW1 at every NFE (per seed); for a flow also S along its reference-NFE trajectory."""
    net = network(cfg, load_models(ctx, MODEL_OF.get(sampler, sampler)))
    z, dirs, ref, ref_sorted = eval_set()
    out = {"sw1": {}, "points": {}}
    for nfe in ctx.track(sorted(cfg.nfe_grid), f"sample {sampler}"):
        if sampler in FLOWS and nfe == reference_nfe(cfg):
            x, velocities, states = euler(net, z, nfe, keep=True)
            out["straightness"] = straightness(z, x, velocities).tolist()
            keep = sorted(set(range(0, nfe + 1, max(1, nfe // 64))) | {nfe})  # ~65 points a path suffice to draw it
            out["paths"] = [rounded(states[keep, 0, i]) for i in range(min(PLOT_PATHS, z.shape[1]))]
        else:
            x = sample(cfg, sampler, net, z, nfe)
        out["sw1"][str(nfe)] = sw1(x, ref_sorted, dirs).tolist()
        out["points"][str(nfe)] = rounded(x[0, :PLOT_POINTS])
    return out


@torch.no_grad()
def data_floor(cfg, ctx, eval_set) -> dict:
    """SW1 between two fresh data samples of the evaluation size: the best any sampler can score."""
    _, dirs, ref, ref_sorted = eval_set()
    other = data(cfg, ctx, "floor-data", cfg.n_eval)
    return {"sw1": sw1(other, ref_sorted, dirs).tolist(), "points": rounded(ref[0, :PLOT_POINTS])}


def measurements(cfg, evals: dict, floor: dict) -> dict:
    ref = str(reference_nfe(cfg))
    m = {}
    for s in SAMPLERS:
        res = evals[f"eval-{s}"]
        for n in sorted(cfg.nfe_grid):
            sw = res["sw1"][str(n)]
            m[arm_key(s, nfe=n)] = {"sw1": sw, "excess": [a - b for a, b in zip(sw, res["sw1"][ref])]}
        if s in FLOWS:
            m[s] = {"straightness": res["straightness"]}
    m[FLOOR] = {"sw1": floor["sw1"]}
    return m


def run(cfg, ctx) -> dict:
    curves = {"objectives": ctx.unit("train-objectives", lambda: train_objectives(cfg, ctx)),
              "reflow": ctx.unit("train-reflow", lambda: train_reflow(cfg, ctx))}
    eval_set = functools.cache(lambda: evaluation_set(cfg, ctx))  # built once, only if a unit needs it
    evals = ctx.map_units({f"eval-{s}": (lambda s=s: evaluate(cfg, ctx, s, eval_set)) for s in SAMPLERS})
    floor = ctx.unit("eval-floor", lambda: data_floor(cfg, ctx, eval_set))
    m = measurements(cfg, evals, floor)
    report(cfg, ctx, m, evals, floor, curves)
    return m
