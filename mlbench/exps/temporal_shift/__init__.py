"""temporal-shift: shifting channels in time gives a 2D CNN temporal modelling at zero extra cost.

Shows (Lin, Gan, Han 2019, TSM: Temporal Shift Module for Efficient Video Understanding, ICCV;
seed document 001, the posts on 2D vs 3D video networks and two-stream action recognition):

1. Headline: on synthetic videos whose class is the direction of motion (a 3×3 square moving
   left or right on a torus, in noise), the same small ResNet with a temporal shift (1/8 of the
   channels one frame back, 1/8 one frame forward, inside every residual branch) beats the
   per-frame 2D net (TSN) by ≥ 30 accuracy points on every seed, at exactly the same parameter
   count and multiply-adds (both counted: parameters by numel, MACs by
   torch.utils.flop_counter.FlopCounterMode, which counts the shift's copies as 0).
2. The 2D net is blind by construction: per-frame convolutions and a temporal average make its
   logits exactly invariant to reversing time (max |Δlogit| = 0 in float32, an exact-equality
   test; its temporal sum runs over sorted values, so rounding cannot break the symmetry), and a
   reversed left video is exactly a right video (torus, uniform start, i.i.d. noise), so it is
   right on one of each pair: accuracy 1/2, here inside [0.4, 0.6] on every seed.
3. TSM matches a 3D CNN (every conv 3×3×3) at a third of the cost: accuracies equivalent within
   ±0.05 (TOST, 90 % CI), with MACs(3D)/MACs(TSM) = 3.00 and parameters 2.98× (counted, ≥ 2.9).
   Both sit near the ceiling, so this toy cannot rank 3D against TSM.
4. Positive control: on an appearance-only task (square vs cross, random motion) the 2D net and
   TSM both reach ≥ 0.9 on every seed: the 2D net is not simply broken, and the shift does not
   cost it its spatial modelling.
The paper's Something-Something V1 figures (TSN 19.7 % -> TSM 45.6 % top-1, 8 frames,
ResNet-50) stand beside the headline and in `table-paper.csv` as context: a toy gain of
~50 points on a two-class task is not comparable in size to +25.9 points on 174 classes.

Quick protocol: videos of 8 frames of 16×16, speeds 1-2 px/frame, noise σ 0.35; a 3×3 stride-2
stem (1 -> 16), two residual blocks of two 3×3 convs (16 channels), ReLU, spatial + temporal
average, a 16 -> 2 head (9,474 parameters; the 3D twin 28,194); per video 4,792,352 MACs
(2D, TSM) vs 14,376,992 (3D). Adam lr 3e-3, 150 steps of 32 fresh videos per seed, accuracy on
512 fixed test videos. 2D and TSM share seed k's initial weights and every batch (paired); all
arms × seeds train as one stacked model: models are channel blocks of one activation tensor,
each conv is one grouped conv3d (groups = models) per run of arms with the same temporal
kernel, and the shift moves channels inside each model's block only.

Negative control (`negative_control=true`): every video's 8 frames in a fresh random order
(train and test). A set of frames carries no direction, so TSM falls to chance with the 2D net
and the headline must come out not_reproduced.

Measured (quick, 3 seeds, 1 thread, on a loaded 2-core CPU: 31 s user + 3-7 s system CPU time):
direction accuracy 2D 0.498 (seeds 0.535 / 0.471 / 0.488, each exactly its test set's share of
one class: a constant guess), TSM 0.988 (0.967 / 0.998 / 1.000), 3D 1.000; gain 0.490 (95 % CI
0.363-0.618, smallest 0.432) against the paper's +25.9 points; on the reversed test videos TSM
scores 0.008 (it reads the order, so it names the other class); TSM − 3D −0.012 (90 % CI −0.043
to 0.020); appearance task 2D 0.986, TSM 0.975. All four claims reproduced. With a plain mean
over frames instead of the sorted sum the 2D net's reversal difference is 1.2e-7, not 0. The
conv init uses PyTorch's default variance 1/(3·fan_in): with He's 2/fan_in the appearance task
reached only 0.91-0.95 in 150 steps. Under the negative control every arm predicts one class
(0.498), the gain is exactly 0 and the headline is not_reproduced, while claims 2-4 still come
out reproduced (the 2D net stays blind, TSM and 3D are equivalent at chance, and appearance
needs no order).

Not done at this scale: the paper's latency measurements (here cost is counted, not timed),
its Kinetics and Something-Something training (generated videos only), and its ablations
beyond what the full profile adds (in-place and online shift arms, 16 frames of 32×32, a
residual-vs-in-place claim); its classes stay left/right (no up/down, approach or rotation).
No GPU was lent to this work: the full profile is written and starts, but was not run at scale;
the exact reversal invariance is checked on CPU (a GPU convolution algorithm that rounds frames
differently would show as a tiny nonzero max |Δlogit| there and fail claim 2).
Seed documents: 001.

Run: `mlbench run temporal-shift` (quick, CPU, 1 thread); `--profile full --device cuda`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlbench.core.config import param
from mlbench.core.grid import arm_key
from mlbench.core.verdict import AllOf, Claim, Equivalent, Paired, Paper
from mlbench.exps.temporal_shift.verdicts import EverySeed, SameCount

VERSION = 1
THREADS = 1  # grouped conv3d at one pinned thread; FACTS.md: under load 2 threads ran up to 5x slower than 1
SUMMARY = ("A temporal shift of 1/4 of the channels lets a 2D CNN tell the direction of motion, which a per-frame "
           "2D CNN provably cannot, at exactly the same parameters and FLOPs; a 3D CNN needs 3x the cost.")
CITATION = "Lin, Gan, Han 2019, TSM: Temporal Shift Module for Efficient Video Understanding (ICCV)"
VARIANT_NAMES = ("2d", "tsm", "tsm-inplace", "tsm-online", "3d")  # see network.VARIANTS
SHAPE_ARMS = ("2d", "tsm")  # the appearance-only control task
CLASSES = 2
MIN_GAIN = 0.30  # headline: acc(TSM) − acc(2D) on every seed (fixed before any run)
CHANCE_BAND = (0.4, 0.6)  # claim 2: the 2D net's accuracy on every seed (binomial sd 0.022 at n = 512)
EQUIV_MARGIN = 0.05  # claim 3: |acc(TSM) − acc(3D)|
MIN_COST_RATIO = 2.9  # claim 3: MACs and parameters of 3D over TSM (3.00 and 2.98 counted)
SHAPE_FLOOR = 0.9  # claim 4: both arms on the appearance task
CPU_MAX_TMACS = 5.0  # check(): training MACs per seed a CPU run may take (quick: 0.5 T)


@dataclass(frozen=True)
class Config:
    frames: int = param(8, "T, frames per video (cost scales with T; the paper's 8)", min=2)
    size: int = param(16, "frame height = width in pixels (a torus)", min=4)
    speeds: tuple[int, ...] = param((1, 2), "speeds v in px/frame, drawn uniformly", min=1)
    noise: float = param(0.35, "std of the i.i.d. Gaussian pixel noise (sprite pixels are 1; more noise needs more steps)",
                         min=0)
    channels: int = param(16, "C, channels of every conv", min=2)
    blocks: int = param(2, "residual blocks (two 3x3 convs each)", min=1)
    fold_div: int = param(8, "shift C // fold_div channels each way (paper: 8, so 1/4 in all)", min=2)
    arms: tuple[str, ...] = param(("2d", "tsm", "3d"), f"direction-task arms, from {', '.join(VARIANT_NAMES)} "
                                  "(must include 2d and tsm)")
    shape_task: bool = param(True, "also train 2d and tsm on the appearance-only task (claim 4)")
    steps: int = param(150, "Adam steps per task (noise 0.5 needed 250 for every TSM seed to learn)", min=1)
    batch_size: int = param(32, "fresh videos per step and seed", min=1)
    lr: float = param(3e-3, "Adam learning rate", gt=0)
    test_size: int = param(512, "fixed test videos per seed and task (binomial sd 0.022 at chance)", min=8)
    eval_every: int = param(25, "steps between test-accuracy points of the learning curves", min=1)
    curve_size: int = param(128, "test videos per learning-curve point (the first ones; the final accuracy uses all)", min=1)
    negative_control: bool = param(False, "shuffle every video's frames (train and test): no order to model, "
                                   "the headline must NOT reproduce")

    def validate(self) -> None:
        if unknown := [a for a in self.arms if a not in VARIANT_NAMES]:
            raise ValueError(f"unknown arms {unknown}: choose from {', '.join(VARIANT_NAMES)}")
        if len(set(self.arms)) != len(self.arms) or not {"2d", "tsm"} <= set(self.arms):
            raise ValueError("arms must be distinct and include 2d and tsm (the headline)")
        if self.channels // self.fold_div < 1:
            raise ValueError(f"channels // fold_div must be >= 1 (nothing to shift), got {self.channels} // {self.fold_div}")
        if 2 * max(self.speeds) >= self.size:
            raise ValueError(f"speeds must be below size / 2 = {self.size / 2:g}: on the torus a move of v px and one "
                             "of v - size px look the same, so left and right would alias")
        if self.curve_size > self.test_size:
            raise ValueError("curve_size must be <= test_size (the curves use the first test videos)")


def tasks(cfg: Config) -> dict[str, tuple[str, ...]]:
    """Task -> its arms, in training order."""
    return {"direction": tuple(cfg.arms), **({"shape": SHAPE_ARMS} if cfg.shape_task else {})}


def key(arm: str, task: str = "direction") -> str:
    return arm_key(arm, task=task)


def arms(cfg: Config) -> list[str]:
    """Every measurement key: each task's arms, then the per-seed comparisons."""
    out = [key(a, t) for t, names in tasks(cfg).items() for a in names]
    out.append(key("tsm-vs-2d"))
    out += [key(f"{a}-vs-tsm") for a in cfg.arms if a not in ("2d", "tsm")]
    return out


