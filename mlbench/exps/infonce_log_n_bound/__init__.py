"""infonce-log-n-bound: the InfoNCE (CPC) estimate of mutual information cannot exceed log N.

Shows (van den Oord, Li, Vinyals 2018, CPC; Poole et al. 2019; Song & Ermon 2020; seed documents
003 and 004):

With a batch of N pairs, InfoNCE, Î = log N + (1/N) Σ_i [s_ii − log Σ_j exp s_ij], is a sum of
log-softmaxes plus log N: Î ≤ log N for every batch and every critic. On 20-d correlated
Gaussians with known mutual information I = −½·d·ln(1 − ρ²), a trained separable critic
h(y)·g(x) therefore tracks I while I is well below log N and saturates just under log N when I
is larger: at I = 10 nats the estimate sits in [log N − 0.4, log N] for N = 64 and 256, at least
4 nats below the truth, and moves up by ≈ log 4 when the batch grows 4x. Below the ceiling the
bound is nearly tight (I = 2, N = 256: Î ≥ 1.6). The Bayes-optimal critic, the log density ratio
log p(y | x) in closed form (no training), calibrates the harness: at I = 10 it lands within 0.15
of log N. That each batch's Î ≤ log N is an identity: its maximum over all batches is reported,
not tested.

Protocol: every (objective, N, I) arm x seed trains as one stacked model (parameters (M, ...),
baddbmm, one Adam, cosine learning rate 4e-3 -> 0 over 500 steps), on fresh samples every step.
Every member sees the same number of pairs per step, B = max N, split into B/N independent
batches of N: its loss is the mean of their bounds (a batch of 64 thus trains on 4 batches per
step). Seed k's critics share their initial weights and their samples (y = ρx + √(1 − ρ²)ε from
the same x, ε at every I and N): the arms are paired. Estimates: the mean over `eval_batches`
fresh draws of B pairs (B/N batches each), never the training batch. Saturation is judged where
log N <= I − 4 (both quick batch sizes; N <= 256 in the full profile).

What the data say. Quick profile (3 seeds, CPU), Î in nats: at I = 10, N = 64: 4.07 [4.03, 4.10]
(log 64 = 4.16), N = 256: 5.33 [5.27, 5.38] (log 256 = 5.55), 4.7-5.9 nats below the truth:
saturates, reproduced. Slope of Î against ln N 0.91 [0.89, 0.93] (a shift of 1.26 nats for log 4 =
1.39): reproduced. I = 2, N = 256: 1.85 [1.81, 1.89] >= 1.6 (optimal critic 1.95): reproduced.
The optimal critic at I = 10: 4.12 and 5.43, 0.04 and 0.11 below log N: reproduced. The largest
single-batch InfoNCE minus log N over all 4,650 evaluated batches: −0.0003 (the identity).
The budget is what tells a ceiling from a training failure: nn.Linear's default init
(U(±1/√fan_in)) keeps the initial scores small; He init starts with scores of std ≈ 10 and a
saturated softmax. With He init and a peak lr of 5e-4 every trained claim fails (I = 10, N = 64:
3.48; I = 2, N = 256: 0.39) while the optimal critic stays calibrated; with nn.Linear's init at
5e-4, N = 256 stops at 5.01 (< log 256 − 0.4) and I = 2 at 1.68 (inconclusive); He init at 4e-3
saturates but reaches only 1.55 at I = 2 (inconclusive). The sweep file runs these four points.
Negative control (`negative_control=true`): low mutual information only, I ∈ {0.5, 1} (trained
and optimal critics): nothing to saturate, every estimate tracks the truth (I = 1: 0.90 at N = 64,
0.93 at N = 256; optimal critic 0.97, 1.00), more than 3 nats below log N − 0.4: the headline
and the ceiling claim are not reproduced.

Run: `mlbench run infonce-log-n-bound` (quick, CPU); `--profile full --device cuda` for the
reference critic (hidden 256, 3 hidden layers, constant lr 5e-4), N ∈ {64, ..., 1024},
I ∈ {2, 4, 6, 8, 10}, 5 seeds, 20,000 steps, and NWJ and SMILE beside InfoNCE for contrast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mlbench.core.config import param
from mlbench.core.errors import UsageError
from mlbench.core.grid import arm_key
from mlbench.core.verdict import AllOf, Claim, Paper, Threshold, Trend

VERSION = 1
THREADS = 1  # small batched matmuls; bit-reproducible on any core count
SUMMARY = ("The InfoNCE (CPC) estimate of mutual information is capped at log N for batch size N: at 10 nats "
           "it saturates just under log N and the ceiling moves with the batch.")
CITATION = ("van den Oord et al. 2018 (CPC); Poole et al. 2019, On Variational Bounds of Mutual Information; "
            "Song & Ermon 2020, Understanding the Limitations of Variational MI Estimators, Fig. 1")
OBJECTIVES = ("infonce", "nwj", "smile")
CONTROL_LEVELS = (0.5, 1.0)  # negative control: mutual information far below any log N


@dataclass(frozen=True)
class Config:
    dim: int = param(20, "d: coordinates of x and of y (each pair correlated by ρ)", min=1)
    batch_sizes: tuple[int, ...] = param((64, 256), "batch sizes N (each must divide the largest)", min=2)
    mi_levels: tuple[float, ...] = param((2.0, 6.0, 10.0), "true I(x; y) in nats of the trained critics "
                                         "(the largest judges saturation, the smallest tightness)", min=0)
    oracle_levels: tuple[float, ...] = param((2.0, 4.0, 6.0, 8.0, 10.0), "true I of the closed-form optimal "
                                             "critic (its largest level must be a trained level)", min=0)
    objectives: tuple[str, ...] = param(("infonce",), "bounds trained, one critic each: infonce | nwj | smile "
                                        "(the claims read infonce)")
    smile_tau: float = param(5.0, "SMILE's clip τ of the partition function", min=0)
    hidden: int = param(128, "hidden width of g and h (reference: 256)", min=1)
    hidden_layers: int = param(2, "hidden layers of g and h (reference: 3 = its 'layers=2' plus the first)", min=1)
    embed: int = param(32, "embedding width of g(x) and h(y)", min=1)
    init: Literal["torch", "he"] = param("torch", "torch: nn.Linear default U(±1/√fan_in); he: N(0, 2/fan_in), bias 0")
    lr: float = param(4e-3, "peak Adam learning rate (reference: 5e-4, constant)", min=0)
    lr_schedule: Literal["cosine", "constant"] = param("cosine", "cosine: lr·½(1 + cos(π t/steps)), which settles "
                                                       "the critic for the final estimate; constant: the reference's")
    steps: int = param(500, "Adam steps, fresh samples every step", min=1)
    cubic: bool = param(False, "y -> y³ (I unchanged; a harder density ratio to learn)")
    eval_every: int = param(50, "steps between estimates on a fixed held-out draw (the training curve)", min=1)
    eval_batches: int = param(20, "fresh draws of max(N) pairs for the final estimate (max(N)/N batches each)", min=1)
    oracle_batches: int = param(50, "fresh draws of max(N) pairs for the optimal critic", min=1)
    saturation_margin: float = param(0.4, "saturated: Î at the largest I within this of log N (nats)", min=0)
    truth_gap: float = param(4.0, "pinned to log N, not to the truth: Î at the largest I at least this far below I; "
                             "saturation is judged at the N with log N <= max(mi_levels) − this", min=0)
    shift_tolerance: float = param(0.25, "the ceiling moves with N: slope of Î against ln N within 1 ± this", min=0, max=1)
    tight_fraction: float = param(0.8, "nearly tight: Î at the smallest I and largest N >= this x I", min=0, max=1)
    oracle_margin: float = param(0.15, "calibrated: the optimal critic's Î at the largest I within this of log N", min=0)
    negative_control: bool = param(False, "low mutual information only (I ∈ {0.5, 1}): the headline must NOT reproduce")

    def validate(self) -> None:
        top = max(self.batch_sizes)
        if any(top % n for n in self.batch_sizes):
            raise ValueError(f"every batch size must divide the largest ({top}): got {list(self.batch_sizes)}")
        if len(set(self.batch_sizes)) != len(self.batch_sizes) or len(set(self.mi_levels)) != len(self.mi_levels):
            raise ValueError("batch_sizes and mi_levels must not repeat a value")
        if len(set(self.oracle_levels)) != len(self.oracle_levels) or len(set(self.objectives)) != len(self.objectives):
            raise ValueError("oracle_levels and objectives must not repeat a value")
        if bad := set(self.objectives) - set(OBJECTIVES):
            raise ValueError(f"unknown objectives {sorted(bad)}: choose from {', '.join(OBJECTIVES)}")
        if "infonce" not in self.objectives:
            raise ValueError("objectives must include infonce (the claims read it)")
        if max(self.mi_levels + self.oracle_levels) > 5 * self.dim:
            raise ValueError(f"mutual information above 5·dim = {5 * self.dim} nats: 1 − ρ² < e^-10, beyond float32 samples")
        if max(self.oracle_levels) != max(self.mi_levels):
            raise ValueError("the largest oracle level must equal the largest trained level (claim: calibration)")
        if not saturating_sizes(self):
            raise ValueError(f"no batch size has log N <= max(mi_levels) − truth_gap = "
                             f"{max(self.mi_levels) - self.truth_gap:g}: nothing can saturate")


def saturating_sizes(cfg: Config) -> list[int]:
    """The batch sizes whose ceiling lies at least `truth_gap` below the largest configured I: where
    saturation is expected and judged (the control judges the same N at its low levels)."""
    return [n for n in sorted(cfg.batch_sizes) if math.log(n) <= max(cfg.mi_levels) - cfg.truth_gap]


def levels(cfg: Config) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(trained, oracle) mutual-information levels in nats, ascending; the control's low levels."""
    if cfg.negative_control:
        return CONTROL_LEVELS, CONTROL_LEVELS
    return tuple(sorted(cfg.mi_levels)), tuple(sorted(cfg.oracle_levels))


