"""robbins-monro: stochastic approximation needs Σaₖ = ∞ and Σaₖ² < ∞; the step sets the rate.

Shows (Robbins & Monro 1951; Chung 1954 and Sacks 1958 for the rates; Polyak & Juditsky 1992
and Ruppert 1988 for averaging; seed document 001, the stochastic-approximation post, for mean
estimation as the first Robbins–Monro example):

Mean estimation w_{k+1} = w_k − aₖ(w_k − x_k), x_k ~ N(μ = 5, σ = 2), w_1 = 0 (M(w) = w − μ,
M′ = 1). "MSE at k" is E(w_{k+1} − μ)², after k observations; steps are aₖ = min(1, c·k^−γ).

1. Headline: aₖ = 1/k makes w the sample mean: MSE = σ²/k (log-log slope −1, K·MSE = σ²).
2. The rate follows the step exponent: aₖ = k^−γ, ½ < γ < 1, gives k^γ·MSE → σ²/2 (slope −γ).
3. Both conditions are needed: a constant step (Σaₖ² = ∞) plateaus at aσ²/(2 − a); aₖ = 1/k²
   (Σaₖ = π²/6 < ∞) freezes the iterate at σ²Σcⱼ² = σ²(π²/3 − 3)(1 + 1/K)² ≈ 1.16.
4. The step constant matters: aₖ = a/k gives k·MSE → a²σ²/(2a − 1) for a > ½ (minimum σ² at
   a = 1/M′); for a < ½ the error falls only like k^−2a. Judged where |2a − 1| ≥ ½ (the
   transient decays at least like k^−½); a = ½ itself (k·MSE ∝ ln k) is reported only.
5. Polyak–Ruppert: the mean of the iterates of the slow steps k^−0.6 reaches the optimal σ²/k,
   while the raw iterate's k·MSE ≈ (σ²/2)k^0.4 (≈ 80 at k = 10⁴).
6. Root finding g(θ) = θ + 2 sin θ observed with N(0, 1) noise (θ* = 0, M′ = 3), θ_1 ~ U(−10, 10):
   aₖ = a/k gives k·MSE → a²/(6a − 1) (0.2 at a = 1). Judged for a > ½ only: far from the root
   g(θ)/θ ≈ 1, so with a ≤ ½ (a = ⅓, the asymptotic optimum 1/9) the start is forgotten only
   like k^−a and 10⁴ steps are still in the transient; a = ⅓ is reported without a verdict.

Every claim is a band around a closed form (±10 % for constants, ±0.1 for slopes, fitted on
k ∈ [10³, 10⁴]), judged on the 95 % CI over seeds. The seeds are independent repetitions of
the whole experiment (their own noise streams); within a seed, R replicates of the recursion
run as one float64 tensor (members × replicates), and their mean of (w − μ)² estimates the MSE
(relative SE ≈ √(2/R), 1.6 % at R = 8000). Every linear arm of a seed sees the same noise.
float64: at k = 10⁴ a 1/k² update is ~10⁻⁸ of w ≈ 5, below float32's resolution there (the
noise itself is drawn in float32: its rounding changes nothing measured). The tables also give
the exact finite-K MSE of each linear arm (second-moment recursion, `theory.py`), beside the
asymptotic closed form. Nothing is trained: checkpoints hold each member's final estimates and
its MSE curve. No data set: the observations are drawn step by step from per-seed generators.
Negative control (`negative_control=true`): the headline arm runs aₖ = 1/k² instead (Σaₖ < ∞):
its error stalls near 1.16 and the headline must come out not reproduced.

Measured, quick profile (5 seeds x 8000 replicates, K = 10⁴, one thread): every claim
reproduced. 1/k: slope −1.000 [−1.008, −0.991], K·MSE 4.00 [3.89, 4.11]. k^−0.75: slope −0.767,
K^0.75·MSE 2.07 (exact at K 2.08: the k^(γ−1) correction is slow); k^−0.6: −0.616, 1.99.
Constant 0.1: 0.2085 (0.2105); 1/k²: 1.181 [1.172, 1.190] (1.160: set by the first few draws,
c_1 = ½, and these seeds' first draws run 1-2 % high; 4·10⁵ replicates give 1.1722 against the
exact 1.1711 at K = 200). a/k: 4.49 (4.5), 5.32 (5.33), 9.10 (9.14); a = 0.25 slope −0.500;
a = ½ K·MSE 18.2. Averaged k^−0.6: K·MSE 4.05, slope −1.008, 19.6x below the raw iterate.
Root, a = 1: K·MSE 0.202 (0.2), slope −0.999; a = ⅓: 0.60 (asymptote 0.111), slope −1.92.
Negative control: headline slope −0.0007, K·MSE 1.18·10⁴: not reproduced; the other five hold.
Student-t noise (the sweep): every claim reproduced, the 1/k² plateau's CI widest, [1.06, 1.25];
with the constant step 0.5 as well its plateau's CI [1.17, 1.47] straddles the ±10 % band around
4/3: inconclusive (the stationary error is then a sum of a few t₃ draws: infinite fourth moment).

Run: `mlbench run robbins-monro` (quick, CPU); `--profile full --device cuda` for R = 10⁵,
K = 10⁶.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mlbench.core.config import param
from mlbench.core.errors import UsageError
from mlbench.core.grid import arm_key
from mlbench.core.verdict import AllOf, Claim, Paired, Paper, Threshold
from mlbench.exps.robbins_monro.theory import (Schedule, asymptotic_k_mse, constant_plateau, inverse_square_mse,
                                               power_constant, record_steps)

VERSION = 1
THREADS = 1  # elementwise updates of ~4·10⁵ numbers a step: little to split on a shared 2-core CPU
SUMMARY = ("Robbins–Monro converges when Σaₖ = ∞ and Σaₖ² < ∞: aₖ = 1/k gives MSE σ²/k, the step's exponent and "
           "constant set the rate, and averaging recovers σ²/k.")
CITATION = "Robbins & Monro 1951, A Stochastic Approximation Method (Ann. Math. Statist.)"
HEADLINE = "harmonic"  # aₖ = 1/k (1/k² under the negative control)
ROOT_SLOPE = 3.0  # M′ = g′(0) for g(θ) = θ + 2 sin θ
TOL, SLOPE_TOL, FLAT = 0.1, 0.1, -0.05  # ±10 % around constants, ±0.1 around slopes, "no longer falling"


@dataclass(frozen=True)
class Config:
    replicates: int = param(8000, "R: runs of the recursion per seed in one tensor; their mean (w − μ)² is the MSE", min=2)
    steps: int = param(10_000, "K: observations per run; every claim reads k = K", min=10)
    mean: float = param(5.0, "μ = E[X], the root of M(w) = w − μ")
    noise_std: float = param(2.0, "σ: x = μ + σε", min=1e-6)
    start: float = param(0.0, "w_1 (forgotten at once where a_1 = 1)")
    noise: Literal["gaussian", "student-t"] = param("gaussian", "ε: gaussian | student-t (ν = 3 scaled to unit variance: heavy tails, same predictions)")
    gammas: tuple[float, ...] = param((0.75, 0.6), "exponents γ of aₖ = k^−γ, in (½, 1)", min=0.5, max=1)
    constant_step: float = param(0.1, "the constant step a (violates Σaₖ² < ∞), in (0, 2)", min=1e-6, max=1.999)
    step_constants: tuple[float, ...] = param((0.25, 0.5, 0.75, 2.0, 4.0), "a of aₖ = a/k (judged where |2a − 1| ≥ ½)", min=1e-3, max=100)
    averaged_gamma: float = param(0.6, "γ of the steps whose iterates are averaged (Polyak–Ruppert), in (½, 1)", min=0.5, max=1)
    root_noise_std: float = param(1.0, "σ of the root-finding observations g(θ) + σε", min=1e-6)
    root_start: float = param(10.0, "θ_1 ~ U(−root_start, root_start)", min=0)
    root_constants: tuple[float, ...] = param((1.0, 1 / 3), "a of aₖ = a/k on g(θ) = θ + 2 sin θ (judged where a > ½)", min=1e-3, max=100)
    fit_from: int = param(1000, "slopes are fitted on log k over [fit_from, K] (the asymptotic range)", min=1)
    points_per_decade: int = param(8, "log-spaced k where the MSE is recorded", min=1, max=100)
    negative_control: bool = param(False, "the headline arm runs aₖ = 1/k² (Σaₖ < ∞): the headline must NOT reproduce")

    def validate(self) -> None:
        if not all(0.5 < g < 1 for g in (*self.gammas, self.averaged_gamma)):
            raise ValueError("gammas and averaged_gamma must lie strictly between 0.5 and 1")
        if len(set(self.gammas)) != len(self.gammas) or len(set(self.step_constants)) != len(self.step_constants) \
                or len(set(self.root_constants)) != len(self.root_constants):
            raise ValueError("gammas, step_constants and root_constants must not repeat a value")
        if len([k for k in record_steps(self.steps, self.points_per_decade) if k >= self.fit_from]) < 2:
            raise ValueError("fit_from must leave at least two recorded k in [fit_from, steps]")
        if not judged_step_constants(self) or not judged_root_constants(self):
            raise ValueError("step_constants need one a with |2a − 1| ≥ 0.5, root_constants one a > 0.5")


def coord(x: float) -> str:
    return f"{x:.4g}"


def judged_step_constants(cfg: Config) -> list[float]:
    return [a for a in cfg.step_constants if abs(2 * a - 1) >= 0.5]


def judged_root_constants(cfg: Config) -> list[float]:
    return [a for a in cfg.root_constants if a > 0.5]


def schedules(cfg: Config) -> dict[str, Schedule]:
    """Mean-estimation arms -> their steps aₖ = min(1, c·k^−γ), in run order."""
    powers = sorted(set(cfg.gammas) | {cfg.averaged_gamma}, reverse=True)
    return {HEADLINE: Schedule(1.0, 2.0 if cfg.negative_control else 1.0),
            **{arm_key("power", gamma=coord(g)): Schedule(1.0, g) for g in powers},
            arm_key("averaged", gamma=coord(cfg.averaged_gamma)): Schedule(1.0, cfg.averaged_gamma, averaged=True),
            arm_key("constant", a=coord(cfg.constant_step)): Schedule(cfg.constant_step, 0.0),
            "inverse-square": Schedule(1.0, 2.0),
            **{arm_key("a-over-k", a=coord(a)): Schedule(a, 1.0) for a in cfg.step_constants}}


def root_arms(cfg: Config) -> dict[str, float]:
    """Root-finding arms -> a of aₖ = min(1, a/k)."""
    return {arm_key("root", a=coord(a)): a for a in cfg.root_constants}


def arms(cfg: Config) -> list[str]:
    """Every measurement key a run of `cfg` produces."""
    return list(schedules(cfg)) + list(root_arms(cfg))


def check(cfg: Config, device: str) -> None:
    """Refuse on a CPU what is sized for a GPU (~10⁹ replicate-steps take about a minute there)."""
    work = cfg.replicates * cfg.steps * (len(arms(cfg)))
    if device == "cpu" and work > 2e10:
        raise UsageError(f"{cfg.replicates} replicates x {cfg.steps} steps x {len(arms(cfg))} arms is ~{work:.0e} "
                         "replicate-steps, hours on a CPU: use --device cuda, or fewer replicates/steps")


def within(metric: str, arm: str, value: float, tol: float) -> tuple[Threshold, Threshold]:
    """The CI of `metric` inside value·(1 ± tol) (a slope: value ± tol, with `tol` absolute)."""
    lo, hi = (value * (1 - tol), value * (1 + tol)) if metric != "slope" else (value - tol, value + tol)
    return Threshold(metric, arm, lo, "greater"), Threshold(metric, arm, hi, "less")


def claims(cfg: Config) -> list[Claim]:
    s2, K = cfg.noise_std ** 2, cfg.steps
    power = {g: arm_key("power", gamma=coord(g)) for g in cfg.gammas}
    avg, raw = arm_key("averaged", gamma=coord(cfg.averaged_gamma)), arm_key("power", gamma=coord(cfg.averaged_gamma))
    const = arm_key("constant", a=coord(cfg.constant_step))
    big, small = ([a for a in judged_step_constants(cfg) if a > 0.5], [a for a in judged_step_constants(cfg) if a < 0.5])
    roots = judged_root_constants(cfg)
    k_mse = {a: asymptotic_k_mse(a, s2) for a in big}
    ratio = K ** (1 - cfg.averaged_gamma) / 2  # raw / averaged MSE at K: (σ²/2)K^−γ / (σ²/K)
    unconfirmed = "a closed form recalled from the literature, not checked against the paper's text"
    out = [
        Claim("sigma2-over-k", f"With aₖ = 1/k (Σaₖ = ∞, Σaₖ² < ∞) the iterate converges to E[X] at rate σ²/k: "
              f"log-log slope of the MSE over k ∈ [{cfg.fit_from}, {K}] within −1 ± {SLOPE_TOL:g}, and K·MSE at "
              f"K = {K} within ±{TOL:.0%} of σ² = {s2:g}", CITATION,
              AllOf((*within("slope", HEADLINE, -1.0, SLOPE_TOL), *within("k_mse", HEADLINE, s2, TOL))),
              paper=Paper(s2, "K·MSE for aₖ = 1/k (σ²: the iterate is the sample mean)",
                          "convergence in mean square under the step conditions", confirmed=False,
                          ours=(HEADLINE, "k_mse"), note=unconfirmed)),
        Claim("rate-follows-exponent", f"The rate follows the step exponent: aₖ = k^−γ for γ ∈ {tuple(cfg.gammas)} "
              f"gives slope −γ ± {SLOPE_TOL:g} and K^γ·MSE within ±{TOL:.0%} of σ²/2 = {s2 / 2:g}",
              "Chung 1954, On a stochastic approximation method (Ann. Math. Statist.)",
              AllOf(tuple(t for g in cfg.gammas for t in (*within("slope", power[g], -g, SLOPE_TOL),
                                                          *within("scaled_mse", power[g], power_constant(1, s2), TOL)))),
              paper=Paper(power_constant(1, s2), "K^γ·MSE for aₖ = k^−γ (σ²/(2M′))", "asymptotic variance",
                          confirmed=False, ours=(power[cfg.gammas[0]], "scaled_mse"), note=unconfirmed)),
        Claim("both-conditions-needed", f"Both conditions are needed: the constant step {cfg.constant_step:g} "
              f"(Σaₖ² = ∞) plateaus within ±{TOL:.0%} of aσ²/(2 − a) = {constant_plateau(cfg.constant_step, s2):.4g}; "
              f"aₖ = 1/k² (Σaₖ < ∞) stalls within ±{TOL:.0%} of σ²Σcⱼ² = {inverse_square_mse(K, s2):.4g}; "
              f"neither MSE still falls (slopes > {FLAT:g})", CITATION,
              AllOf((*within("mse", const, constant_plateau(cfg.constant_step, s2), TOL),
                     *within("mse", "inverse-square", inverse_square_mse(K, s2), TOL),
                     Threshold("slope", const, FLAT, "greater"), Threshold("slope", "inverse-square", FLAT, "greater"))),
              paper=Paper("Σaₖ = ∞ and Σaₖ² < ∞", "the step conditions", "conditions on aₙ", confirmed=False)),
        Claim("step-constant-matters", f"The step constant matters: aₖ = a/k gives K·MSE within ±{TOL:.0%} of "
              f"a²σ²/(2a − 1) for a = " + ", ".join(f"{a:g} ({k_mse[a]:.3g})" for a in big)
              + (f"; for a = {', '.join(f'{a:g}' for a in small)} (< ½) the MSE falls only like k^−2a "
                 f"(slope −2a ± {SLOPE_TOL:g})" if small else ""),
              "Sacks 1958, Asymptotic distribution of stochastic approximation procedures (Ann. Math. Statist.)",
              AllOf(tuple(t for a in big for t in within("k_mse", arm_key("a-over-k", a=coord(a)), k_mse[a], TOL))
                    + tuple(t for a in small for t in within("slope", arm_key("a-over-k", a=coord(a)), -2 * a, SLOPE_TOL))),
              paper=Paper(k_mse[big[-1]], f"K·MSE for aₖ = {big[-1]:g}/k (a²σ²/(2aM′ − 1))", "asymptotic variance",
                          confirmed=False, ours=(arm_key("a-over-k", a=coord(big[-1])), "k_mse"), note=unconfirmed)),
        Claim("averaging-optimal", f"Averaging the iterates of aₖ = k^−{cfg.averaged_gamma:g} recovers the optimal "
              f"rate: slope −1 ± {SLOPE_TOL:g}, K·MSE within ±{TOL:.0%} of σ² = {s2:g}, and the raw iterate's MSE is "
              f"more than {ratio / 2:.3g}x the average's (predicted K^{1 - cfg.averaged_gamma:.2g}/2 = {ratio:.3g}x)",
              "Polyak & Juditsky 1992, Acceleration of stochastic approximation by averaging (SIAM J. Control Optim.)",
              AllOf((*within("slope", avg, -1.0, SLOPE_TOL), *within("k_mse", avg, s2, TOL),
                     Paired("k_mse", raw, avg, "greater", math.log(ratio / 2), log_ratio=True))),
              paper=Paper(s2, "K·MSE of the averaged iterate (σ²/M′², the optimum)", "asymptotic efficiency of the "
                          "average", confirmed=False, ours=(avg, "k_mse"), note=unconfirmed)),
        Claim("nonlinear-root", f"Root of g(θ) = θ + 2 sin θ (M′ = 3) from N(0, {cfg.root_noise_std ** 2:g}) "
              f"observations: aₖ = a/k gives K·MSE within ±{TOL:.0%} of a²σ²/(6a − 1) for a = "
              + ", ".join(f"{a:g} ({asymptotic_k_mse(a, cfg.root_noise_std ** 2, ROOT_SLOPE):.3g})" for a in roots)
              + f", and slope −1 ± {SLOPE_TOL:g}", "Sacks 1958; root-finding problem of fura2/stochastic-approximation",
              AllOf(tuple(t for a in roots for t in (
                  *within("k_mse", arm_key("root", a=coord(a)), asymptotic_k_mse(a, cfg.root_noise_std ** 2, ROOT_SLOPE), TOL),
                  *within("slope", arm_key("root", a=coord(a)), -1.0, SLOPE_TOL)))),
              paper=Paper(asymptotic_k_mse(roots[0], cfg.root_noise_std ** 2, ROOT_SLOPE),
                          f"K·MSE for aₖ = {roots[0]:g}/k (a²σ²/(2aM′ − 1), M′ = 3)", "asymptotic variance",
                          confirmed=False, ours=(arm_key("root", a=coord(roots[0])), "k_mse"), note=unconfirmed)),
    ]
    return out
