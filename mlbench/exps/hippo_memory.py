"""hippo-memory: HiPPO, recurrent memory with optimal polynomial projections.

Shows (Gu, Dao, Ermon, Rudra, Ré 2020; seed document 003):

1. The HiPPO operators: an N-dim state c(t) whose linear ODE keeps the coefficients of the best
   approximation of the input's history under a measure — LegT (uniform on a sliding window θ),
   LagT (exp(−τ), Laguerre), LegS (uniform on [0, t], ċ = (1/t)(A c + B f)), FouT (Fourier on
   a window) — and their discretisations (forward/backward Euler, bilinear, ZOH; LegS with its
   time-varying step A/k, B/k). `transition`, `discretize`, `legs_steps`, `basis` are public.
2. Online memorisation of generated signals (band-limited noise, random walks, sums of sines;
   `mlbench.data.signals`): after L steps the whole history is reconstructed from the state,
   f(s) ≈ Σ_n c_n g_n(s), and its relative MSE is measured against N, next to memories with the
   same state size read out by least squares (the history projected onto the span of their
   impulse responses, pinv(K) c): a bank of N EMAs, a random stable A, the last N samples.
   Measured: at N ≤ 8 the random A with this (optimal, signal-agnostic) read-out ties LegS (no
   8-dim memory holds a 5-cycle signal); from N = 16 HiPPO pulls ahead and the gap widens, as
   the baselines' impulse responses grow ill-conditioned (the EMA bank stalls near 7e-2).
3. Timescale: the same continuous signal sampled 1x…10x more densely. LegS (no timescale
   parameter) keeps its error; LegT with its window fixed to L0 steps forgets the rest.

Recurrences run in float64, batched over seeds and signals. c_k = Ā c_{k−1} + B̄ f_k is linear in
f: LTI memories use the kernel K (c_L = K f, built by doubling), LegS composes its time-varying
affine steps as a balanced tree of batched matmuls (log L large ops instead of L tiny ones).
No trained weights: checkpoints hold the discretised operators and bases. The paper's learned
tasks (HiPPO-RNN vs GRU/LSTM, permuted MNIST) are not included.
Negative control (`negative_control=true`): white noise up to Nyquist holds far more than N
coefficients can keep, so the headline claim must fail.

Run: `mlbench run hippo-memory` (quick, CPU); `--profile full --device cuda` for L0=4000, N up to
1024 and stretches up to 50x (12 s on an H200; at N=1024 > L0/4 the error rises again: too few
samples per coefficient for the discretisation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mlbench.core.config import param
from mlbench.core.verdict import AllOf, Claim, Paired, Threshold, Trend, mean

VERSION = 1
THREADS = 1  # batched small solves/pinv: 1 thread measured up to 1000x faster than 2 on a loaded 2-core CPU
MEASURES = ("legs", "legt", "lagt", "fout")
BASELINES = ("ema", "random", "lastn")
METHODS = ("forward", "backward", "bilinear", "zoh")
CITATION = "Gu et al. 2020, HiPPO (NeurIPS): online function approximation"


@dataclass(frozen=True)
class Config:
    n_grid: tuple[int, ...] = param((4, 8, 16, 32, 64, 128), "state sizes N (error vs N; the largest judges 'small')")
    length: int = param(1000, "L0: steps per history; LegT's window θ and the LTI step dt = 1/L0")
    families: tuple[str, ...] = param(("bandlimited", "randomwalk", "sines"), "signal families (mlbench.data.signals)")
    signals_per_family: int = param(6, "signals per family per seed")
    cutoff_hz: float = param(5.0, "band limit in cycles per history (sines reach 2x this)")
    method: Literal["forward", "backward", "bilinear", "zoh"] = param("bilinear", "discretisation of the memories (the science doc's best)")
    stretches: tuple[int, ...] = param((1, 2, 5, 10), "timescale test: the same signals sampled at s*L0 steps")
    timescale_n: int = param(32, "state size N of the timescale test")
    disc_n: int = param(64, "state size N of the discretisation table")
    lagt_span: float = param(1.0, "LagT timescale: history = lagt_span*N units of exp(-tau) (Laguerre order N reaches ~4N)")
    pinv_rtol: float = param(1e-10, "baselines' least-squares read-out drops singular values < rtol*max (float64 noise)")
    max_error: float = param(1e-2, "'small error': bound on the mean relative MSE at the largest N")
    negative_control: bool = param(False, "white noise up to Nyquist instead of the families: the headline must NOT reproduce")

    def validate(self) -> None:
        from mlbench.data.signals import FAMILIES

        if min(self.n_grid) < 2 or self.timescale_n < 2 or self.disc_n < 2:
            raise ValueError("state sizes must be >= 2")
        if len(set(self.n_grid)) < 2 or len(set(self.stretches)) < 2:
            raise ValueError("n_grid and stretches need at least two distinct values")
        if unknown := set(self.families) - set(FAMILIES):
            raise ValueError(f"unknown families {sorted(unknown)}: choose from {', '.join(FAMILIES)}")
        if self.length < 16 or self.signals_per_family < 1 or min(self.stretches) < 1:
            raise ValueError("need length >= 16, signals_per_family >= 1, stretches >= 1")
        if not 0 < self.cutoff_hz <= self.length / 4:
            raise ValueError("cutoff_hz must be in (0, length/4] (sines reach 2*cutoff_hz, below Nyquist)")


def arm(memory: str, n: int) -> str:
    return f"{memory}@N{n}"


def claims(cfg: Config) -> list[Claim]:
    ns, lo, hi = sorted(cfg.n_grid), min(cfg.stretches), max(cfg.stretches)
    xs = tuple(math.log2(n) for n in ns)
    falls = tuple(t for m in ("legs", "legt") for t in (
        Trend("log10_relmse", tuple(arm(m, n) for n in ns), xs, "less", -0.25, x_label="log2 N"),
        Threshold("relmse", arm(m, ns[-1]), cfg.max_error, "less")))
    beats = tuple(t for b in BASELINES for t in (
        Threshold("mean_log_ratio", f"legs-vs-{b}", 0.0, "less"),
        Paired("relmse", arm("legs", ns[-1]), arm(b, ns[-1]), "less", log_ratio=True)))
    return [
        Claim("memory", f"The N-dim HiPPO state (LegS, LegT) holds the whole history: the relative error falls "
              f"with N (log10 error vs log2 N, slope < -0.25) and is < {cfg.max_error:g} at N={ns[-1]}",
              CITATION, AllOf(falls)),
        Claim("baselines", f"At equal state size, LegS reconstructs the history better than an EMA bank, a random "
              f"stable A and the last N samples read out by least squares: mean log error ratio over N={ns} < 0, "
              f"and at N={ns[-1]}", CITATION, AllOf(beats)),
        Claim("timescale", f"The same signals sampled {hi}x more densely: LegS's error grows < 1.5x, while LegT with "
              f"its window fixed to L0 = {cfg.length} steps loses the history (error up > 10x, and > 0.5)",
              "Gu et al. 2020, HiPPO: LegS is timescale-equivariant, with no timescale hyper-parameter",
              AllOf((Paired("relmse", f"legs@x{hi}", f"legs@x{lo}", "less", math.log(1.5), log_ratio=True),
                     Paired("relmse", f"legt@x{hi}", f"legt@x{lo}", "greater", math.log(10), log_ratio=True),
                     Threshold("relmse", f"legt@x{hi}", 0.5, "greater")))),
        Claim("discretisation", f"Forward Euler reconstructs worse than bilinear, for LegS and LegT (N={cfg.disc_n})",
              "Gu et al. 2020, HiPPO (discretisation); science doc pilot",
              AllOf(tuple(Paired("relmse", f"{m}-forward", f"{m}-bilinear", "greater", log_ratio=True)
                          for m in ("legs", "legt")))),
    ]


CLAIMS = claims(Config())


# ----------------------------------------------------------------------------- operators
def transition(measure: str, N: int, device="cpu"):
    """(A, B) of ċ = A c + B f (LegS: ċ = (1/t)(A c + B f)); A is the paper's A negated.

    r_n = √(2n+1).  LegS: A_nk = −r_n r_k (n > k), −(n+1) (n = k), 0 (n < k); B = r.
    LegT (θ = 1): A_nk = −r_n r_k (n ≥ k), −r_n r_k (−1)^(n−k) (n < k); B = r.
    LagT: A = I/2 − tril(1) (−1/2 on the diagonal, −1 below); B = 1.
    FouT (θ = 1, basis 1, √2 cos 2πkx, √2 sin 2πkx): A = J − 2 p pᵀ, B = 2p, p = basis at x = 0,
    J the rotations ±2πk; for even N the last state is unused (a cosine without its sine).
    """
    import torch

    kw = {"dtype": torch.float64, "device": device}
    n = torch.arange(N, **kw)
    r = (2 * n + 1).sqrt()
    below = n[:, None] > n[None, :]
    if measure == "legs":
        return -torch.where(below, r[:, None] * r[None, :], torch.diag(n + 1)), r
    if measure == "legt":
        sign = torch.where(below | (n[:, None] == n[None, :]), 1.0, (-1.0) ** (n[:, None] - n[None, :]))
        return -r[:, None] * sign * r[None, :], r
    if measure == "lagt":
        return torch.eye(N, **kw) / 2 - torch.tril(torch.ones(N, N, **kw)), torch.ones(N, **kw)
    if measure == "fout":
        p = basis("fout", N, torch.zeros(1, **kw))[0]  # (N,)
        k = torch.arange(1, (N - 1) // 2 + 1, device=device)
        J = torch.zeros(N, N, **kw)
        J[2 * k - 1, 2 * k] = 2 * math.pi * k.double()
        J[2 * k, 2 * k - 1] = -2 * math.pi * k.double()
        return J - 2 * torch.outer(p, p), 2 * p
    raise ValueError(f"unknown measure {measure!r}: choose from {', '.join(MEASURES)}")


def discretize(A, B, dt: float, method: str):
    """(Ā, B̄) for c_k = Ā c_{k−1} + B̄ f_k.  forward: I + ΔA, ΔB;  backward: (I − ΔA)⁻¹, (I − ΔA)⁻¹ΔB;
    bilinear: (I − ΔA/2)⁻¹(I + ΔA/2), (I − ΔA/2)⁻¹ΔB;  ZOH: exp(ΔA), ∫₀^Δ exp(sA) B ds (via the
    exponential of [[A, B], [0, 0]]Δ: A may be singular)."""
    import torch

    I = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device).expand_as(A)
    if method == "forward":
        return I + dt * A, dt * B
    if method in ("backward", "bilinear"):
        w = 1.0 if method == "backward" else 0.5
        lhs = I - w * dt * A
        rhs = torch.cat([I + (1 - w) * dt * A, dt * B[..., None]], -1)  # (..., N, N + 1)
        if bool((A.triu(1) == 0).all()):  # LegS, LagT: lower triangular, a cheaper exact solve
            sol = torch.linalg.solve_triangular(lhs, rhs, upper=False)
        else:
            sol = torch.linalg.solve(lhs, rhs)
        return sol[..., :-1], sol[..., -1]
    if method == "zoh":
        N = A.shape[-1]
        aug = torch.zeros(*A.shape[:-2], N + 1, N + 1, dtype=A.dtype, device=A.device)
        aug[..., :N, :N], aug[..., :N, N] = dt * A, dt * B
        E = torch.linalg.matrix_exp(aug)
        return E[..., :N, :N], E[..., :N, N]
    raise ValueError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")


def legs_steps(A, B, ks, method: str):
    """LegS's time-varying step at t = k (k ≥ 1): Ā_k, B̄_k of (A/k, B/k) with Δ = 1, except ZOH,
    exact for f held on [k, k+1] in log-time: exp(A log((k+1)/k)), A⁻¹(Ā_k − I)B.  (K, N, N), (K, N)."""
    import torch

    ks = ks.to(A)[:, None, None]  # (K, 1, 1)
    if method != "zoh":
        return discretize(A / ks, B / ks[..., 0], 1.0, method)
    Ad = torch.linalg.matrix_exp(A * torch.log1p(1.0 / ks))
    Bd = torch.linalg.solve_triangular(A, Ad @ B[:, None] - B[:, None], upper=False)[..., 0]  # LegS A: lower
    return Ad, Bd


def _three_term(N: int, x, step):
    """Polynomials by their three-term recurrence: (..., N) from P_0 = 1 and step(n, P_n, P_{n-1})."""
    import torch

    P = [torch.ones_like(x), step(0, torch.ones_like(x), torch.zeros_like(x))]
    for n in range(1, N - 1):
        P.append(step(n, P[n], P[n - 1]))
    return torch.stack(P[:N], -1)


def legendre(N: int, x):
    """P_0..P_{N−1} at x: (n+1)P_{n+1} = (2n+1)x P_n − n P_{n−1}."""
    return _three_term(N, x, lambda n, p, q: ((2 * n + 1) * x * p - n * q) / (n + 1))


def laguerre(N: int, x):
    """L_0..L_{N−1} at x: (n+1)L_{n+1} = (2n+1−x)L_n − n L_{n−1}."""
    return _three_term(N, x, lambda n, p, q: ((2 * n + 1 - x) * p - n * q) / (n + 1))


def basis(measure: str, N: int, x, span: float = 1.0):
    """Reconstruction basis g_n at positions x ∈ [0, 1] of the window (LegS: s/t; 1 = now):
    f ≈ Σ c_n g_n(x).  (len(x), N).  LegS/LegT: √(2n+1) P_n(2x − 1); LagT: L_n(τ) e^{−τ/2} with
    τ = (1 − x)·span the time ago; FouT: 1, √2 cos 2πkx, √2 sin 2πkx, …"""
    import torch

    n = torch.arange(N, dtype=x.dtype, device=x.device)
    if measure in ("legs", "legt"):
        return legendre(N, 2 * x - 1) * (2 * n + 1).sqrt()
    if measure == "lagt":
        tau = (1 - x) * span
        return laguerre(N, tau) * torch.exp(-tau / 2)[:, None]
    if measure == "fout":
        k = torch.div(n + 1, 2, rounding_mode="floor")
        wave = torch.where(n % 2 == 1, torch.cos(2 * math.pi * k * x[:, None]), torch.sin(2 * math.pi * k * x[:, None]))
        g = torch.where(n == 0, 1.0, math.sqrt(2) * wave)
        return g if N % 2 else g * (n < N - 1)
    raise ValueError(f"unknown measure {measure!r}")


# ----------------------------------------------------------------------------- memories
def baseline(kind: str, N: int, L: int, seeds: int, gens: list, device):
    """(Ā, B̄) of an equal-size memory, (S, N, N) and (S, N).  ema: c_i ← a_i c_i + (1−a_i) f with
    timescales 1…L steps (geometric); random: A = r(G/√N − I) − I, r = N/2, B ~ N(0, 1), bilinear
    with dt = 1/L; lastn: a shift register of the last N samples."""
    import torch

    kw = {"dtype": torch.float64, "device": device}
    if kind == "ema":
        a = torch.exp(-1.0 / torch.logspace(0, math.log10(L), N, **kw))
        return torch.diag(a).expand(seeds, N, N), (1 - a).expand(seeds, N)
    if kind == "lastn":
        return torch.diag(torch.ones(N - 1, **kw), -1).expand(seeds, N, N), torch.eye(N, **kw)[0].expand(seeds, N)
    if kind == "random":
        G = torch.stack([torch.randn(N, N, generator=g, dtype=torch.float64) for g in gens]).to(device)
        B = torch.stack([torch.randn(N, generator=g, dtype=torch.float64) for g in gens]).to(device)
        A = N / 2 * (G / math.sqrt(N) - torch.eye(N, **kw)) - torch.eye(N, **kw)
        return discretize(A, B, 1.0 / L, "bilinear")
    raise ValueError(f"unknown baseline {kind!r}")


def kernel(Ad, Bd, L: int):
    """K with c_L = K f for c_k = Ā c_{k−1} + B̄ f_k, c_0 = 0: column k is Ā^(L−k) B̄ (k = 1..L).
    By doubling, [K_m | Ā^m K_m] in lag order: log2 L matmuls, not L.  Ā (..., N, N) -> (..., N, L)."""
    import torch

    K, P = Bd[..., None], Ad  # lags 0..m-1, Ā^m
    while K.shape[-1] < L:
        K, P = torch.cat([K, P @ K], -1), P @ P
    return K[..., :L].flip(-1)


def compose(Ads, us):
    """The affine steps c ↦ Ā_k c + u_k (k = 1..T, in time order) composed into one (Φ, u):
    a balanced tree of batched matmuls, (Ā₂, u₂)∘(Ā₁, u₁) = (Ā₂Ā₁, Ā₂u₁ + u₂).
    Ads (T, N, N), us (T, M, N) (row vectors) -> (N, N), (M, N)."""
    import torch

    while Ads.shape[0] > 1:
        if Ads.shape[0] % 2:  # an identity step in front keeps the pairs aligned
            eye = torch.eye(Ads.shape[-1], dtype=Ads.dtype, device=Ads.device)[None]
            Ads, us = torch.cat([eye, Ads]), torch.cat([torch.zeros_like(us[:1]), us])
        first, then = Ads[0::2], Ads[1::2]
        us = torch.baddbmm(us[1::2], us[0::2], then.transpose(-1, -2))
        Ads = then @ first
    return Ads[0], us[0]


def scan_legs(f, A, B, method: str, budget: int | None = None):
    """LegS's final state c_L, c_k = Ā_k c_{k−1} + B̄_k f_k (k = 1..L, Ā_k from `legs_steps`):
    chunks of steps composed by `compose`, sized to hold ~`budget` numbers (32 MB on CPU,
    512 MB on a GPU).  f (S, B, L) -> (S, B, N)."""
    import torch

    S, Bn, L = f.shape
    N = A.shape[-1]
    budget = budget or (1 << 22 if f.device.type == "cpu" else 1 << 26)
    chunk = max(2, min(L, budget // (N * (N + S * Bn))))
    c = torch.zeros(S * Bn, N, dtype=f.dtype, device=f.device)
    for start in range(0, L, chunk):
        ks = torch.arange(start + 1, min(start + chunk, L) + 1, device=f.device)
        Ads, Bds = legs_steps(A, B, ks, method)  # (T, N, N), (T, N)
        us = f.reshape(S * Bn, L)[:, start:start + len(ks)].T[:, :, None] * Bds[:, None, :]  # (T, S*B, N)
        Phi, u = compose(Ads, us)
        c = c @ Phi.T + u
    return c.view(S, Bn, N)


def relative_mse(fhat, f):
    """‖f̂ − f‖² / ‖f‖² over the whole history, per signal."""
    return ((fhat - f) ** 2).sum(-1) / (f ** 2).sum(-1)


def positions(L: int, device="cpu"):
    """Sample k = 1..L sits at (k − ½)/L of the history (the middle of its step)."""
    import torch

    return (torch.arange(1, L + 1, dtype=torch.float64, device=device) - 0.5) / L


# ----------------------------------------------------------------------------- experiment
def _span(cfg: Config, m: str, N: int) -> float:
    """The length of history memory `m` covers, in units of L0: LagT's lagt_span·N, else 1."""
    return cfg.lagt_span * N if m == "lagt" else 1.0


