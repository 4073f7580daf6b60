"""fp16-mixed: mixed-precision training needs fp32 master weights and loss scaling.

Shows (Micikevicius et al. 2018, "Mixed Precision Training"; torch.amp.GradScaler; seed 001):

1. Gradient underflow. fp16 has 5 exponent bits: largest 65504, smallest normal 2^-14, smallest
   subnormal 2^-24; |x| <= 2^-25 rounds to 0. As an MLP on sklearn digits converges, its
   activation gradients dL/dz drift far below 2^-24. The census counts the non-zero fp32
   gradients with fp16(s·g) = 0, and the share of sum |g| they carry, for loss scale s = 1, a
   static s and the dynamic scaler's current s. "Removed by scaling" is judged on that mass: the
   paper notes the tiniest values are irrelevant, and even 2^17 leaves ~10% of the *values*
   (those below 2^-42) at 0 late in a long run, while they hold ~1e-8 of the mass.
2. Lost updates. fp16 has 10 mantissa bits, so w + u rounds back to w when |u| < ~2^-11 |w|:
   updates lr·v that small vanish unless an fp32 master copy accumulates them.
3. Six arms on the same seeds (same init, same batches): fp32; bf16 (8 exponent bits, no
   scaling); pure fp16 (weights, gradients, momentum and update all fp16, no scaling); fp16
   compute with fp32 master weights and no scaling; + static loss scale; + dynamic loss scale
   (GradScaler's rule: s0 = 2^16, x2 after `growth_interval` clean steps, x0.5 and skip the step
   on inf/NaN; the static arm also skips such steps). Quick uses growth_interval 100, not 2000,
   so the scale moves within 600 steps; full uses GradScaler's 2000.

fp16 on CPU is emulated exactly, not run (accelerate ignores fp16 on CPU): each tensor the recipe
stores in fp16 is rounded by an fp32 -> fp16 -> fp32 round trip (round to nearest even, with
subnormals). Rounded: the input, the fp16 copy of every weight and bias, every layer's output z;
backward: dL/dz, dL/dh and the weight gradients; for no-master arms also g/s, the momentum buffer,
lr·v and the new weight. Products of fp16 values are exact in fp32 and summed in fp32, as on
tensor cores ("fp32 accumulation"); loss and softmax stay fp32, as under autocast. All arms and
seeds train as one stacked model (batched matmul over M = arms x seeds).

What comes out at digits scale: scaled fp16 and bf16 match fp32; half or more of the activation
gradients underflow without scaling, yet training does not suffer, because they carry < 1% of the
gradient mass ("unscaled-hurts" is reported and does not reproduce). Pure fp16 keeps its test
accuracy, but its training loss stalls above fp32's (x1.2 quick, x3 full) as most updates are lost.
The "worse" and "equivalent" judgements therefore use the final training loss next to accuracy.

The `full` profile (GPU only) adds real `torch.autocast` + `GradScaler` on a 6-layer causal LM:
median step time and `torch.cuda.max_memory_allocated` for fp32 (TF32 off), TF32, bf16, fp16, and
the same LM as accelerate's users train it (`Accelerator(mixed_precision="bf16" | "fp16")`,
`accelerator.autocast()`, `accelerator.backward`, its GradScaler), for the figures they get.

Run: `mlbench run fp16-mixed` (quick, CPU); `mlbench run fp16-mixed --profile full --device cuda`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlbench.core.config import param
from mlbench.core.grid import arm_key
from mlbench.core.verdict import AllOf, Claim, Equivalent, Paired, Paper, Threshold

VERSION = 3
SUMMARY = ("fp16 training matches fp32 when it keeps fp32 master weights and scales the loss: unscaled fp16 "
           "gradients underflow to 0, and updates below 2^-11 of a weight vanish in fp16.")
PAPER = "Micikevicius et al. 2018, Mixed Precision Training (ICLR)"
CITATION = f"{PAPER}; torch.amp.GradScaler"
BF16_PAPER = "Kalamkar et al. 2019, A Study of BFLOAT16 for Deep Learning Training"
# arm: (storage format, fp32 master weights, loss scaling); arm-major order in the stacked model
ARMS = {"fp32": (None, True, "none"), "bf16": ("bfloat16", True, "none"),
        "fp16-pure": ("float16", False, "none"), "fp16-noscale": ("float16", True, "none"),
        "fp16-static": ("float16", True, "static"), "fp16-dynamic": ("float16", True, "dynamic")}
SCALES = ("1", "static", "dynamic")  # the loss scales the gradient census tries on the fp32 arm's gradients
AMP_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")  # the hand-built recipe: torch.autocast (+ GradScaler)
AMP_ARMS = (*AMP_PRECISIONS, "accelerate-bf16", "accelerate-fp16")  # + Accelerator(mixed_precision=...)


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = param((128, 128), "hidden widths of the MLP 64-...-10 on digits", min=1)
    steps: int = param(600, "SGD steps (gradients shrink as training converges: underflow grows)", min=1)
    batch_size: int = param(128, "images per step; mean cross-entropy, so dL/dlogits carries 1/B", min=1)
    lr: float = param(0.1, "SGD learning rate", min=0)
    momentum: float = param(0.9, "SGD momentum (torch semantics: v = mu v + g, w -= lr v)", min=0, max=1)
    static_scale: float = param(1024.0, "static loss scale (the paper used 8 to 32k)")
    init_scale: float = param(65536.0, "dynamic scaler's initial scale (GradScaler: 2^16)")
    growth_interval: int = param(100, "clean steps before the dynamic scale doubles (GradScaler: 2000)", min=1)
    census_steps: tuple[int, ...] = param((0, 150, 300, 599), "steps at which gradients and updates are censused (the last one judges)", min=0)
    eval_every: int = param(25, "steps between test evaluations (curves)", min=1)
    margin: float = param(0.01, "equivalence margin on test accuracy (±1 pp)")
    loss_margin: float = param(0.1, "equivalence margin on final training loss (ratio within 1 ± 10%); also the 'worse' bound")
    min_underflow: float = param(0.05, "share of activation gradients zeroed at scale 1 that counts as 'clear'", min=0, max=1)
    min_removed: float = param(0.99, "share of the zeroed gradient mass (sum |g|) the dynamic scale must recover", min=0, max=1)
    negative_control: bool = param(False, "the scaled fp16 arms lose their fp32 master weights: the headline must NOT reproduce")
    amp_benchmark: bool = param(False, "GPU only: real autocast + GradScaler on an LM, step time and peak memory")
    amp_d_model: int = param(512, "LM width (as in the H100 anchor run: 6 layers, d=512, B=32, T=256)", min=64)
    amp_layers: int = param(6, "LM depth", min=1)
    amp_seq_len: int = param(256, "LM sequence length T", min=1)
    amp_batch: int = param(32, "LM batch size", min=1)
    amp_vocab: int = param(512, "LM vocabulary; tokens from a random Markov chain, 4 successors each (entropy <= ln 4 = 1.39)", min=2)
    amp_lr: float = param(1e-3, "LM learning rate (fused AdamW, as in the H100 anchor run)", min=0)
    amp_steps: int = param(300, "timed LM steps per precision and seed", min=1)
    amp_warmup: int = param(20, "untimed LM steps first (kernel selection, allocator)", min=0)

    def validate(self) -> None:
        if not all(s < self.steps for s in self.census_steps):
            raise ValueError(f"census_steps must lie in [0, steps={self.steps})")
        # bounds are inclusive (min=0 would admit 0): strict positivity is checked here
        if min(self.static_scale, self.init_scale, self.margin, self.loss_margin) <= 0:
            raise ValueError("scales and margins must be positive")
        if self.amp_d_model % 64:
            raise ValueError("amp_d_model must be a multiple of 64 (heads of size 64)")


def arm_specs(cfg: Config) -> dict[str, tuple]:
    """ARMS, where the negative control takes the fp32 master copy from the scaled fp16 arms."""
    specs = dict(ARMS)
    if cfg.negative_control:  # remove the ingredient the headline depends on
        for arm in ("fp16-static", "fp16-dynamic"):
            specs[arm] = (specs[arm][0], False, specs[arm][2])
    return specs


def arms(cfg: Config) -> list[str]:
    """Every measurement key a run of `cfg` produces: the trained arms, the census per loss scale,
    and the GPU timing arms (full profile)."""
    amp = [arm_key(f"amp-{a}") for a in AMP_ARMS] if cfg.amp_benchmark else []
    return [arm_key(a) for a in ARMS] + [arm_key(f"scale-{s}") for s in SCALES] + amp


def claims(cfg: Config) -> list[Claim]:
    m, lm = cfg.margin, math.log1p(cfg.loss_margin)

    def like_fp32(arm: str) -> tuple:
        return Equivalent("test_acc", arm, "fp32", m), Equivalent("log_train_loss", arm, "fp32", lm)

    def worse(arm: str) -> Paired:
        return Paired("train_loss", arm, "fp32", "greater", lm, log_ratio=True)

    out = [
        Claim("mixed-precision", f"fp16 storage and compute with fp32 master weights and loss scaling (dynamic; "
              f"static {cfg.static_scale:g}) trains like fp32: test accuracy within ±{m:.0%} and final training "
              f"loss within ±{cfg.loss_margin:.0%} (TOST)", CITATION,
              AllOf(like_fp32("fp16-dynamic") + like_fp32("fp16-static")),
              paper=Paper(0.0012, "top-1 accuracy, mixed precision minus fp32 (ResNet-50 on ImageNet, 76.04% vs "
                          "75.92%)", "Table 1", confirmed=False, note="recalled, not checked against the paper")),
        Claim("underflow", f"Without loss scaling over {cfg.min_underflow:.0%} of the non-zero activation gradients "
              f"become 0 in fp16 late in training (last census step); the dynamic loss scale recovers at least "
              f"{cfg.min_removed:.0%} of the gradient mass (sum |g|) so lost", f"{PAPER}, §3.2, Fig. 3",
              AllOf((Threshold("zeroed_frac", "scale-1", cfg.min_underflow, "greater"),
                     Threshold("removed_mass", "scale-dynamic", cfg.min_removed, "greater"))),
              paper=Paper("most", "of SSD's activation-gradient values below fp16's smallest subnormal 2^-24 "
                          "(0 in fp16 without scaling)", "Fig. 3", confirmed=False, ours=("scale-1", "zeroed_frac"))),
        Claim("master-weights", f"Pure fp16 (no fp32 master copy) ends worse: final training loss over "
              f"{1 + cfg.loss_margin:g}x fp32's, with a clear share (>10%) of its updates lost "
              "(|lr v| below ~2^-11 |w| rounds away)", f"{PAPER}, §3.1, Fig. 2a",
              AllOf((worse("fp16-pure"), Threshold("lost_update_frac", "fp16-pure", 0.1, "greater")))),
        Claim("bf16", "bf16 (fp32's exponent range, 7 mantissa bits) needs no loss scaling: equivalent to fp32 "
              "by the same margins", BF16_PAPER, AllOf(like_fp32("bf16"))),
        Claim("unscaled-hurts", f"fp16 with master weights but no loss scaling ends worse (training loss over "
              f"{1 + cfg.loss_margin:g}x fp32's). Reported on its own: at digits scale the gradients that "
              "underflow carry a tiny share of the gradient mass", f"{PAPER}, §3.2", worse("fp16-noscale"),
              paper=Paper("diverged", "SSD detection without loss scaling (mAP 76.9 in fp32, 77.1 with scaling)",
                          "§4.2", confirmed=False, note="recalled, not checked against the paper")),
    ]
    if cfg.amp_benchmark:
        out.append(Claim("amp-speed", "On a GPU, AMP fp16 + GradScaler trains the LM >= 1.5x faster than fp32 "
                         "(TF32 off), with less peak memory and final loss within 2%", CITATION,
                         AllOf((Paired("step_ms", "amp-fp32", "amp-fp16", "greater", math.log(1.5), True),
                                               Paired("peak_mib", "amp-fp32", "amp-fp16", "greater", 0.0, True),
                                               Equivalent("log_final_loss", "amp-fp16", "amp-fp32", math.log(1.02))))))
    return out


def check(cfg: Config, device: str) -> None:
    """Before anything is written: real autocast timing needs a GPU."""
    if cfg.amp_benchmark and device != "cuda":
        from mlbench.core.errors import UsageError

        raise UsageError("fp16-mixed: the 'full' profile (amp_benchmark) times real CUDA autocast and needs "
                         "--device cuda on a GPU; on CPU run the quick profile (or --set amp_benchmark=false)")
