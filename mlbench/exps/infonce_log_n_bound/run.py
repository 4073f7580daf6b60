"""infonce-log-n-bound: the closed-form optimal critic, then every trained critic as one stacked model.

Members are (objective, N, I) arms x seeds. Each member sees B = max N pairs per draw, split into
B/N independent batches of N; `parts` lists the contiguous member slices that share a bound and a
batch size, so each slice's scores are one (m, B/N, N, N) tensor.
"""

from __future__ import annotations

import math

import torch

from mlbench.core.grid import Grid, Keep
from mlbench.exps.infonce_log_n_bound import key, layer_widths, oracle_specs, trained_specs
from mlbench.exps.infonce_log_n_bound.bounds import bound
from mlbench.exps.infonce_log_n_bound.critic import block_scores, embed, init_critic
from mlbench.exps.infonce_log_n_bound.gaussians import draw, oracle_scores, pair, rho_for_mi
from mlbench.exps.infonce_log_n_bound.report import report


def slices(grid: Grid, specs: list) -> list[tuple[str, int, slice, Grid]]:
    """(objective, N, member slice, its sub-grid) for each run of arms sharing a bound and a batch size."""
    out = []
    for objective, n in dict.fromkeys((o, n) for o, n, _ in specs):
        arms = [key(*s) for s in specs if s[:2] == (objective, n)]
        first, last = grid.index(arms[0], grid.seeds[0]), grid.index(arms[-1], grid.seeds[-1])
        out.append((objective, n, slice(first, last + 1), Grid(tuple(arms), grid.seeds)))
    return out


def sample(cfg, grid: Grid, gens: list, rho, device):
    """One draw of B = max N pairs per member: seed k's x, ε shared by all its arms; (M, B, d) each."""
    x, eps = draw(gens, max(cfg.batch_sizes), cfg.dim)
    x, eps = grid.repeat(x).to(device), grid.repeat(eps).to(device)
    return x, pair(x, eps, rho, cfg.cubic)


def critic_values(cfg, params: dict, x, y, parts) -> list:
    """Per part, the bound of each of its B/N batches under the trained critics: [(m, B/N)]."""
    hy, gx = embed(params, "h", y), embed(params, "g", x)  # (M, B, E)
    return [bound(block_scores(hy[sl], gx[sl], n), o, cfg.smile_tau) for o, n, sl, _ in parts]


def oracle_values(cfg, rho, x, y, parts) -> list:
    """Per part, InfoNCE of the Bayes-optimal critic log p(y_i | x_j) on each batch: [(m, B/N)]."""
    out = []
    for _, n, sl, _ in parts:
        xb, yb = (v[sl].unflatten(1, (-1, n)) for v in (x, y))  # (m, B/N, N, d)
        out.append(bound(oracle_scores(xb, yb, rho[sl], cfg.cubic), "infonce", cfg.smile_tau))
    return out


def lr_at(cfg, t: int) -> float:
    """The learning rate of step t: constant, or cosine from lr to 0 over the run."""
    if cfg.lr_schedule == "constant":
        return cfg.lr
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t / cfg.steps))


def member_means(values: list):
    """(M,): each member's mean over its batches (parts cover the members in stacking order)."""
    return torch.cat([v.mean(-1) for v in values])


def evaluate(cfg, grid: Grid, gens: list, draws, rho, values_of) -> dict:
    """Fresh draws (`draws`: an iterable, e.g. a progress-tracked range): per member the mean,
    largest and spread of its per-batch estimates, and the per-batch values [(m, draws·B/N)] per part."""
    per_part = None
    for _ in draws:
        x, y = sample(cfg, grid, gens, rho, rho.device)
        with torch.no_grad():
            vals = values_of(x, y)
        per_part = [[v] for v in vals] if per_part is None else [acc + [v] for acc, v in zip(per_part, vals)]
    batches = [torch.cat(acc, -1).double().cpu() for acc in per_part]
    return {"estimate": torch.cat([b.mean(-1) for b in batches]),
            "batch_max": torch.cat([b.amax(-1) for b in batches]),
            "batch_std": torch.cat([b.std(-1) if b.shape[-1] > 1 else torch.zeros(len(b)) for b in batches]),
            "batches": batches}


def truth_columns(grid: Grid, specs: list) -> dict:
    """N, true I and log N per member: inputs beside the measurements (kept for diverged members)."""
    return {"N": grid.per_arm([n for _, n, _ in specs]).tolist(),
            "true_mi": grid.per_arm([i for _, _, i in specs]).tolist(),
            "log_n": grid.per_arm([math.log(n) for _, n, _ in specs]).tolist()}