def _hippo_state(m: str, N: int, f, method: str, cfg: Config, L0: int):
    """HiPPO memory `m` over f (S, B, L): final state (S, B, N) and the span of its basis.
    LTI memories have dt = span / L0: LegT's window θ is L0 steps; LagT's history spans lagt_span·N."""
    A, B = transition(m, N, f.device)
    if m == "legs":
        return scan_legs(f, A, B, method), 1.0
    span = _span(cfg, m, N)
    return f @ kernel(*discretize(A, B, span / L0, method), f.shape[-1]).T, span


def _summarise(ctx, err, families: tuple[str, ...], **tags) -> dict[str, list[float]]:
    """Per-seed means of the relative MSE (S, B) over all signals and per family; logged per seed."""
    per_family = err.view(err.shape[0], len(families), -1).mean(-1)  # (S, F)
    out = {"relmse": err.mean(-1).tolist()}
    out.update({f"relmse_{fam}": per_family[:, i].tolist() for i, fam in enumerate(families)})
    for k in range(err.shape[0]):
        ctx.log(**tags, seed=k, **{key: vals[k] for key, vals in out.items()})
    return out


def memorise(cfg: Config, ctx, f, N: int, families: tuple[str, ...], keep_examples: bool) -> dict:
    """Every memory of state size N on f (S, B, L): HiPPO read out by its basis, baselines by
    least squares, f̂ = pinv(K) K f (the history projected onto their impulse responses)."""
    import torch

    S, _, L = f.shape
    fhats = {}
    for m in MEASURES:
        c, span = _hippo_state(m, N, f, cfg.method, cfg, L)
        fhats[m] = c @ basis(m, N, positions(L, f.device), span).T  # (S, B, L)
    gens = [ctx.generator(f"random-N{N}", k) for k in ctx.seeds]
    for b in BASELINES:
        K = kernel(*baseline(b, N, L, S, gens, f.device), L)  # (S, N, L)
        fhats[b] = (f @ K.transpose(-1, -2)) @ torch.linalg.pinv(K, rtol=cfg.pinv_rtol).transpose(-1, -2)
    errors = {m: _summarise(ctx, relative_mse(fhat, f), families, memory=m, N=N) for m, fhat in fhats.items()}
    if not keep_examples:
        return {"errors": errors, "examples": {}}
    examples = {m: fhat[0, 0].tolist() for m, fhat in fhats.items()}  # seed 0, first signal
    examples["legs_families"] = fhats["legs"][0, :: cfg.signals_per_family].tolist()  # each family's first
    return {"errors": errors, "examples": examples}


