"""ddpm-vs-sde: DDPM is a discretised VP-SDE; one ε-network, four samplers.

Shows (Ho et al. 2020; Song et al. 2021, §3-4 and Table 1; seed documents 000-002):

1. Forward process. DDPM's β_i = linspace(β_min/N, β_max/N, N) (N=1000: 1e-4 … 0.02) gives
   ᾱ_i = Π_{j≤i}(1 − β_j); the VP-SDE dx = −½β(t)x dt + sqrt(β(t)) dw with
   β(t) = β_min + t(β_max − β_min) has x_t = α(t)x_0 + σ(t)ε,
   log α(t) = −¼t²(β_max − β_min) − ½tβ_min, σ² = 1 − α².
   Then ᾱ_i = α(i/N)² + O(1/N): checked in closed form over N and by simulating the chain.
2. One ε-network ε_θ(x, t) (continuous t, simple loss ‖ε_θ(α x_0 + σ ε, t) − ε‖²) with score
   s = −ε_θ/σ(t), sampled four ways: DDPM ancestral x ← (x + β_i s)/sqrt(1 − β_i) + sqrt(β_i) z;
   reverse-SDE Euler–Maruyama on dx = [f − g²s]dt + g dw̄; predictor-corrector (Langevin step
   2α_i(r‖z‖/‖s‖)², then reverse diffusion x ← (2 − sqrt(1 − β_i))x + β_i s + sqrt(β_i) z); and
   the probability-flow ODE dx/dt = f − ½g²s (Euler; Heun and adaptive RK45 via scipy).
   Quality: MMD to fresh data (Gaussian-kernel mixture, random Fourier features) next to its
   noise floor (fresh data vs data), against network evaluations (NFE; PC and Heun: 2 per step);
   sliced W2 and, for 8 Gaussians, the per-mode std (true 0.1) are reported too.
3. Over seeds: at high NFE the stochastic samplers reach the floor and agree (headline); at
   low NFE the PF-ODE beats the stochastic samplers; at high NFE the SDE samplers beat the
   PF-ODE (Table 1); adaptive RK45 matches many-step Euler with far fewer NFE.

One time grid t_k = linspace(1, eps, K+1) serves all samplers; a discrete step t -> s uses the
exact β = 1 − ᾱ(t)/ᾱ(s), so any K is valid, and the last step returns the noise-free mean. All
samplers of a seed start from the same x_T; ancestral, EM and the PC predictor with the same K
share their noise (common random numbers). Seeds train as one batched ensemble (stacked
weights, bmm) and are sampled together. Agreement is judged in units of the floor, not as a
ratio: near the floor an MMD is mostly sampling noise and a log-ratio of two of them is noisy.

Measured (quick on CPU, and full on an H100): the PF-ODE beats EM and PC at NFE 10 but NOT
DDPM's ancestral sampler, which (exact-β respacing, last step a Tweedie denoise) ties or wins,
also with the exact score of the 8 Gaussians, so `ode-low-nfe` does not reproduce as stated.
Heun is worse than Euler at NFE <= 20 (probably: its second call lands at t = eps, where the
score is stiff). The SDE samplers beat the ODE at high NFE: its mode weights inherit the
network's errors, which the SDEs' noise partly corrects.
Training samples t = eps + (1 − eps)u² (quick; t_power=2) rather than the paper's uniform t: the
same minimiser E[ε | x_t], 3x more samples where the modes are learnt; full uses uniform t.

Run: `mlbench run ddpm-vs-sde` (quick, CPU; --set dataset=moons|swissroll|checkerboard);
`--profile full --device cuda` for a bigger network, more data and a finer NFE grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mlbench.core.config import param
from mlbench.core.verdict import AllOf, Claim, Equivalent, Paired, Threshold, Trend, mean

VERSION = 1
THREADS = 1  # measured: quick run 25 s with 1 thread vs 66 s with 2 on a loaded 2-core CPU
CITATION = "Song et al. 2021 (ICLR), §4, Table 1"
CORE_SAMPLERS = ("ancestral", "em", "pc", "ode-euler")
SAMPLERS = {"ancestral": 1, "ancestral-posterior": 1, "em": 1, "pc": 2, "ode-euler": 1, "ode-heun": 2}  # NFE/step
STOCHASTIC = ("ancestral", "em", "pc")
CHAIN_STEPS = (10, 50, 100, 250, 500, 750, 1000)  # DDPM steps i (t = i/1000) of the marginal table


@dataclass(frozen=True)
class Config:
    dataset: Literal["8gaussians", "moons", "swissroll", "checkerboard"] = param(
        "8gaussians", "2-D toy data (mlbench/data/toy2d.py)")
    n_train: int = param(20000, "training points per seed (a fixed set, as a real dataset would be)")
    beta_min: float = param(0.1, "VP-SDE β(0); DDPM β_1 = β_min/N")
    beta_max: float = param(20.0, "VP-SDE β(1); DDPM β_N = β_max/N (N=1000: 0.02)")
    eps: float = param(1e-3, "smallest time: σ(t) -> 0 at t=0, so train and sample on [eps, 1]")
    hidden: int = param(64, "MLP width, 3 hidden SiLU layers (pilot 128: 64 is close at a third of the cost)")
    time_features: int = param(32, "Fourier features of t fed to the MLP")
    train_steps: int = param(2500, "Adam steps, cosine decay (pilot: 3-8k)")
    batch_size: int = param(512, "training points per step and seed")
    lr: float = param(5e-3, "Adam peak learning rate (pilot 2e-3; 5e-3 learns faster in this budget)")
    t_power: float = param(2.0, "training t = eps + (1 − eps)u^p, u ~ U(0,1); p=1: the paper's uniform t")
    nfe_grid: tuple[int, ...] = param((10, 20, 50, 200), "network evaluations per sample; min: 'low', max: 'high' NFE")
    samplers: tuple[str, ...] = param(CORE_SAMPLERS, f"samplers on the NFE grid, from: {', '.join(SAMPLERS)}")
    rk45_tol: float = param(1e-3, "rtol = atol of the adaptive PF-ODE solver (score_sde: 1e-5)")
    snr: float = param(0.16, "Langevin corrector signal-to-noise ratio r (score_sde default)")
    n_eval: int = param(2000, "samples per sampler and seed")
    n_reference: int = param(20000, "fresh data points per seed that samples are compared with")
    floor_draws: int = param(8, "fresh data sets of n_eval points averaged into the noise floor")
    bandwidths: tuple[float, ...] = param((0.05, 0.1, 0.2, 0.4, 0.8), "MMD: Gaussian kernel widths (mixture)")
    fourier_features: int = param(1024, "MMD: random frequencies (per seed, fixed)")
    projections: int = param(64, "sliced W2: random directions (per seed, fixed)")
    marginal_steps: tuple[int, ...] = param((10, 100, 1000, 10000), "DDPM step counts N of the O(1/N) marginal check")
    n_mc: int = param(4000, "points per seed pushed through the 1000-step DDPM chain")
    near_floor: float = param(2.0, "high-NFE MMD must be below this multiple of the floor")
    agree_margin: float = param(0.5, "samplers agree when their MMDs differ by less than this many floors (TOST)")
    negative_control: bool = param(False, "sample from the untrained network: the headline must then NOT reproduce")

    def validate(self) -> None:
        if set(self.samplers) - set(SAMPLERS) or not set(CORE_SAMPLERS) <= set(self.samplers):
            raise ValueError(f"samplers must include {', '.join(CORE_SAMPLERS)}; others: {', '.join(SAMPLERS)}")
        if min(self.nfe_grid) < 2 or len(set(self.nfe_grid)) < 2:
            raise ValueError("nfe_grid needs at least two distinct values >= 2")
        if 1000 not in self.marginal_steps or min(self.marginal_steps) < 2:
            raise ValueError("marginal_steps must include 1000 (DDPM's N) and be >= 2")
        if not 0 < self.eps < 1 or not 0 < self.beta_min < self.beta_max or min(self.bandwidths) <= 0:
            raise ValueError("need 0 < eps < 1, 0 < beta_min < beta_max and positive bandwidths")
        if self.n_reference < self.n_eval:
            raise ValueError("n_reference must be >= n_eval")
        for name in ("n_train", "hidden", "time_features", "batch_size", "n_eval", "projections", "n_mc",
                     "fourier_features", "floor_draws"):
            if getattr(self, name) < (1 if name == "floor_draws" else 2):
                raise ValueError(f"{name} is too small")


def arm(sampler: str, nfe: int) -> str:
    return f"{sampler}@nfe{nfe}"


def claims(cfg: Config) -> list[Claim]:
    lo, hi, ns = min(cfg.nfe_grid), max(cfg.nfe_grid), sorted(cfg.marginal_steps)
    agree = lambda a, b: Equivalent("mmd_over_floor", a, b, cfg.agree_margin)
    return [
        Claim("samplers", f"One ε-network serves every stochastic sampler: at NFE={hi} ancestral, EM and PC each "
              f"reach MMD < {cfg.near_floor:g}x the data-vs-data floor, and EM and PC agree with ancestral "
              f"(MMDs within ±{cfg.agree_margin:g} floor)", CITATION,
              AllOf((*(Threshold("mmd_over_floor", arm(s, hi), cfg.near_floor) for s in STOCHASTIC),
                     agree(arm("em", hi), arm("ancestral", hi)), agree(arm("pc", hi), arm("ancestral", hi))))),
        Claim("ode-low-nfe", f"At low NFE ({lo}) the deterministic PF-ODE (Euler) has lower MMD than every "
              "stochastic sampler (ancestral, EM, PC) at equal NFE", "Song et al. 2021, §4.3; Song, Meng, Ermon 2021",
              AllOf(tuple(Paired("mmd", arm(s, lo), arm("ode-euler", lo), log_ratio=True) for s in STOCHASTIC))),
        Claim("sde-beats-ode", f"At high NFE ({hi}) the SDE samplers beat the PF-ODE (lower MMD than Euler ODE), "
              "as in Table 1's P1000 column", "Song et al. 2021, Table 1",
              Paired("mmd", arm("ode-euler", hi), arm("ancestral", hi), log_ratio=True)),
        Claim("rk45", f"Adaptive RK45 on the PF-ODE (tol {cfg.rk45_tol:g}) matches the {hi}-step Euler ODE "
              f"(MMDs within ±{cfg.agree_margin:g} floor) with fewer than {hi // 2} evaluations",
              "Song et al. 2021, §4.3",
              AllOf((agree("ode-rk45", arm("ode-euler", hi)),
                     Threshold("nfe", "ode-rk45", hi / 2)))),
        Claim("marginals", "DDPM's forward process (linear β, N=1000) has the VP-SDE's marginals: "
              "max|ᾱ_i − α(i/N)²| < 0.005, shrinking as O(1/N), and the simulated chain matches α(t), σ(t) "
              "within 0.05",
              "Song et al. 2021, §3.4; Ho et al. 2020",
              AllOf((Threshold("max_abs_err", "ddpm-N1000", 0.005),
                     Trend("log10_max_err", tuple(f"ddpm-N{n}" for n in ns), tuple(math.log10(n) for n in ns),
                           "less", -0.8, x_label="log10 N"),
                     Threshold("mc_max_err", "ddpm-chain", 0.05)))),
    ]


CLAIMS = claims(Config())


# ----------------------------------------------------------------------------- the VP-SDE
def beta_t(t, cfg: Config):
    """β(t) = β_min + t(β_max − β_min)."""
    return cfg.beta_min + t * (cfg.beta_max - cfg.beta_min)


def log_alpha(t, cfg: Config):
    """log α(t) = −¼t²(β_max − β_min) − ½tβ_min, the log mean coefficient of x_t given x_0."""
    return -0.25 * t**2 * (cfg.beta_max - cfg.beta_min) - 0.5 * t * cfg.beta_min


def marginal_prob(t: float, cfg: Config) -> tuple[float, float]:
    """(α(t), σ(t)) with x_t = α(t)x_0 + σ(t)ε and σ² = 1 − α²."""
    la = log_alpha(t, cfg)
    return math.exp(la), math.sqrt(-math.expm1(2 * la))


def ddpm_betas(n_steps: int, cfg: Config):
    """DDPM's β_i = linspace(β_min/N, β_max/N, N), i = 1..N (1e-4..0.02 at N = 1000). (N,) float64."""
    import torch

    return torch.linspace(cfg.beta_min / n_steps, cfg.beta_max / n_steps, n_steps, dtype=torch.float64)