def measured(grid: Grid, specs: list, cols: dict) -> dict:
    return grid.measurements(**cols, **{k: Keep(v) for k, v in truth_columns(grid, specs).items()})


def oracle_critic(cfg, ctx) -> dict:
    """The closed-form critic at every (N, I) over `oracle_batches` fresh draws, all seeds at once."""
    specs = oracle_specs(cfg)
    grid, dev = ctx.grid([key(*s) for s in specs]), ctx.device
    parts = slices(grid, specs)
    rho = grid.per_arm([rho_for_mi(i, cfg.dim) for _, _, i in specs], dtype=torch.float64).to(dev)
    draws = ctx.track(range(cfg.oracle_batches), f"optimal critic: {len(grid)} arms x seeds, fresh draws")
    stats = evaluate(cfg, grid, ctx.generators("oracle"), draws, rho,
                     lambda x, y: oracle_values(cfg, rho, x, y, parts))
    cols = {k: stats[k] for k in ("estimate", "batch_max", "batch_std")}
    ctx.log_models(grid, **truth_columns(grid, specs), **cols)
    by_arm = {arm: v.clone() for (*_, sub), b in zip(parts, stats["batches"]) for arm, v in sub.by_arm(b).items()}
    ctx.save_checkpoint("oracle-batch-estimates", by_arm, {"what": "per-batch InfoNCE of the optimal critic, "
                                                            "(seeds, batches) per arm", "dim": str(cfg.dim)})
    return {"measurements": measured(grid, specs, cols)}


def train(cfg, ctx) -> dict:
    """Every (objective, N, I) critic x seed trained together: one Adam over the stacked weights."""
    specs = trained_specs(cfg)
    grid, dev = ctx.grid([key(*s) for s in specs]), ctx.device
    parts = slices(grid, specs)
    rho = grid.per_arm([rho_for_mi(i, cfg.dim) for _, _, i in specs], dtype=torch.float32).to(dev)
    params = {k: grid.repeat(v).to(dev).requires_grad_(True) for k, v in init_critic(cfg, ctx.generators("init")).items()}
    opt = torch.optim.Adam(list(params.values()), lr=cfg.lr)
    heldout = sample(cfg, grid, ctx.generators("heldout"), rho, dev)  # fixed draw for the training curve
    data = ctx.generators("data")
    curve_steps, curve, truth = [], [], truth_columns(grid, specs)
    for step in ctx.steps(cfg.steps, every=cfg.eval_every, desc=f"train {len(grid)} critics"):
        if step.evaluate:
            with torch.no_grad():
                held = member_means(critic_values(cfg, params, *heldout, parts)).cpu()
            curve_steps.append(step.index)
            curve.append(held.tolist())
            ctx.log_models(grid, step.index, N=truth["N"], true_mi=truth["true_mi"], heldout_estimate=held)
            if step.last:
                break
        x, y = sample(cfg, grid, data, rho, dev)
        est = member_means(critic_values(cfg, params, x, y, parts))  # (M,) on this step's fresh batches
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, step.index)
        opt.zero_grad(set_to_none=True)
        (-est.sum()).backward()  # the members share no weights: each gets its own gradient
        opt.step()
        ctx.watch(grid, step.index + 1, train_estimate=est.detach().cpu())
    draws = ctx.track(range(cfg.eval_batches), "trained critics: fresh evaluation draws")
    stats = evaluate(cfg, grid, ctx.generators("eval"), draws, rho,
                     lambda x, y: critic_values(cfg, params, x, y, parts))
    widths = "-".join(map(str, layer_widths(cfg)))  # of g and of h
    ctx.save_models(grid, params, metadata=lambda m: {"arm": grid.arm_of(m), "seed_index": str(grid.seed_of(m)),
                                                      "init": cfg.init, "layer_widths": widths})
    cols = {k: stats[k] for k in ("estimate", "batch_max", "batch_std")}
    per_arm = grid.by_arm(torch.tensor(curve, dtype=torch.float64).T)  # {arm: (S, evaluations)}
    ctx.log_models(grid, **truth_columns(grid, specs), **cols)  # the final estimates, one line per critic
    return {"measurements": measured(grid, specs, cols), "curve_steps": curve_steps,
            "curve": {arm: c.tolist() for arm, c in per_arm.items()}}


def run(cfg, ctx) -> dict:
    oracle = ctx.unit("oracle", lambda: oracle_critic(cfg, ctx))
    trained = ctx.unit("train", lambda: train(cfg, ctx))
    m = {**trained["measurements"], **oracle["measurements"]}
    report(cfg, ctx, m, trained)
    return m