def key(estimator: str, n: int, mi: float) -> str:
    """The arm of an estimator (`infonce`, `nwj`, `smile`, `oracle`) at batch n and true I: `infonce@N64,I10`."""
    return arm_key(estimator, N=n, I=int(mi) if float(mi).is_integer() else mi)


def trained_specs(cfg: Config) -> list[tuple[str, int, float]]:
    """(objective, N, I) of every trained arm: N-major, then objective, then I, so that members
    sharing a batch size and a bound are contiguous in the stack."""
    return [(o, n, i) for n in sorted(cfg.batch_sizes) for o in cfg.objectives for i in levels(cfg)[0]]


def oracle_specs(cfg: Config) -> list[tuple[str, int, float]]:
    """("oracle", N, I) of every closed-form arm (valued with the InfoNCE bound)."""
    return [("oracle", n, i) for n in sorted(cfg.batch_sizes) for i in levels(cfg)[1]]


def arms(cfg: Config) -> list[str]:
    """Every measurement key a run of `cfg` produces."""
    return [key(*spec) for spec in trained_specs(cfg) + oracle_specs(cfg)]


def claims(cfg: Config) -> list[Claim]:
    ns, sat, (trained, _) = sorted(cfg.batch_sizes), saturating_sizes(cfg), levels(cfg)
    top, low, n_hi = trained[-1], trained[0], ns[-1]
    saturated = tuple(t for n in sat for t in (
        Threshold("estimate", key("infonce", n, top), math.log(n) - cfg.saturation_margin, "greater"),
        Threshold("estimate", key("infonce", n, top), math.log(n), "less"),
        Threshold("estimate", key("infonce", n, top), top - cfg.truth_gap, "less")))
    ceiling = tuple(key("infonce", n, top) for n in ns)
    xs = tuple(math.log(n) for n in ns)
    shift = math.log(n_hi / ns[0])
    calibrated = tuple(t for n in sat for t in (
        Threshold("estimate", key("oracle", n, top), math.log(n) - cfg.oracle_margin, "greater"),
        Threshold("estimate", key("oracle", n, top), math.log(n), "less")))
    n_paper = 64 if 64 in sat else sat[0]
    return [
        Claim("saturates", f"InfoNCE saturates at log N: at true I = {top:g} nats the estimate lies in "
              f"[log N − {cfg.saturation_margin:g}, log N] for N = {', '.join(map(str, sat))}, at least "
              f"{cfg.truth_gap:g} nats below the truth", CITATION, AllOf(saturated),
              paper=Paper(round(math.log(64), 2), "nats: InfoNCE at true I = 10 with batch 64, flat at ln 64",
                          "Song & Ermon 2020, Fig. 1 (Gaussian, CPC)", confirmed=False,
                          ours=(key("infonce", n_paper, top), "estimate"))),
        Claim("ceiling-moves", f"The ceiling moves with the batch: at I = {top:g}, Î rises with ln N at slope "
              f"1 ± {cfg.shift_tolerance:g} (N = {ns[0]} -> {n_hi}: +{shift:.3g} nats expected)", CITATION,
              AllOf((Trend("estimate", ceiling, xs, "greater", 1 - cfg.shift_tolerance, x_label="ln N"),
                     Trend("estimate", ceiling, xs, "less", 1 + cfg.shift_tolerance, x_label="ln N"))),
              paper=Paper(1.0, "nat of the bound per nat of ln N: I(x; c) >= log N − L_N",
                          "van den Oord et al. 2018 (CPC), §2.3", confirmed=False)),
        Claim("tight-below", f"Below the ceiling the bound is nearly tight: at I = {low:g}, N = {n_hi}, "
              f"Î >= {cfg.tight_fraction:g} x I (this also catches an under-trained critic)", CITATION,
              Threshold("estimate", key("infonce", n_hi, low), cfg.tight_fraction * low, "greater")),
        Claim("oracle-calibration", f"The closed-form optimal critic log p(y | x), untrained, lands within "
              f"{cfg.oracle_margin:g} of log N at I = {top:g} for N = {', '.join(map(str, sat))}: the harness "
              f"measures the bound, not a training failure",
              "Poole et al. 2019 (the optimal InfoNCE critic: the log density ratio, up to a constant)",
              AllOf(calibrated)),
    ]


def check(cfg: Config, device: str) -> None:
    """Refuse on a CPU what is sized for a GPU (~6 FLOPs per weight, pair and step, two MLPs)."""
    if device != "cpu":
        return
    w = layer_widths(cfg)
    weights = 2 * sum(a * b for a, b in zip(w[:-1], w[1:]))
    members = len(trained_specs(cfg))  # per seed
    flops = 6 * weights * max(cfg.batch_sizes) * cfg.steps * members
    if flops > 5e12:
        raise UsageError(f"training {members} critics per seed for {cfg.steps} steps on {max(cfg.batch_sizes)} "
                         f"pairs needs ~{flops:.1e} FLOPs per seed, hours on a CPU: use --device cuda, or fewer "
                         "steps / batch sizes / levels")


def layer_widths(cfg: Config) -> list[int]:
    """d -> hidden x hidden_layers -> embed (torch-free; critic.py builds the MLPs from it)."""
    return [cfg.dim] + [cfg.hidden] * cfg.hidden_layers + [cfg.embed]
