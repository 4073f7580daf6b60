"""Closed forms and exact second moments of the Robbins–Monro recursion (pure Python, no torch).

Mean estimation: w_{k+1} = w_k − a_k (w_k − x_k), x_k = μ + σ ε_k, E ε = 0, E ε² = 1. The error
e_k = w_k − μ obeys e_{k+1} = (1 − a_k) e_k + a_k σ ε_k, so its second moment m_k = E e_k² is
known exactly, step by step, without simulating anything:

    m_{k+1} = (1 − a_k)² m_k + a_k² σ²,     m_1 = (w_1 − μ)².

Steps are a_k = min(1, c·k^−γ) (capped at 1: a_k > 1 would flip the error's sign). Asymptotic
closed forms for a root-finding problem with slope M′ = M′(θ*) (mean estimation: M′ = 1):

- a_k = a/k with a·M′ > ½:     k·MSE → a²σ²/(2aM′ − 1)      (Chung 1954; Sacks 1958)
  (a = 1/M′ gives the minimum σ²/M′²; a = 1, M′ = 1 gives σ²/k, the sample mean);
- a_k = c·k^−γ, ½ < γ < 1:      k^γ·MSE → cσ²/(2M′);
- a_k = a constant, 0 < a < 2:  MSE → aσ²/(2 − a) (M′ = 1: the stationary variance of an AR(1));
- the average w̄ of the iterates of c·k^−γ, ½ < γ < 1:  k·MSE → σ²/M′²   (Polyak & Juditsky 1992).
"""

from __future__ import annotations

import math
from typing import Iterable, NamedTuple


class Schedule(NamedTuple):
    """a_k = min(1, c·k^−γ); `averaged`: the estimate is the mean of the iterates w_2 … w_{k+1}."""
    c: float
    gamma: float
    averaged: bool = False

    def step(self, k: int) -> float:
        return min(1.0, self.c * k ** -self.gamma)

    def text(self) -> str:
        """The schedule as a reader writes it: "1/k", "0.75/k", "k^-0.6", "0.1", "1/k²"."""
        c = "" if self.c == 1 else f"{self.c:.4g}"
        if self.gamma == 0:
            core = f"{self.c:.4g}"
        elif self.gamma == 1:
            core = f"{c or '1'}/k"
        elif self.gamma > 1:
            core = f"{c or '1'}/" + ("k²" if self.gamma == 2 else f"k^{self.gamma:g}")
        else:
            core = f"{c + '·' if c else ''}k^-{self.gamma:g}"
        return f"mean of iterates, {core}" if self.averaged else core

    def rate(self, slope: float = 1.0) -> float:
        """ρ of the predicted MSE ∝ k^−ρ (M′ = `slope`): 1 averaged; 0 for a constant step or γ > 1
        (no convergence); γ for ½ < γ < 1; min(1, 2aM′) for a/k (a·M′ < ½: the start is forgotten
        only like k^−aM′)."""
        if self.averaged:
            return 1.0
        if self.gamma == 0 or self.gamma > 1:
            return 0.0
        return self.gamma if self.gamma < 1 else min(1.0, 2 * self.c * slope)

    def sums_diverge(self) -> bool:
        """Σa_k = ∞, the first Robbins–Monro condition (γ ≤ 1)."""
        return self.gamma <= 1

    def squares_converge(self) -> bool:
        """Σa_k² < ∞, the second (γ > ½)."""
        return self.gamma > 0.5


def asymptotic_k_mse(a: float, sigma2: float, slope: float = 1.0) -> float:
    """lim k·MSE for a_k = a/k: a²σ²/(2aM′ − 1), finite only for a·M′ > ½."""
    return a * a * sigma2 / (2 * a * slope - 1) if a * slope > 0.5 else math.inf


def power_constant(c: float, sigma2: float, slope: float = 1.0) -> float:
    """lim k^γ·MSE for a_k = c·k^−γ, ½ < γ < 1: cσ²/(2M′)."""
    return c * sigma2 / (2 * slope)