def ddpm_alpha_bar(n_steps: int, cfg: Config):
    """ᾱ_i = Π_{j≤i}(1 − β_j), i = 1..N. (N,) float64."""
    import torch

    return torch.cumprod(1 - ddpm_betas(n_steps, cfg), 0)


def step_beta(t: float, s: float, cfg: Config) -> float:
    """Exact discrete β for a step t -> s < t: 1 − ᾱ(t)/ᾱ(s) (= β_i when s, t are DDPM's grid)."""
    return -math.expm1(2 * (log_alpha(t, cfg) - log_alpha(s, cfg)))


def posterior_variance(t: float, s: float, cfg: Config) -> float:
    """Var(x_s | x_t, x_0) = β̃ = β(1 − ᾱ_s)/(1 − ᾱ_t) for s < t, with β = step_beta(t, s)."""
    return step_beta(t, s, cfg) * (marginal_prob(s, cfg)[1] / marginal_prob(t, cfg)[1]) ** 2


def marginal_stats(cfg: Config, x0, gen) -> dict:
    """Closed-form max_i |ᾱ_i − α(i/N)²| for each N in `marginal_steps`, and the N=1000 DDPM chain
    x_i = sqrt(1 − β_i) x_{i−1} + sqrt(β_i) z simulated from x0 (n, D): at CHAIN_STEPS, the
    least-squares coefficient c of E[x_i | x_0] = c x_0 and the residual std (JSON-able lists)."""
    import torch

    errs = []
    for n in cfg.marginal_steps:
        t = torch.arange(1, n + 1, dtype=torch.float64) / n
        errs.append((ddpm_alpha_bar(n, cfg) - torch.exp(2 * log_alpha(t, cfg))).abs().max().item())
    betas = ddpm_betas(1000, cfg)
    keep, noise = (1 - betas).sqrt(), betas.sqrt()
    x0 = x0.double()
    x, coef, std = x0.clone(), [], []
    for i in range(1, 1001):
        z = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        x = keep[i - 1] * x + noise[i - 1] * z
        if i in CHAIN_STEPS:
            c = (x * x0).sum() / (x0 * x0).sum()
            coef.append(c.item())
            std.append((x - c * x0).std().item())
    return {"max_abs_err": errs, "chain_steps": list(CHAIN_STEPS), "chain_coef": coef, "chain_std": std}