def timescale(cfg: Config, ctx, spectra, stretch: int, families: tuple[str, ...]) -> dict:
    """The same signals sampled at L = stretch·L0: LegS over [0, L]; LegT (θ = L0 steps) over its
    window, and nothing (zero) for the older history it cannot hold."""
    import torch
    from mlbench.data import signals

    L0, N = cfg.length, cfg.timescale_n
    f = signals.sample(spectra, stretch * L0, ctx.device)  # (S, B, L)
    legs, _ = _hippo_state("legs", N, f, cfg.method, cfg, L0)
    legt, _ = _hippo_state("legt", N, f, cfg.method, cfg, L0)
    fhats = {"legs": legs @ basis("legs", N, positions(f.shape[-1], f.device)).T, "legt": torch.zeros_like(f)}
    fhats["legt"][..., -L0:] = legt @ basis("legt", N, positions(L0, f.device)).T
    return {m: _summarise(ctx, relative_mse(fhat, f), families, memory=m, stretch=stretch) for m, fhat in fhats.items()}


def discretisations(cfg: Config, ctx, f, families: tuple[str, ...]) -> dict:
    """Every measure x every discretisation at N = disc_n (a non-finite error means divergence)."""
    out, N, L = {}, cfg.disc_n, f.shape[-1]
    for mth in METHODS:
        for m in MEASURES:
            c, span = _hippo_state(m, N, f, mth, cfg, L)
            err = relative_mse(c @ basis(m, N, positions(L, f.device), span).T, f)
            out[f"{m}-{mth}"] = _summarise(ctx, err, families, memory=m, method=mth, N=N)
    return out


