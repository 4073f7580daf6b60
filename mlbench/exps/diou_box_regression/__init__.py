"""diou-box-regression: IoU, GIoU, DIoU and CIoU losses in the paper's box-regression simulation.

Tests Zheng et al. 2020 (AAAI), "Distance-IoU Loss: Faster and Better Learning for Bounding Box
Regression", on a fraction of its 1,715,000-case simulation (the authors' `test_1715k.m`;
`simulation.py`): anchors around a target at (10, 10), 7 target aspect ratios × 7 anchor
scales × 7 anchor aspect ratios per anchor centre, each regressed for 200 steps by
B ← B − η_t (2 − IoU) ∂L/∂B, η_t = 0.1 / 0.01 / 0.001 (steps 1-160 / 161-180 / 181-200).
The losses (`boxes.py`): L_IoU = 1 − IoU, L_GIoU = L_IoU + |C − B ∪ B_gt|/|C|,
L_DIoU = L_IoU + ρ²/c², L_CIoU = L_DIoU + αv. Two gradient modes on the same cases:

- `autograd`: exact gradients of these losses (CIoU's α detached);
- `paper`: a port of the authors' hand-written MATLAB gradients (`paper_gradients.py`) with
  its five quirks: (i) ∂/∂w, ∂/∂h without the ½ of w = r − l; (ii) mixed-up derivatives of
  the enclosing box's width and height (and −1 where the anchor spans the target); (iii)
  negative intersection extents kept for disjoint boxes in GIoU's union; (iv) CIoU's ∂v/∂w
  without 1/(w² + h²); (v) a sign error in DIoU's ∂/∂x, ∂/∂y. `paper_fixes` and
  `fix_variants` switch them off, alone or together; with all five off the port equals autograd.

Claims: the headline, "DIoU converges faster than GIoU" (GIoU/DIoU error ratio ≥ 1.2 at step
50 and at the end), judged with exact gradients; the same test with the paper's gradients
beside it: the two verdicts together are the finding. Then: CIoU ends best; IoU loss leaves
initially disjoint boxes where they are (its gradient is exactly 0 there); on initially
overlapping cases DIoU ends below GIoU; with the hand-written gradients our run redraws the
paper's curves (Fig. 3(b); judged only for the faithful port in the paper's set-up). The paper's
YOLOv3 AP table is shown as context only.
Every loss × case × seed of a mode is one stacked (4, M, N) tensor; seed k of every arm
regresses the same cases (paired comparisons).

What the data say. Quick profile (3 seeds × 40 centres × 343 cases, ~83 % of them initially
disjoint; CPU). The port redraws the paper's Fig. 3(b): mean error per case at iterations
10 / 50 / 100 / 200, ours (paper mode) vs the figure read off: IoU 3.73/3.51/3.49/3.44 vs
3.74/3.51/3.49/3.45, GIoU 2.90/1.96/1.41/0.91 vs 2.92/1.95/1.37/0.88, DIoU 2.44/0.31/0.24/0.0024
vs 2.44/0.31/0.25/≈0, CIoU 2.19/0.25/0.23/0.0024 vs 2.18/0.25/0.24/≈0 (`port-matches-figure`
is still inconclusive: GIoU's 40-centre samples differ by ~10 % between seeds). With exact
gradients the order of GIoU and DIoU flips: GIoU 3.04/1.14/0.34/0.017, DIoU 3.43/1.68/0.42/0.031,
CIoU 3.34/1.47/0.28/0.0040. Headline `diou-faster`: not_reproduced, GIoU/DIoU error ratio 0.68
[0.66, 0.70] at iteration 50 and 0.54 [0.47, 0.62] at 200 (GIoU ahead). The same test on the
hand-written gradients: reproduced, 6.3 [5.9, 6.9] and 376 [296, 477] (the paper's plot: ≈ 6.3
at 50). The quirk arms attribute it: GIoU at 50 / 200 goes 1.96 / 0.91 (all quirks) → 1.62 /
0.012 (iii fixed) → 1.14 / 0.017 (i+iii, = exact); DIoU 0.31 / 0.0024 (all) → 0.38 / 0.0024 (ii)
→ 1.56 / 0.0027 (ii+v) → 1.68 / 0.031 (i+ii+v, = exact), while (v) alone leaves DIoU at 3.4
(the sign error and the mixed-up derivatives compensate each other); (i), a doubled step on w
and h, is what drives every hand-written final error to ~0.0024. With all five fixed the port
matches autograd (final error within 3e-6 for IoU and GIoU, 1e-9 for DIoU and CIoU; the
trajectories are chaotic enough that float rounding alone moves single cases). The faithful GIoU
port sends 60 of 41,160 cases to w or h ≤ 0 (quirk iii; the MATLAB does not guard). CIoU ends
best with exact gradients (GIoU/CIoU 4.2 [3.3, 5.3], DIoU/CIoU 7.8 [5.8, 10.4]: reproduced);
IoU loss leaves 100 % of the initially disjoint cases unchanged and the others 0 % (reproduced);
on the initially overlapping cases DIoU does end below GIoU (ratio 2.0 [1.96, 2.03],
reproduced): DIoU's exact-gradient deficit is all on disjoint boxes. Negative control
(`negative_control=true`, every anchor centred on its target): DIoU = IoU to the last bit in
both modes, GIoU/DIoU = 0.71 (exact) and 1.02 (paper): neither `diou-faster` claim reproduces,
and `iou-stalls` is inconclusive (no disjoint cases).

Seed documents: 000 and 002 (the IoU/GIoU/DIoU/CIoU posts: "if two boxes do not intersect,
IoU = 0 and does not reflect their distance").

Run: `mlbench run diou-box-regression` (quick, CPU); `--profile full --device cuda` for all
5,000 centres (1,715,000 cases per seed), 5 seeds and every combination of fixes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlbench.core.config import param
from mlbench.core.errors import UsageError
from mlbench.core.grid import arm_key
from mlbench.core.verdict import AllOf, Claim, Paired, Paper, Threshold

VERSION = 1
THREADS = 1  # elementwise float64 on ~10^5-10^6 numbers: a second thread buys little on a shared 2-core CPU
SUMMARY = ("DIoU and CIoU losses regress boxes faster than IoU and GIoU in the paper's simulation; IoU loss "
           "cannot move disjoint boxes. With exact gradients, does DIoU still beat GIoU?")
CITATION = "Zheng et al. 2020, Distance-IoU Loss (AAAI), simulation experiment"
LOSSES = ("iou", "giou", "diou", "ciou")
MODES = ("autograd", "paper")
QUIRKS = ("i", "ii", "iii", "iv", "v")
QUIRKS_OF = {"iou": ("i",), "giou": ("i", "iii"), "diou": ("i", "ii", "v"), "ciou": ("i", "ii", "iv", "v")}
RATIO = "giou-over-diou"  # per seed: GIoU's mean error / DIoU's
FIGURE = ("Fig. 3(b), regression error sum curves (= simulation_examples/regression_error_sum_curves.png in "
          "Zzh-tju/DIoU), read off the plot, divided by 1,715,000 cases")
NEGATIVE_CONTROL_CLAIMS = ("diou-faster", "diou-faster-paper-gradients")
# Fig. 3(b) read off the plot: total error / 1,715,000 cases (IoU, GIoU, DIoU, CIoU) after t iterations
PAPER_CURVE = {10: (3.74, 2.92, 2.44, 2.18), 50: (3.51, 1.95, 0.31, 0.25), 100: (3.49, 1.37, 0.25, 0.24),
               200: (3.45, 0.88, 0.0, 0.0)}  # DIoU, CIoU at 200: on the axis (< 0.005)
FIGURE_STEPS = (10, 50, 100)  # where every curve can be read off
PAPER_SCHEDULE = ((160, 20, 20), (0.1, 0.01, 0.001))
FIGURE_TOLERANCE = 1.1  # our paper-mode mean error within ×/÷ this of the figure's


def parse_fixes(text: str) -> tuple[str, ...]:
    """'none' -> (), 'all' -> every quirk, 'i+iii' -> ('i', 'iii'), in QUIRKS order."""
    if text == "none":
        return ()
    parts = QUIRKS if text == "all" else tuple(text.split("+"))
    unknown = [p for p in parts if p not in QUIRKS]
    if unknown or not parts:
        raise ValueError(f"fixes must be 'none', 'all' or quirks joined by '+' from {', '.join(QUIRKS)}; got {text!r}")
    return tuple(q for q in QUIRKS if q in parts)


def parse_variant(text: str) -> tuple[str, tuple[str, ...]]:
    """'giou:iii' -> ('giou', ('iii',)): a paper-mode arm of one loss with those quirks fixed
    (only the loss's own quirks count)."""
    loss, sep, fixes = text.partition(":")
    if not sep or loss not in LOSSES:
        raise ValueError(f"fix variants read <loss>:<fixes> with loss in {', '.join(LOSSES)}; got {text!r}")
    own = tuple(q for q in parse_fixes(fixes) if q in QUIRKS_OF[loss])
    if not own:
        raise ValueError(f"{text!r} fixes none of {loss}'s quirks ({'+'.join(QUIRKS_OF[loss])})")
    return loss, own


@dataclass(frozen=True)
class Config:
    centres: int = param(40, "anchor centres per seed, 343 cases each (the paper: 5,000 = 1,715,000 cases)", min=1)
    centre_radius: float = param(3.0, "radius of the disc of anchor centres around the target's centre (10, 10)", min=0)
    stage_steps: tuple[int, ...] = param((160, 20, 20), "iterations at each learning rate (the paper's 200)", min=1)
    stage_lrs: tuple[float, ...] = param((0.1, 0.01, 0.001), "learning rate η of each stage", min=0)
    early_step: int = param(50, "iteration at which 'faster' is judged first (and again at the last)", min=1)
    report_steps: tuple[int, ...] = param((10, 50, 100, 200), "iterations whose mean error the tables show", min=0)
    paper_fixes: str = param("none", "quirks fixed in the paper-mode arms the claims read: none, all, or e.g. i+iii")
    fix_variants: tuple[str, ...] = param(("iou:all", "giou:iii", "giou:all", "diou:ii", "diou:v", "diou:ii+v",
                                           "diou:all", "ciou:all"),
                                          "extra paper-mode arms <loss>:<fixes> for the attribution table")
    min_ratio: float = param(1.2, "GIoU/DIoU mean-error ratio that 'DIoU converges faster' must exceed", min=1)
    ciou_ratio: float = param(1.5, "final-error ratio GIoU/CIoU and DIoU/CIoU that 'CIoU is best' must exceed", min=1)
    unchanged_tol: float = param(1e-9, "a case whose error moved less than this is 'unchanged'", min=0)
    stall_share: float = param(0.99, "IoU loss must leave this share of disjoint cases unchanged, the others at "
                               "most 1 − it", min=0.5, max=1)
    chunk_centres: int = param(0, "centres per unit of work (0: all at once; the full profile splits its 5,000)",
                               min=0)
    checkpoint_cases: int = param(343, "cases per seed (from the first) whose start and end boxes each "
                                  "checkpoint keeps", min=1)
    log_every: int = param(10, "iterations between metrics lines", min=1)
    negative_control: bool = param(False, "centre every anchor on its target (ρ = 0: DIoU = IoU in value and "
                                   "gradient, no case starts disjoint): 'DIoU faster' must not reproduce")

    @property
    def steps(self) -> int:
        return sum(self.stage_steps)

    def validate(self) -> None:
        if len(self.stage_steps) != len(self.stage_lrs):
            raise ValueError("stage_steps and stage_lrs need one entry per stage")
        if self.early_step > self.steps or max(self.report_steps) > self.steps:
            raise ValueError(f"early_step and report_steps must be <= the {self.steps} iterations")
        parse_fixes(self.paper_fixes)
        keys = [variant_key(*parse_variant(v)) for v in self.fix_variants]
        if len(set(keys)) != len(keys):
            raise ValueError(f"fix_variants repeat an arm: {', '.join(self.fix_variants)}")


CPU_CENTRES = 500  # ~12x the quick profile: about 5 minutes on one CPU core


def check(cfg: Config, device: str) -> None:
    """Refuse on a CPU what is sized for a GPU (the full profile's 5,000 centres: hours there)."""
    if device == "cpu" and cfg.centres > CPU_CENTRES:
        raise UsageError(f"{cfg.centres} centres × 343 cases per seed take hours on a CPU (the quick profile's 40 "
                         f"take ~20 s): use --device cuda, or at most --set centres={CPU_CENTRES}")


def variant_key(loss: str, fixes: tuple[str, ...]) -> str:
    return arm_key(loss, mode="paper", fixed="+".join(fixes))


def mode_arms(cfg: Config, mode: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """(measurement key, loss, fixed quirks) of every arm of `mode`, grouped by loss."""
    if mode == "autograd":
        return [(arm_key(loss, mode=mode), loss, QUIRKS) for loss in LOSSES]
    main = parse_fixes(cfg.paper_fixes)
    variants = [parse_variant(v) for v in cfg.fix_variants]
    return [arm for loss in LOSSES for arm in
            [(arm_key(loss, mode=mode), loss, tuple(q for q in main if q in QUIRKS_OF[loss]))]
            + [(variant_key(v, fixes), v, fixes) for v, fixes in variants if v == loss]]


def measured_steps(cfg: Config) -> list[int]:
    figure = FIGURE_STEPS if compares_to_figure(cfg) else ()
    return sorted({*cfg.report_steps, cfg.early_step, cfg.steps, *figure})


def arms(cfg: Config) -> list[str]:
    return [key for mode in MODES for key, _, _ in mode_arms(cfg, mode)] + [arm_key(RATIO, mode=m) for m in MODES]


def faster(cfg: Config, mode: str) -> AllOf:
    giou, diou, bound = arm_key("giou", mode=mode), arm_key("diou", mode=mode), math.log(cfg.min_ratio)
    return AllOf((Paired(f"error_t{cfg.early_step}", giou, diou, "greater", bound, log_ratio=True),
                  Paired("final_error", giou, diou, "greater", bound, log_ratio=True)))


def compares_to_figure(cfg: Config) -> bool:
    """The paper's curves compare only with the faithful port in the paper's set-up (its step
    schedule, anchors within radius 3, no control)."""
    return ((tuple(cfg.stage_steps), tuple(cfg.stage_lrs)) == PAPER_SCHEDULE and cfg.centre_radius == 3.0
            and not cfg.negative_control and not parse_fixes(cfg.paper_fixes))


def claims(cfg: Config) -> list[Claim]:
    T, t0, r = cfg.steps, cfg.early_step, cfg.min_ratio
    fixes = parse_fixes(cfg.paper_fixes)
    hand = "the authors' hand-written gradients (quirks kept)" if not fixes else \
        f"the authors' hand-written gradients with quirk(s) {'+'.join(fixes)} fixed"
    ratio_paper = Paper(6.3, "× GIoU/DIoU mean error at iteration 50 (1.95 vs 0.31 per case)", FIGURE)
    auto = {loss: arm_key(loss, mode="autograd") for loss in LOSSES}
    figure = [Claim("port-matches-figure", f"With the authors' gradients our simulation redraws the paper's curves: "
                    f"every loss's mean error at iterations {', '.join(map(str, FIGURE_STEPS))} within ×/÷ "
                    f"{FIGURE_TOLERANCE:g} of Fig. 3(b)'s", f"{CITATION}, Fig. 3(b); Zzh-tju/DIoU test_1715k.m",
                    AllOf(tuple(Threshold("figure_log_ratio", arm_key(loss, mode="paper"), math.log(FIGURE_TOLERANCE),
                                          "less") for loss in LOSSES)),
                    paper=Paper(PAPER_CURVE[50][2], "mean error per case of DIoU at iteration 50", FIGURE,
                                ours=(arm_key("diou", mode="paper"), "error_t50")))] if compares_to_figure(cfg) else []
    return [
        Claim("diou-faster", f"DIoU loss converges faster than GIoU loss with exact gradients: GIoU/DIoU mean "
              f"regression error ≥ {r:g} at iteration {t0} and at iteration {T} (paired over seeds)",
              f"{CITATION} (abstract; Fig. 3)", faster(cfg, "autograd"),
              paper=Paper(ratio_paper.value, ratio_paper.unit, FIGURE, ours=(arm_key(RATIO, mode="autograd"),
                                                                              f"ratio_t{t0}"))),
        Claim("diou-faster-paper-gradients", f"The same test with {hand}: GIoU/DIoU mean error ≥ {r:g} at "
              f"iterations {t0} and {T}", f"{CITATION}; Zzh-tju/DIoU dGIOU.m, dDIOU.m", faster(cfg, "paper"),
              paper=Paper(ratio_paper.value, ratio_paper.unit, FIGURE, ours=(arm_key(RATIO, mode="paper"),
                                                                              f"ratio_t{t0}"))),
        Claim("ciou-best", f"CIoU loss ends with the lowest error (exact gradients): final error of GIoU and of "
              f"DIoU ≥ {cfg.ciou_ratio:g} × CIoU's", f"{CITATION} (Fig. 3; §CIoU)",
              AllOf(tuple(Paired("final_error", auto[other], auto["ciou"], "greater", math.log(cfg.ciou_ratio),
                                 log_ratio=True) for other in ("giou", "diou"))),
              paper=Paper(0.25, "mean error per case of CIoU at iteration 50 (DIoU 0.31, GIoU 1.95; at 200 both "
                          "DIoU and CIoU lie at ≈ 0 on the plot)", FIGURE, ours=(auto["ciou"], f"error_t{t0}"))),
        Claim("iou-stalls", f"IoU loss cannot move boxes that do not overlap their target (IoU = 0, gradient 0): "
              f"after {T} iterations it leaves ≥ {cfg.stall_share:.0%} of the initially disjoint cases unchanged, "
              f"GIoU, DIoU and CIoU ≤ {1 - cfg.stall_share:.0%}", f"{CITATION}, analysis of IoU and GIoU losses",
              AllOf((Threshold("unchanged_disjoint", auto["iou"], cfg.stall_share, "greater"),
                     *(Threshold("unchanged_disjoint", auto[other], 1 - cfg.stall_share, "less")
                       for other in ("giou", "diou", "ciou")))),
              paper=Paper(3.45, "mean error per case of IoU loss at iteration 200 (3.87 at iteration 1)", FIGURE,
                          ours=(auto["iou"], "final_error"))),
        Claim("diou-beats-giou-overlapping", "On the initially overlapping cases DIoU ends below GIoU (exact "
              "gradients, paired over seeds)", f"{CITATION} (Fig. 3(a): GIoU's errors on horizontal and vertical "
              "cases)", Paired("final_error_overlap", auto["giou"], auto["diou"], "greater", 0.0, log_ratio=True)),
        *figure,
    ]
