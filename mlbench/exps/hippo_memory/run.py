"""hippo-memory: every memory over the same signals, per state size N, per stretch, per discretisation.

Nothing is trained: each unit runs closed-form recurrences over every seed's signals at once
(float64, (S, B, L)) and turns the reconstruction errors into per-seed measurements through the
grid of (memory, seed) members.
"""

from __future__ import annotations

import math

import torch

from mlbench.core.grid import arm_key
from mlbench.data import signals
from mlbench.exps.hippo_memory import BASELINES, MEASURES, MEMORIES, METHODS, discretised
from mlbench.exps.hippo_memory.memory import baseline, hippo_state, kernel, relative_mse, span
from mlbench.exps.hippo_memory.operators import basis, discretize, legs_steps, positions, transition
from mlbench.exps.hippo_memory.report import plot_ns, report


def measure(ctx, grid, errors: dict, families: tuple[str, ...]) -> dict:
    """Per-seed measurements of the relative MSE (S, B) of each arm of `grid`: the mean over all
    signals (`relmse`) and per family (`relmse_<family>`); one metrics line per member."""
    err = grid.build(lambda arm: errors[arm])  # (M, B), B family-major
    per_family = err.view(len(grid), len(families), -1).mean(-1)  # (M, F)
    cols = {"relmse": err.mean(-1), **{f"relmse_{fam}": per_family[:, i] for i, fam in enumerate(families)}}
    ctx.log_models(grid, **cols)
    return grid.measurements(**cols)


def memorise(cfg, ctx, f, N: int, families: tuple[str, ...], keep_examples: bool) -> dict:
    """Every memory of state size N on f (S, B, L): HiPPO read out by its basis, baselines by
    least squares, f̂ = pinv(K) K f (the history projected onto their impulse responses)."""
    S, _, L = f.shape
    fhats = {}
    for m in MEASURES:
        c, s = hippo_state(m, N, f, cfg.method, cfg, L)
        fhats[m] = c @ basis(m, N, positions(L, f.device), s).T  # (S, B, L)
    gens = ctx.generators(f"random-N{N}")
    for b in BASELINES:
        K = kernel(*baseline(b, N, L, S, gens, f.device), L)  # (S, N, L)
        fhats[b] = (f @ K.transpose(-1, -2)) @ torch.linalg.pinv(K, rtol=cfg.pinv_rtol).transpose(-1, -2)
    grid = ctx.grid(MEMORIES, N=N)
    errors = measure(ctx, grid, {m: relative_mse(fhat, f) for m, fhat in fhats.items()}, families)
    if not keep_examples:
        return {"errors": errors, "examples": {}}
    examples = {m: fhat[0, 0].tolist() for m, fhat in fhats.items()}  # the first seed's first signal
    examples["legs_families"] = fhats["legs"][0, :: cfg.signals_per_family].tolist()  # each family's first
    return {"errors": errors, "examples": examples}


def timescale(cfg, ctx, spectra, stretch: int, families: tuple[str, ...]) -> dict:
    """The same signals sampled at L = stretch·L0: LegS over [0, L]; LegT (θ = L0 steps) over its
    window, and nothing (zero) for the older history it cannot hold."""
    L0, N = cfg.length, cfg.timescale_n
    f = signals.sample(spectra, stretch * L0, ctx.device)  # (S, B, L)
    legs, _ = hippo_state("legs", N, f, cfg.method, cfg, L0)
    legt, _ = hippo_state("legt", N, f, cfg.method, cfg, L0)
    fhats = {"legs": legs @ basis("legs", N, positions(f.shape[-1], f.device)).T, "legt": torch.zeros_like(f)}
    fhats["legt"][..., -L0:] = legt @ basis("legt", N, positions(L0, f.device)).T
    grid = ctx.grid(("legs", "legt"), stretch=stretch)
    return measure(ctx, grid, {m: relative_mse(fhat, f) for m, fhat in fhats.items()}, families)


def discretisations(cfg, ctx, f, families: tuple[str, ...]) -> dict:
    """Every measure x every discretisation at N = disc_n (a non-finite error means divergence:
    kept as it is, an unbounded error)."""
    errors, N, L = {}, cfg.disc_n, f.shape[-1]
    for mth in METHODS:
        for m in MEASURES:
            c, s = hippo_state(m, N, f, mth, cfg, L)
            errors[f"{m}-{mth}"] = relative_mse(c @ basis(m, N, positions(L, f.device), s).T, f)
    return measure(ctx, ctx.grid(discretised(), N=N), errors, families)


def run(cfg, ctx) -> dict:
    families = ("bandlimited",) if cfg.negative_control else tuple(cfg.families)
    cutoff = cfg.length / 2 if cfg.negative_control else cfg.cutoff_hz  # white noise up to Nyquist
    spectra = signals.load(ctx.cache_dir, [ctx.seed("signals", k) for k in ctx.seeds], families,
                           cfg.signals_per_family, cutoff, walk_terms=cfg.length // 2)
    f = signals.sample(spectra, cfg.length, ctx.device)  # (S, B, L0)
    m: dict[str, dict[str, list[float]]] = {}
    examples = {}
    for N in ctx.track(sorted(cfg.n_grid), "memorise: error vs N"):
        res = ctx.unit(f"memorise-N{N}", lambda N=N: memorise(cfg, ctx, f, N, families, N in plot_ns(cfg)))
        examples[N] = res["examples"]
        for key, metrics in res["errors"].items():
            m[key] = {**metrics, "log10_relmse": [math.log10(v) for v in metrics["relmse"]]}
    for b in BASELINES:  # per seed: mean over N of log(error LegS / error baseline)
        ratios = [[math.log(a / c) for a, c in zip(m[arm_key("legs", N=n)]["relmse"], m[arm_key(b, N=n)]["relmse"])]
                  for n in cfg.n_grid]
        m[f"legs-vs-{b}"] = {"mean_log_ratio": [sum(col) / len(col) for col in zip(*ratios)]}
    for s in ctx.track(sorted(cfg.stretches), "timescale: stretched signals"):
        m.update(ctx.unit(f"timescale-x{s}", lambda s=s: timescale(cfg, ctx, spectra, s, families)))
    m.update(ctx.unit("discretisation", lambda: discretisations(cfg, ctx, f, families)))
    save_operators(cfg, ctx)
    report(cfg, ctx, m, f[0, :: cfg.signals_per_family].tolist(), examples, families)
    return m


def save_operators(cfg, ctx) -> None:
    """Checkpoints at the largest N: A, B, the discretised Ā, B̄ (LegS: its step at k = L0), the basis."""
    N, L = max(cfg.n_grid), cfg.length
    for m in MEASURES:
        A, B = transition(m, N, ctx.device)
        s = span(cfg, m, N)
        if m == "legs":
            Ad, Bd = (t[0] for t in legs_steps(A, B, torch.tensor([L]), cfg.method))
        else:
            Ad, Bd = discretize(A, B, s / L, cfg.method)
        ctx.save_checkpoint(f"{m}-N{N}", {"A": A, "B": B, "A_bar": Ad, "B_bar": Bd,
                                          "basis": basis(m, N, positions(L, ctx.device), s)},
                            {"measure": m, "N": str(N), "method": cfg.method, "length": str(L), "span": str(s)})