def _plot_ns(cfg: Config) -> tuple[int, ...]:
    ns = sorted(cfg.n_grid)
    return tuple(dict.fromkeys((ns[0], ns[len(ns) // 2], ns[-1])))


def run(cfg: Config, ctx) -> dict:
    from mlbench.data import signals

    families = ("bandlimited",) if cfg.negative_control else tuple(cfg.families)
    cutoff = cfg.length / 2 if cfg.negative_control else cfg.cutoff_hz  # white noise up to Nyquist
    spectra = signals.load(ctx.cache_dir, [ctx.seed("signals", k) for k in ctx.seeds], families,
                           cfg.signals_per_family, cutoff, walk_terms=cfg.length // 2)
    f = signals.sample(spectra, cfg.length, ctx.device)  # (S, B, L0)
    m: dict[str, dict[str, list[float]]] = {}
    examples = {}
    for N in ctx.track(sorted(cfg.n_grid), "memorise: error vs N"):
        res = ctx.unit(f"memorise-N{N}", lambda N=N: memorise(cfg, ctx, f, N, families, N in _plot_ns(cfg)))
        examples[N] = res["examples"]
        for mem, metrics in res["errors"].items():
            m[arm(mem, N)] = {**metrics, "log10_relmse": [math.log10(v) for v in metrics["relmse"]]}
    for b in BASELINES:  # per seed: mean over N of log(error LegS / error baseline)
        ratios = [[math.log(a / c) for a, c in zip(m[arm("legs", n)]["relmse"], m[arm(b, n)]["relmse"])] for n in cfg.n_grid]
        m[f"legs-vs-{b}"] = {"mean_log_ratio": [sum(col) / len(col) for col in zip(*ratios)]}
    for s in ctx.track(sorted(cfg.stretches), "timescale: stretched signals"):
        res = ctx.unit(f"timescale-x{s}", lambda s=s: timescale(cfg, ctx, spectra, s, families))
        m.update({f"{mem}@x{s}": metrics for mem, metrics in res.items()})
    m.update(ctx.unit("discretisation", lambda: discretisations(cfg, ctx, f, families)))
    _save_operators(cfg, ctx)
    _report(cfg, ctx, m, f[0, :: cfg.signals_per_family].tolist(), examples, families)
    return m


def _save_operators(cfg: Config, ctx) -> None:
    """Checkpoints at the largest N: A, B, the discretised Ā, B̄ (LegS: its step at k = L0), the basis."""
    import torch

    N, L = max(cfg.n_grid), cfg.length
    for m in MEASURES:
        A, B = transition(m, N, ctx.device)
        span = _span(cfg, m, N)
        if m == "legs":
            Ad, Bd = (t[0] for t in legs_steps(A, B, torch.tensor([L]), cfg.method))
        else:
            Ad, Bd = discretize(A, B, span / L, cfg.method)
        ctx.save_checkpoint(f"{m}-N{N}", {"A": A, "B": B, "A_bar": Ad, "B_bar": Bd,
                                          "basis": basis(m, N, positions(L, ctx.device), span)},
                            {"measure": m, "N": str(N), "method": cfg.method, "length": str(L), "span": str(span)})


# ----------------------------------------------------------------------------- tables, plots

def _tables(cfg: Config, ctx, m: dict, families: tuple[str, ...]) -> None:
    ns, memories = sorted(cfg.n_grid), MEASURES + BASELINES
    ctx.table([{"N": n, **{mem: mean(m[arm(mem, n)]["relmse"]) for mem in memories}} for n in ns],
              title=f"Relative MSE of the reconstructed history vs state size N (L={cfg.length}, {cfg.method}; "
              f"mean over {len(ctx.seeds)} seeds x {len(families)} families x {cfg.signals_per_family} signals)")
    ctx.table([{"memory": mem, "N": n, **{fam: mean(m[arm(mem, n)][f"relmse_{fam}"]) for fam in families}}
               for mem in memories for n in ns], name="families", title="Relative MSE by signal family")
    ctx.table([{"stretch": s, "steps": s * cfg.length, **{k: mean(m[f"{k}@x{s}"]["relmse"]) for k in ("legs", "legt")}}
               for s in sorted(cfg.stretches)], name="timescale",
              title=f"Timescale: the signals sampled at s x L0 steps (N={cfg.timescale_n}; LegT window = L0 steps)")
    ctx.table([{"measure": k, **{mth: mean(m[f"{k}-{mth}"]["relmse"]) for mth in METHODS}} for k in MEASURES],
              name="discretisation", title=f"Relative MSE by discretisation (N={cfg.disc_n}, L={cfg.length})")


def _report(cfg: Config, ctx, m: dict, signals: list, examples: dict, families: tuple[str, ...]) -> None:
    from mlbench.core.plotting import figure

    _tables(cfg, ctx, m, families)
    ns, plot_ns, L = sorted(cfg.n_grid), _plot_ns(cfg), cfg.length
    x = positions(L).tolist()
    fig, ax = figure(2, 2, width=5.5, height=3.2)
    panels = [(fam, signals[i], {f"LegS N={n}": examples[n]["legs_families"][i] for n in plot_ns})
              for i, fam in enumerate(families[:3])]
    n_mid = plot_ns[len(plot_ns) // 2]
    panels.append((f"{families[0]}: every memory at N={n_mid}", signals[0], {k: examples[n_mid][k] for k in MEASURES + BASELINES}))
    for a, (title, sig, lines) in zip([a for row in ax for a in row], panels):
        a.plot(x, sig, "k", lw=1.4, label="signal")
        for label, ys in lines.items():
            a.plot(x, ys, lw=0.8, label=label)
        a.set(title=f"{title} (seed 0)", xlabel="s / t (0 = start, 1 = now)")
        a.legend(fontsize="x-small", ncol=2)
    fig.tight_layout()
    ctx.plot("reconstruction", fig)

    fig, ax = figure(1, 1)
    for mem in MEASURES + BASELINES:
        ax[0][0].plot(ns, [mean(m[arm(mem, n)]["relmse"]) for n in ns], "o-" if mem in MEASURES else "s--", label=mem)
    ax[0][0].axhline(cfg.max_error, color="grey", lw=0.8, ls=":")
    ax[0][0].set(yscale="log", xlabel="state size N", ylabel="relative MSE of the history",
                 title=f"error vs N (L={L}, {cfg.method})")
    ax[0][0].set_xscale("log", base=2)
    ax[0][0].legend(fontsize="small")
    ctx.plot("error_vs_n", fig)

    fig, ax = figure(1, 1)
    ss = sorted(cfg.stretches)
    for mem in ("legs", "legt"):
        ax[0][0].plot(ss, [mean(m[f"{mem}@x{s}"]["relmse"]) for s in ss], "o-", label=mem)
    ax[0][0].set(xscale="log", yscale="log", xlabel=f"stretch s (history = s x {L} steps)", ylabel="relative MSE",
                 title=f"timescale robustness, N={cfg.timescale_n}")
    ax[0][0].legend()
    ctx.plot("error_vs_stretch", fig)
