"""robbins-monro: mean estimation (every linear arm at once), then root finding; one unit each."""

from __future__ import annotations

import torch

from mlbench.exps.robbins_monro import ROOT_SLOPE, root_arms, schedules
from mlbench.exps.robbins_monro.approximation import F64, Noise, g, mse_stats, step_sizes
from mlbench.exps.robbins_monro.report import report
from mlbench.exps.robbins_monro.theory import Schedule, log_log_slope, record_steps


class Recorder:
    """MSE over replicates at the log-spaced k (logged per member), then per-seed measurements:
    mse, k_mse = K·MSE, scaled_mse = K^ρ·MSE (ρ the predicted rate), slope (log-log fit over
    [fit_from, K]) and mse_rel_se (the replicates' relative standard error of the MSE)."""

    def __init__(self, cfg, ctx, grid, target: float, rates: list[float]):
        self.cfg, self.ctx, self.grid, self.target, self.rates = cfg, ctx, grid, target, rates
        self.ks = record_steps(cfg.steps, cfg.points_per_decade)
        self.due, self.mse, self.rel_se = set(self.ks), [], []

    def record(self, k: int, estimate) -> None:
        mse, rel_se = mse_stats(estimate, self.target)
        self.ctx.watch(self.grid, k, mse=mse)  # NaN/inf (it cannot happen with a_k ≤ 1): recorded, never a crash
        self.ctx.log_models(self.grid, k, mse=mse, mse_rel_se=rel_se)
        self.mse.append(mse.tolist())
        self.rel_se.append(rel_se.tolist())

    def result(self, estimate) -> dict:
        K, grid = self.cfg.steps, self.grid
        fit = [i for i, k in enumerate(self.ks) if k >= self.cfg.fit_from]
        curves = torch.tensor(self.mse, dtype=F64).T  # (M, P)
        final = curves[:, -1]
        ctx_meta = {"replicates": str(self.cfg.replicates), "steps": str(K)}
        self.ctx.save_models(grid, {"estimate": estimate, "mse": curves,
                                    "k": torch.tensor(self.ks).expand(len(grid), -1)},
                             metadata=lambda m: {"arm": grid.arm_of(m), "seed_index": str(grid.seed_of(m)), **ctx_meta})
        measurements = grid.measurements(
            mse=final, k_mse=K * final, scaled_mse=[K ** r * v for r, v in zip(self.rates, final.tolist())],
            slope=[log_log_slope([self.ks[i] for i in fit], [row[i] for i in fit]) for row in curves.tolist()],
            mse_rel_se=self.rel_se[-1])
        return {"measurements": measurements, "ks": self.ks,
                "mse": {arm: c.tolist() for arm, c in grid.by_arm(curves).items()}}


def mean_estimation(cfg, ctx) -> dict:
    """w_{k+1} = w_k − a_k(w_k − x_k) for every linear arm × seed × replicate; the averaged arms
    also keep w̄_k = (1/k) Σ_{i=2}^{k+1} w_i. Every arm of a seed sees that seed's noise."""
    plan: dict[str, Schedule] = schedules(cfg)
    grid, dev, R = ctx.grid(list(plan)), ctx.device, cfg.replicates
    c = grid.per_arm([s.c for s in plan.values()], dtype=F64, device=dev)  # (M,)
    gamma = grid.per_arm([s.gamma for s in plan.values()], dtype=F64, device=dev)
    w_bar = {arm: torch.zeros(len(grid.seeds), R, dtype=F64, device=dev) for arm, s in plan.items() if s.averaged}
    observe = Noise(ctx.generators("noise", dev), R, cfg.noise, dev, scale=cfg.noise_std, shift=cfg.mean)
    w = torch.full((len(grid), R), cfg.start, dtype=F64, device=dev)  # (M, R)
    rec = Recorder(cfg, ctx, grid, cfg.mean, [plan[arm].rate() for _, arm, _ in grid.members()])

    def estimate():
        est = w.clone()
        for arm, avg in w_bar.items():
            grid.by_arm(est)[arm].copy_(avg)
        return est

    for step in ctx.steps(cfg.steps, desc=f"mean estimation: {len(plan)} arms x {len(grid.seeds)} seeds x {R} replicates"):
        if step.index in rec.due:
            rec.record(step.index, estimate())
        if step.last:
            break
        k = step.index + 1
        x = grid.repeat(observe.next())  # (M, R): x_k = μ + σε_k, seed k's draw in every arm
        w.lerp_(x, step_sizes(c, gamma, k)[:, None])  # w ← w + a_k (x_k − w)
        for arm, avg in w_bar.items():
            avg.lerp_(grid.by_arm(w)[arm], 1.0 / k)  # w̄ ← w̄ + (w_{k+1} − w̄)/k
    return rec.result(estimate())


def root_finding(cfg, ctx) -> dict:
    """θ_{k+1} = θ_k − a_k (g(θ_k) + σε_k), a_k = min(1, a/k), θ_1 ~ U(−root_start, root_start)."""
    constants = root_arms(cfg)
    grid, dev, R = ctx.grid(list(constants)), ctx.device, cfg.replicates
    c = grid.per_arm(list(constants.values()), dtype=F64, device=dev)
    one = torch.ones_like(c)
    start = torch.stack([torch.rand(R, generator=gen, dtype=F64) for gen in ctx.generators("root-start")])  # (S, R)
    theta = grid.repeat((2 * start - 1) * cfg.root_start).to(dev)  # (M, R): seed k's starts in every arm
    noise = Noise(ctx.generators("root-noise", dev), R, cfg.noise, dev, scale=cfg.root_noise_std)
    rec = Recorder(cfg, ctx, grid, 0.0, [Schedule(constants[arm], 1.0).rate(ROOT_SLOPE) for _, arm, _ in grid.members()])
    for step in ctx.steps(cfg.steps, desc=f"root finding: {len(constants)} arms x {len(grid.seeds)} seeds x {R} replicates"):
        if step.index in rec.due:
            rec.record(step.index, theta)
        if step.last:
            break
        y = g(theta).add_(grid.repeat(noise.next()))  # (M, R): Y_k = g(θ_k) + σε_k
        theta.addcmul_(step_sizes(c, one, step.index + 1)[:, None], y, value=-1.0)  # θ ← θ − a_k Y_k
    return rec.result(theta)


def run(cfg, ctx) -> dict:
    units = ctx.map_units({"mean-estimation": lambda: mean_estimation(cfg, ctx),
                           "root-finding": lambda: root_finding(cfg, ctx)})
    measurements = {**units["mean-estimation"]["measurements"], **units["root-finding"]["measurements"]}
    report(cfg, ctx, measurements, units)
    return measurements