def constant_plateau(a: float, sigma2: float) -> float:
    """Stationary MSE of a constant step a ∈ (0, 2): aσ²/(2 − a)."""
    return a * sigma2 / (2 - a)


def prediction(schedule: Schedule, sigma2: float, steps: int, start_error: float,
               slope: float = 1.0) -> tuple[str, str, float]:
    """(quantity, metric, closed-form value) a reader checks each arm against: MSE for steps that do
    not converge (a constant a: aσ²/(2 − a); γ > 1: the frozen MSE at K), K^γ·MSE for ½ < γ < 1,
    K·MSE for a/k (∞ where a·M′ ≤ ½) and for the average of iterates (σ²/M′²)."""
    if schedule.averaged:
        return "K·MSE", "k_mse", sigma2 / slope ** 2
    if schedule.gamma == 0:
        return "MSE", "mse", constant_plateau(schedule.c, sigma2)
    if schedule.gamma > 1:
        frozen = (inverse_square_mse(steps, sigma2) if schedule == Schedule(1.0, 2.0)
                  else exact_mse(schedule, steps, sigma2, start_error)[steps])
        return "MSE", "mse", frozen
    if schedule.gamma < 1:
        return "K^γ·MSE", "scaled_mse", power_constant(schedule.c, sigma2, slope)
    return "K·MSE", "k_mse", asymptotic_k_mse(schedule.c, sigma2, slope)


def exact_mse(schedule: Schedule, steps: int, sigma2: float, start_error: float,
              record: Iterable[int] = ()) -> dict[int, float]:
    """E(w_{k+1} − μ)² after k observations, exactly, for k in `record` and k = `steps`.

    Raw iterate: m ← (1 − a)² m + a² σ². Averaged (S_k = Σ_{i=2}^{k+1} e_i, w̄ − μ = S_k/k): with
    e′ = (1 − a)e + aσε and S′ = S + e′ (ε independent of e and S),
        E e′² = (1 − a)² E e² + a²σ²,   E S′e′ = (1 − a) E Se + E e′²,
        E S′² = E S² + 2(1 − a) E Se + E e′².
    """
    want = set(record) | {steps}
    ee, se, ss = start_error ** 2, 0.0, 0.0
    out = {}
    for k in range(1, steps + 1):
        a = schedule.step(k)
        ee_next = (1 - a) ** 2 * ee + a * a * sigma2
        ss += 2 * (1 - a) * se + ee_next
        se = (1 - a) * se + ee_next
        ee = ee_next
        if k in want:
            out[k] = ss / (k * k) if schedule.averaged else ee
    return out


def inverse_square_mse(steps: int, sigma2: float) -> float:
    """MSE after K steps of a_k = 1/k² (a_1 = 1 forgets w_1), in closed form.

    w_{K+1} = Σ_j c_j x_j with c_j = a_j Π_{i>j}(1 − 1/i²); the product telescopes to
    j(K + 1)/(K(j + 1)), so c_j = (K + 1)/(K j(j + 1)), Σc_j = 1 and
        MSE = σ² Σ c_j² = σ² ((K + 1)/K)² Σ_{j≤K} 1/(j(j + 1))²   →  σ²(π²/3 − 3) ≈ 0.2899 σ².
    Terms past j = 10⁴ add < 10⁻¹² (they fall like j⁻⁴)."""
    tail = sum(1.0 / (j * (j + 1)) ** 2 for j in range(min(steps, 10_000), 0, -1))  # small terms first
    return sigma2 * ((steps + 1) / steps) ** 2 * tail


def record_steps(steps: int, per_decade: int) -> list[int]:
    """k = round(10^(j/per_decade)) ≤ K, and K itself: log-spaced points where the MSE is recorded."""
    ks = {round(10 ** (j / per_decade)) for j in range(int(math.log10(steps) * per_decade) + 1)}
    return sorted(k for k in ks | {steps} if 1 <= k <= steps)


def log_log_slope(ks: list[int], values: list[float]) -> float:
    """Least-squares slope of log value against log k."""
    xs, ys = [math.log(k) for k in ks], [math.log(v) if v > 0 else -math.inf for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