# ----------------------------------------------------------------------------- the ε-network
def init_params(cfg: Config, dim: int, gens: list) -> dict:
    """Stacked MLP weights for S seeds: [x, features(t)] -> 3 x hidden (SiLU) -> dim; nn.Linear init."""
    import torch

    H = cfg.hidden
    sizes = [(dim + cfg.time_features, H), (H, H), (H, H), (H, dim)]
    params = {}
    for layer, (fan_in, fan_out) in enumerate(sizes):
        bound = 1 / math.sqrt(fan_in)
        for name, shape in ((f"w{layer}", (fan_in, fan_out)), (f"b{layer}", (1, fan_out))):
            params[name] = torch.stack([(2 * torch.rand(shape, generator=g) - 1) * bound for g in gens])  # (S, ...)
    return params


def time_embedding(t, n: int):
    """[sin(ω t), cos(ω t)] with ω geometric in [1, 1000]: (..., ) -> (..., n)."""
    import torch

    omega = torch.logspace(0, 3, n // 2, dtype=t.dtype, device=t.device)
    arg = t[..., None] * omega
    return torch.cat([arg.sin(), arg.cos()], -1)


def eps_net(params: dict, x, t, n_features: int):
    """ε_θ(x, t) for S stacked networks: x (S, B, D), t (S, B) or (S, 1) -> (S, B, D)."""
    import torch
    import torch.nn.functional as F

    dim = x.shape[-1]
    w0 = params["w0"]
    h = torch.baddbmm(params["b0"], x, w0[:, :dim]) + time_embedding(t, n_features) @ w0[:, dim:]  # (S, B, H)
    for layer in (1, 2):
        h = torch.baddbmm(params[f"b{layer}"], F.silu(h), params[f"w{layer}"])
    return torch.baddbmm(params["b3"], F.silu(h), params["w3"])


def score_fn(params: dict, cfg: Config):
    """s(x, t) = −ε_θ(x, t)/σ(t) for a scalar t in [eps, 1]."""
    def score(x, t: float):
        sigma = marginal_prob(t, cfg)[1]
        return -eps_net(params, x, x.new_full((x.shape[0], 1), t), cfg.time_features) / sigma
    return score


def adam_step(params: dict, grads: dict, moments: dict, step: int, lr: float,
              betas: tuple = (0.9, 0.999), eps: float = 1e-8) -> None:
    """One Adam step (Kingma & Ba; = torch.optim.Adam's defaults), in place. Elementwise, so on
    stacked weights it is S independent optimisers. Written out: torch.optim costs ~2 s to import."""
    import torch

    b1, b2 = betas
    with torch.no_grad():
        for name, p in params.items():
            m, v = moments[name]
            m.mul_(b1).add_(grads[name], alpha=1 - b1)
            v.mul_(b2).addcmul_(grads[name], grads[name], value=1 - b2)
            denom = (v / (1 - b2**step)).sqrt_().add_(eps)
            p.addcdiv_(m, denom, value=-lr / (1 - b1**step))


def train(cfg: Config, ctx, data) -> dict:
    """Simple-loss ε-prediction, all seeds at once; saves one checkpoint per seed. data: (S, N, D)."""
    import torch

    S, N, D = data.shape
    dev = ctx.device
    init = init_params(cfg, D, [ctx.generator("init", k) for k in ctx.seeds])
    params = {k: v.to(dev).requires_grad_(True) for k, v in init.items()}
    data = data.to(dev)
    steps = 0 if cfg.negative_control else cfg.train_steps
    gens = [ctx.generator("train-batches", k) for k in ctx.seeds]
    moments = {n: (torch.zeros_like(p), torch.zeros_like(p)) for n, p in params.items()}
    losses = []
    for step in ctx.track(range(steps), f"train {S} ε-networks"):
        idx = torch.stack([torch.randint(N, (cfg.batch_size,), generator=g) for g in gens]).to(dev)  # (S, B)
        u = torch.stack([torch.rand(cfg.batch_size, generator=g) for g in gens]).to(dev)
        t = u ** cfg.t_power * (1 - cfg.eps) + cfg.eps
        z = torch.stack([torch.randn(cfg.batch_size, D, generator=g) for g in gens]).to(dev)  # (S, B, D)
        la = log_alpha(t, cfg)[..., None]
        x_t = la.exp() * data.gather(1, idx[..., None].expand(-1, -1, D)) + (-torch.expm1(2 * la)).sqrt() * z
        per_seed = ((eps_net(params, x_t, t, cfg.time_features) - z) ** 2).mean((1, 2))  # (S,)
        grads = torch.autograd.grad(per_seed.sum(), list(params.values()))  # seeds share no weights
        adam_step(params, dict(zip(params, grads)), moments, step + 1,
                  cfg.lr * 0.5 * (1 + math.cos(math.pi * step / steps)))
        if step % 100 == 0 or step == steps - 1:
            losses.append([step, *per_seed.tolist()])
            for k in ctx.seeds:
                ctx.log(arm="train", seed=k, step=step, loss=losses[-1][1 + k])
    for k in ctx.seeds:
        ctx.save_checkpoint(f"eps-net-seed{k}", {n: p[k] for n, p in params.items()},
                            {"seed_index": str(k), "dataset": cfg.dataset})
    return {"losses": losses}


def load_params(ctx, device) -> dict:
    """The trained ensemble back from its safetensors checkpoints (also when `train` was resumed)."""
    import torch

    per_seed = [ctx.load_checkpoint(f"eps-net-seed{k}") for k in ctx.seeds]
    return {n: torch.stack([p[n] for p in per_seed]).to(device) for n in per_seed[0]}  # (S, ...)


# ----------------------------------------------------------------------------- samplers
def pf_drift(score, x, t: float, cfg: Config):
    """Probability-flow ODE drift f − ½g²s = −½β(t)(x + s(x, t))."""
    return -0.5 * beta_t(t, cfg) * (x + score(x, t))


def _noise(gens: list, like):
    import torch

    return torch.stack([torch.randn(like.shape[1:], generator=g) for g in gens]).to(like.device)  # (S, n, D)


def sample(name: str, score, x, steps: int, cfg: Config, gens: list, corrector_gens: list):
    """Integrate x (S, n, D) ~ N(0, I) from t=1 down to t=eps in `steps` steps of sampler `name`."""
    ts = [1 + (cfg.eps - 1) * k / steps for k in range(steps + 1)]
    for k in range(steps):
        t, s, last = ts[k], ts[k + 1], k == steps - 1
        b, beta, dt = beta_t(t, cfg), step_beta(t, s, cfg), s - t  # dt < 0
        if name == "ode-euler":
            x = x + pf_drift(score, x, t, cfg) * dt
            continue
        if name == "ode-heun":  # trapezoid with an Euler predictor
            d1 = pf_drift(score, x, t, cfg)
            x = x + 0.5 * (d1 + pf_drift(score, x + d1 * dt, s, cfg)) * dt
            continue
        if name == "pc":  # Langevin corrector at t (score_sde: batch-mean norms), then reverse diffusion
            grad, z = score(x, t), _noise(corrector_gens, x)
            ratio = z.norm(dim=-1).mean(-1) / grad.norm(dim=-1).mean(-1)  # (S,)
            step = (2 * (1 - beta) * (cfg.snr * ratio) ** 2)[:, None, None]
            x = x + step * grad + (2 * step).sqrt() * z
            mean, std = (2 - math.sqrt(1 - beta)) * x + beta * score(x, t), math.sqrt(beta)
        elif name == "em":  # x + [f − g²s]dt + g sqrt(|dt|) z
            mean, std = x + (-0.5 * b * x - b * score(x, t)) * dt, math.sqrt(-b * dt)
        else:  # ancestral: σ² = β, or the posterior variance β̃ = β(1 − ᾱ_s)/(1 − ᾱ_t)
            mean = (x + beta * score(x, t)) / math.sqrt(1 - beta)
            std = math.sqrt(beta if name == "ancestral" else posterior_variance(t, s, cfg))
        x = mean if last else mean + std * _noise(gens, x)
    return x


def rk45(params: dict, x_T, cfg: Config) -> tuple:
    """PF-ODE from t=1 to eps by scipy's adaptive Dormand–Prince RK45, one seed at a time.

    Returns samples (S, n, D) and the network evaluations (nfev) per seed."""
    import numpy as np
    import torch
    from scipy.integrate import solve_ivp

    out, nfe = [], []
    for k in range(x_T.shape[0]):
        score = score_fn({n: p[k:k + 1] for n, p in params.items()}, cfg)

        def drift(t, y):
            x = torch.from_numpy(y).to(x_T.device, torch.float32).view(1, *x_T.shape[1:])
            with torch.no_grad():
                return pf_drift(score, x, float(t), cfg).double().cpu().numpy().ravel()

        sol = solve_ivp(drift, (1.0, cfg.eps), x_T[k].double().cpu().numpy().ravel(), method="RK45",
                        rtol=cfg.rk45_tol, atol=cfg.rk45_tol)
        out.append(torch.from_numpy(np.ascontiguousarray(sol.y[:, -1])).float().view(x_T.shape[1:]))
        nfe.append(float(sol.nfev))
    return torch.stack(out).to(x_T.device), nfe


# ----------------------------------------------------------------------------- quality
def fourier_mean(x, omega):
    """Empirical characteristic function at frequencies ω: mean_i [cos ω·x_i, sin ω·x_i].

    x (S, n, D), omega (S, D, F) -> (S, 2F)."""
    import torch

    total = 0
    for chunk in x.split(4096, dim=1):  # bounded memory for large reference sets
        arg = chunk @ omega  # (S, c, F)
        total = total + torch.cat([arg.cos(), arg.sin()], -1).sum(1)
    return total / x.shape[1]


def mmd(x, ref_features, omega):
    """MMD with the kernel k(x, y) = mean_h exp(−‖x − y‖²/2h²), by random Fourier features ω ~ N(0, I/h²):
    MMD² = mean_j |φ_x(ω_j) − φ_ref(ω_j)|² (a V-statistic: ≥ 0, with an O(1/n) floor). -> (S,)"""
    return ((fourier_mean(x, omega) - ref_features) ** 2).sum(-1).div(omega.shape[-1]).sqrt()


def reference_quantiles(ref, proj, n: int):
    """Quantiles at levels (i + ½)/n of the reference data projected on each direction. -> (S, n, P)"""
    import torch

    idx = ((torch.arange(n, device=ref.device) + 0.5) * ref.shape[1] / n).long()
    return (ref @ proj).sort(1).values[:, idx]


def sliced_w2(x, ref_q, proj):
    """Sliced Wasserstein-2: sqrt(mean over directions of ∫(F_x⁻¹ − F_ref⁻¹)²) from sorted projections.

    x (S, n, D); ref_q (S, n, P) from `reference_quantiles`; proj (S, D, P) unit directions -> (S,)."""
    return (((x @ proj).sort(1).values - ref_q) ** 2).mean((1, 2)).sqrt()


def mode_std(x):
    """8 Gaussians: RMS distance to the nearest centre over sqrt(2) (true value 0.1). x (S, n, 2) -> (S,)."""
    import torch

    from mlbench.data.toy2d import ring_centres

    centres = torch.as_tensor(ring_centres(), dtype=x.dtype, device=x.device)
    return (((x[:, :, None, :] - centres) ** 2).sum(-1).min(-1).values.mean(1) / 2).sqrt()


def quality(cfg: Config, x, ev: dict) -> dict:
    """Per-seed lists: MMD (and its ratio to the floor), sliced W2, mode_std. NaN if diverged."""
    import torch

    finite = torch.isfinite(x).flatten(1).all(1)  # (S,)
    x = torch.where(finite[:, None, None], x, 0)
    nan = lambda v: torch.where(finite, v, torch.nan)
    d = nan(mmd(x, ev["ref_features"], ev["omega"]))
    out = {"mmd": d.tolist(), "mmd_over_floor": (d / ev["floor"]).tolist(),
           "sw2": nan(sliced_w2(x, ev["ref_q"], ev["proj"])).tolist()}
    if cfg.dataset == "8gaussians":
        out["mode_std"] = nan(mode_std(x)).tolist()
    return out


def evaluator(cfg: Config, ctx, ref, fresh) -> dict:
    """Fixed per-seed frequencies, directions and reference statistics; the floor = mean MMD of fresh data."""
    import torch

    S, _, dim = ref.shape
    gens = [ctx.generator("metric", k) for k in ctx.seeds]
    h = torch.tensor(cfg.bandwidths)
    omega = torch.stack([torch.randn(dim, cfg.fourier_features, generator=g)
                         / h[torch.randint(len(h), (cfg.fourier_features,), generator=g)] for g in gens])
    proj = torch.stack([torch.randn(dim, cfg.projections, generator=g) for g in gens])
    proj = torch.nn.functional.normalize(proj, dim=1)
    omega, proj = omega.to(ref.device), proj.to(ref.device)  # (S, D, F), (S, D, P)
    ev = {"omega": omega, "ref_features": fourier_mean(ref, omega), "proj": proj,
          "ref_q": reference_quantiles(ref, proj, cfg.n_eval)}
    ev["floor"] = torch.stack([mmd(f, ev["ref_features"], omega) for f in fresh.unbind(1)]).mean(0)  # (S,)
    return ev


# ----------------------------------------------------------------------------- the run
def sample_at(nfe: int, cfg: Config, ctx, params, x_T, ev: dict, keep: int) -> dict:
    """Every sampler at one NFE budget: quality per seed, and `keep` points of seed 0 for the scatter."""
    import torch

    out = {}
    for name in cfg.samplers:
        steps = nfe // SAMPLERS[name]
        gens = [ctx.generator(f"noise-K{steps}", k) for k in ctx.seeds]  # shared by ancestral, EM, PC
        corrector = [ctx.generator(f"corrector-K{steps}", k) for k in ctx.seeds]
        with torch.no_grad():
            x = sample(name, score_fn(params, cfg), x_T, steps, cfg, gens, corrector)
        out[name] = {**quality(cfg, x, ev), "steps": steps, "points": x[0, :keep].tolist()}
    return out


def run(cfg: Config, ctx) -> dict:
    import torch

    from mlbench.data import toy2d

    def data(name: str, n: int):  # (S, n, D): each seed its own draw, built once with `datasets`
        per_seed = [toy2d.load(cfg.dataset, n, ctx.seed(name, k), ctx.cache_dir) for k in ctx.seeds]
        return torch.stack(per_seed).to(ctx.device)

    train_data = data("train-data", cfg.n_train)
    fresh = data("floor-data", cfg.floor_draws * cfg.n_eval).unflatten(1, (cfg.floor_draws, cfg.n_eval))
    ev = evaluator(cfg, ctx, data("reference-data", cfg.n_reference), fresh)
    marg = ctx.unit("marginals", lambda: [marginal_stats(cfg, train_data[i, :cfg.n_mc].cpu(), ctx.generator("chain", k))
                                          for i, k in enumerate(ctx.seeds)])
    losses = ctx.unit("train", lambda: train(cfg, ctx, train_data))["losses"]
    params = load_params(ctx, ctx.device)
    x_T = torch.stack([torch.randn(cfg.n_eval, train_data.shape[-1], generator=ctx.generator("prior", k))
                       for k in ctx.seeds]).to(ctx.device)  # (S, n, D): the same x_T for every sampler
    keep = min(cfg.n_eval, 600)
    m = {"data-floor": {**quality(cfg, fresh[:, 0], ev), "mmd": ev["floor"].tolist(),
                        "mmd_over_floor": [1.0] * len(ctx.seeds)}}
    points = {"data": fresh[0, 0, :keep].tolist()}
    for nfe in ctx.track(sorted(cfg.nfe_grid), "sample (NFE grid)"):
        res = ctx.unit(f"sample-nfe{nfe}", lambda nfe=nfe: sample_at(nfe, cfg, ctx, params, x_T, ev, keep))
        for name, r in res.items():
            m[arm(name, nfe)] = {k: v for k, v in r.items() if k not in ("points", "steps")}
            points[arm(name, nfe)] = r["points"]
            for k in ctx.seeds:
                metrics = {q: v[k] for q, v in m[arm(name, nfe)].items()}
                ctx.log(arm=arm(name, nfe), seed=k, nfe=nfe, steps=r["steps"], **metrics)

    def adaptive():
        x, nfe = rk45(params, x_T, cfg)
        return {**quality(cfg, x, ev), "nfe": nfe, "points": x[0, :keep].tolist()}

    m["ode-rk45"] = ctx.unit("rk45", adaptive)
    points["ode-rk45"] = m["ode-rk45"].pop("points")
    m.update(_marginal_measurements(cfg, len(ctx.seeds), marg))
    _report(cfg, ctx, m, marg, points, losses)
    return m


def _marginal_measurements(cfg: Config, seeds: int, marg: list) -> dict:
    """Closed-form errors (deterministic: one value repeated per seed) and the chain's worst deviation."""
    out = {f"ddpm-N{n}": {"max_abs_err": [e] * seeds, "log10_max_err": [math.log10(e)] * seeds}
           for n, e in zip(cfg.marginal_steps, marg[0]["max_abs_err"])}
    worst = []
    for r in marg:
        exact = [marginal_prob(i / 1000, cfg) for i in r["chain_steps"]]
        pairs = zip(exact, r["chain_coef"], r["chain_std"])
        worst.append(max(max(abs(c - a), abs(sd - sg)) for (a, sg), c, sd in pairs))
    out["ddpm-chain"] = {"mc_max_err": worst}
    return out


# ----------------------------------------------------------------------------- tables, plots

def _report(cfg: Config, ctx, m: dict, marg: list, points: dict, losses: list) -> None:
    from mlbench.core.verdict import mean_ci

    extra = ("sw2", "mode_std") if cfg.dataset == "8gaussians" else ("sw2",)
    rows = []
    grid = [(s, n, n // SAMPLERS[s], arm(s, n)) for s in cfg.samplers for n in sorted(cfg.nfe_grid)]
    for name, nfe, steps, key in grid + [("ode-rk45", mean(m["ode-rk45"]["nfe"]), "adaptive", "ode-rk45"),
                                         ("fresh data (floor)", "-", "-", "data-floor")]:
        ci = mean_ci(m[key]["mmd"])
        rows.append({"sampler": name, "nfe": nfe, "steps": steps, "mmd": ci.mean, "mmd_ci_low": ci.low,
                     "mmd_ci_high": ci.high, "mmd_over_floor": mean(m[key]["mmd_over_floor"]),
                     **{q: mean(m[key][q]) for q in extra}})
    ctx.table(rows, title=f"{cfg.dataset}: MMD of {cfg.n_eval} samples to fresh data vs network evaluations (mean, "
              f"95% CI over {len(ctx.seeds)} seeds; floor: fresh data vs data; sw2 = sliced W2"
              + ("; mode_std true value 0.1)" if cfg.dataset == "8gaussians" else ")"))
    alpha_bar = ddpm_alpha_bar(1000, cfg)
    table = []
    for j, i in enumerate(CHAIN_STEPS):
        ab, (alpha, sigma) = alpha_bar[i - 1].item(), marginal_prob(i / 1000, cfg)
        table.append({"t": i / 1000, "ddpm_i": i, "ddpm_sqrt_alpha_bar": math.sqrt(ab), "sde_alpha": alpha,
                      "ddpm_sqrt_1m_alpha_bar": math.sqrt(1 - ab), "sde_sigma": sigma,
                      "abs_err_alpha_bar": abs(ab - alpha**2),
                      "chain_coef_mc": mean([r["chain_coef"][j] for r in marg]),
                      "chain_std_mc": mean([r["chain_std"][j] for r in marg])})
    ctx.table(table, name="marginals", title="Forward marginals, DDPM (N=1000, β 1e-4..0.02) vs VP-SDE "
              f"(β {cfg.beta_min:g}..{cfg.beta_max:g}); chain_*: the simulated DDPM chain "
              f"({cfg.n_mc} points, seed mean)")
    ctx.table([{"N": n, "beta_1": cfg.beta_min / n, "beta_N": cfg.beta_max / n, "max_abs_err_alpha_bar": e}
               for n, e in zip(cfg.marginal_steps, marg[0]["max_abs_err"])],
              name="marginals-N", title="max_i |ᾱ_i − α(i/N)²| shrinks as O(1/N)")
    _plot_quality(cfg, ctx, m, ("mmd", *extra))
    _plot_samples(cfg, ctx, points)
    _plot_marginals(cfg, ctx, marg, losses)


def _plot_quality(cfg: Config, ctx, m: dict, metrics: tuple) -> None:
    from mlbench.core.plotting import figure
    from mlbench.core.verdict import mean_ci

    fig, ax = figure(1, len(metrics))
    grid = sorted(cfg.nfe_grid)
    for a, metric in zip(ax[0], metrics):
        for name in cfg.samplers:
            cis = [mean_ci(m[arm(name, n)][metric]) for n in grid]
            err = [[c.mean - c.low for c in cis], [c.high - c.mean for c in cis]]
            a.errorbar(grid, [c.mean for c in cis], yerr=err, marker="o", capsize=3, label=name)
        a.plot([mean(m["ode-rk45"]["nfe"])], [mean(m["ode-rk45"][metric])], "k*", ms=12, label="ode-rk45")
        a.axhline(mean(m["data-floor"][metric]), color="grey", ls=":", label="fresh data (floor)")
        a.set(xscale="log", yscale="log", xlabel="network evaluations (NFE)", ylabel=metric,
              title=f"{metric} vs NFE ({len(ctx.seeds)} seeds, 95% CI)")
    ax[0][0].legend(fontsize=8)
    fig.tight_layout()
    ctx.plot("quality_vs_nfe", fig)


def _plot_samples(cfg: Config, ctx, points: dict) -> None:
    from mlbench.core.plotting import figure

    lo, hi = min(cfg.nfe_grid), max(cfg.nfe_grid)
    fig, ax = figure(2, len(cfg.samplers) + 1, width=2.6, height=2.6, sharex=True, sharey=True)
    for row, nfe in enumerate((lo, hi)):
        first = ("data", "fresh data") if row == 0 else ("ode-rk45", "ode-rk45 (adaptive)")
        for a, (key, title) in zip(ax[row], [first] + [(arm(s, nfe), f"{s}, NFE {nfe}") for s in cfg.samplers]):
            a.scatter([p[0] for p in points[key]], [p[1] for p in points[key]], s=2, alpha=0.5)
            a.set_title(title, fontsize=8)
    ax[0][0].set(xlim=(-3, 3), ylim=(-3, 3))
    fig.tight_layout()
    ctx.plot("samples", fig)


def _plot_marginals(cfg: Config, ctx, marg: list, losses: list) -> None:
    import torch

    from mlbench.core.plotting import figure

    fig, ax = figure(1, 3)
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    alpha, ab, i = log_alpha(t, cfg).exp(), ddpm_alpha_bar(1000, cfg), torch.arange(1, 1001, 50)
    ax[0][0].plot(t, alpha, label="SDE α(t)")
    ax[0][0].plot(t, (1 - alpha**2).sqrt(), label="SDE σ(t)")
    ax[0][0].plot(i / 1000, ab[i - 1].sqrt(), "o", ms=3, label="DDPM sqrt(ᾱ_i)")
    ax[0][0].plot(i / 1000, (1 - ab[i - 1]).sqrt(), "s", ms=3, label="DDPM sqrt(1 − ᾱ_i)")
    ax[0][0].set(xlabel="t = i/N", title="forward marginals (N=1000)")
    ax[0][0].legend(fontsize=8)
    ax[0][1].loglog(cfg.marginal_steps, marg[0]["max_abs_err"], "o-")
    ax[0][1].set(xlabel="DDPM steps N", ylabel="max |ᾱ_i − α(i/N)²|", title="discretisation error, O(1/N)")
    for k in ctx.seeds:
        ax[0][2].plot([r[0] for r in losses], [r[1 + k] for r in losses], label=f"seed {k}")
    ax[0][2].set(yscale="log", xlabel="step", ylabel="ε-loss", title="training loss")
    ax[0][2].legend(fontsize=8)
    fig.tight_layout()
    ctx.plot("marginals", fig)