def claims(cfg: Config) -> list[Claim]:
    tsm, twod = key("tsm"), key("2d")
    out = [
        Claim("zero-cost-temporal", f"On the direction task the temporal shift beats the per-frame 2D net by at "
              f"least {MIN_GAIN:.0%} accuracy on every seed, with exactly the same parameter count and MACs "
              "(counted)", f"{CITATION}, §3 and Table 2",
              AllOf((EverySeed("gain", key("tsm-vs-2d"), low=MIN_GAIN), SameCount("params", tsm, twod),
                     SameCount("macs", tsm, twod))),
              paper=Paper(25.9, "top-1 points, TSM over TSN (19.7 % -> 45.6 %), Something-Something V1, ResNet-50, "
                          "8 frames, same FLOPs (33 G)", "Table 2", confirmed=False,
                          ours=(key("tsm-vs-2d"), "gain_points"),
                          note="45.6 % confirmed in the reference implementation's README; 19.7 % recalled")),
        Claim("2d-time-blind", f"The per-frame 2D net is blind to the order of frames: its logits are exactly "
              f"invariant to time reversal (max |Δlogit| = 0) and its accuracy is in "
              f"[{CHANCE_BAND[0]:g}, {CHANCE_BAND[1]:g}] on every seed", f"{CITATION}, §1 (2D CNNs cannot capture "
              "temporal relationships)",
              AllOf((EverySeed("reversal_max_abs", twod, high=0.0),
                     EverySeed("acc", twod, CHANCE_BAND[0], CHANCE_BAND[1])))),
    ]
    if "3d" in cfg.arms:
        out.append(Claim("3d-at-3x-cost", f"TSM is as accurate as the 3D CNN (TOST within ±{EQUIV_MARGIN:g}) at a "
                         f"third of its cost: MACs and parameters of 3D at least {MIN_COST_RATIO:g}x TSM's (counted)",
                         f"{CITATION}, abstract and Table 2",
                         AllOf((Equivalent("acc", tsm, key("3d"), EQUIV_MARGIN),
                                EverySeed("macs_ratio", key("3d-vs-tsm"), low=MIN_COST_RATIO),
                                EverySeed("params_ratio", key("3d-vs-tsm"), low=MIN_COST_RATIO))),
                         paper=Paper(6, "x fewer FLOPs than the I3D family at higher accuracy, Something-Something V1",
                                     "abstract (arXiv v1)", confirmed=False, ours=(key("3d-vs-tsm"), "macs_ratio"),
                                     note="I3D there is a 32-frame ResNet-50; our 3D twin inflates every conv at 8 frames")))
    if cfg.shape_task:
        out.append(Claim("appearance-control", f"On the appearance-only task (square vs cross) the 2D net and TSM "
                         f"both reach {SHAPE_FLOOR:g} accuracy on every seed", f"{CITATION}, Kinetics-400 results",
                         AllOf((EverySeed("acc", key("2d", "shape"), low=SHAPE_FLOOR),
                                EverySeed("acc", key("tsm", "shape"), low=SHAPE_FLOOR))),
                         paper=Paper("70.6 -> 74.1", "% top-1, TSN -> TSM, Kinetics-400 (appearance-heavy), "
                                     "8 frames x 10 clips", "reference implementation README, dense sampling",
                                     confirmed=True, ours=(key("tsm", "shape"), "acc_pct"))))
    if "tsm-inplace" in cfg.arms:
        out.append(Claim("residual-vs-inplace", "Residual shift is at least as accurate as in-place shift "
                         "(paired difference, CI above −0.01)", f"{CITATION}, §3.3 (residual vs in-place)",
                         Paired("acc", tsm, key("tsm-inplace"), "greater", -0.01),
                         paper=Paper("residual > in-place", "top-1", "§3.3 ablation", confirmed=False)))
    return out


def training_tmacs(cfg: Config) -> float:
    """Training multiply-adds per seed, in T (forward + backward ~ 3x forward), from the closed form."""
    per_video = {1: 0.0, 3: 0.0}
    side = (cfg.size + 1) // 2
    for k in per_video:
        per_video[k] = cfg.frames * side * side * 9 * k * (cfg.channels + 2 * cfg.blocks * cfg.channels ** 2)
    direction = sum(per_video[3 if a == "3d" else 1] for a in cfg.arms)
    shape = 2 * per_video[1] if cfg.shape_task else 0.0
    return 3 * cfg.steps * cfg.batch_size * (direction + shape) / 1e12


def check(cfg: Config, device: str) -> None:
    """Before anything is written: refuse on a CPU a config sized for a GPU."""
    from mlbench.core.errors import UsageError

    tmacs = training_tmacs(cfg)
    if device != "cuda" and tmacs > CPU_MAX_TMACS:
        raise UsageError(f"temporal-shift: this config is GPU-sized ({tmacs:.0f} T multiply-adds of training per seed, "
                         f"the CPU limit is {CPU_MAX_TMACS:g}); use --device cuda, or fewer --set steps=... on CPU")
