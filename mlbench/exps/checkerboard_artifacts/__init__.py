"""checkerboard-artifacts: learned stride-2 upsamplers paint checkerboards; resize + conv and ICNR don't.

Shows (Odena, Dumoulin & Olah 2016, Distill, "Deconvolution and Checkerboard Artifacts"; Shi et
al. 2016 for sub-pixel convolution; Aitken et al. 2017 for ICNR; seed document 001, the
upsampling post: PixelShuffle, Upsample, and interpolation that "has no learning"):

1. Headline, exact arithmetic at initialisation: on a constant input, nearest + conv, bilinear +
   conv and ICNR-initialised PixelShuffle give a stride-phase contrast P of exactly 0 (float32,
   every initialisation), while transposed conv k3s2 and k4s2 and plain PixelShuffle do not.
2. After brief training of a small super-resolution net, the artifact energy near Nyquist stays
   higher for transposed conv k3s2 and PixelShuffle than for nearest + conv (paired log10 ratio).
3. Bilinear + conv has the lowest artifact energy of all six on every seed.
4. ICNR lowers PixelShuffle's artifact energy on every seed.
5. "Kernel size not divisible by the stride" is overlap arithmetic: the phase sums of an all-ones
   kernel are n_a·n_b, n_r = ⌈(k − r)/s⌉ (P = 0 iff s | k), and with same-sign (|w|) random
   kernels k3s2 keeps a large P, k4s2 a small one. With signed random weights k4s2 is as
   uneven as k3s2: the rule holds for same-sign kernels only.

P = std(m)/√(mean m²) over the four phase means m_ab of y[a::2, b::2] (2 border px cropped),
per channel, averaged. Artifact energy = share of the Hann-windowed output power at
max(|f_u|, |f_v|) ≥ 0.4 cycles/px, averaged over the test images. The trained net is 3x3 conv
(1 -> C) -> ReLU -> upsampler -> ReLU -> 3x3 conv (C -> 1), 16 -> 32 on procedural Gaussian-blob
images (input: the 2x2 average pool of the target), MSE, Adam. Every arm x seed is one stacked
model (channel groups); seed k's head, tail, batches and test images are shared by every arm.
Negative control (`negative_control=true`): both transposed convs become a stride-1 3x3
transposed conv after a nearest resize (no uneven overlap): the headline must not reproduce.
The statistics at init run on the CPU in float32 on any device (cuDNN's Winograd/FFT kernels
round tile by tile, so a constant would not stay bit-constant there).

Measured, quick profile (5 seeds, one thread, shared 2-core CPU; ~32 s CPU of which ~5.6 s are
page faults of large short-lived tensors): every claim reproduced.
At init (30 inits x 5 seeds): P = 0.964 for tconv k3s2 (smallest single init 0.69), 0.966 for
k4s2 (0.75), 0.980 for PixelShuffle (0.81); exactly 0.0 for nearest, bilinear and ICNR in all
150 inits. |w| kernels: 0.509 (k3s2), 0.095 (k4s2), 0.063 (PixelShuffle). All-ones kernels match
the closed form to 1e-16 (k3s2 0.5033, k5s2 0.3172, k4s3 0.4859; 0 wherever s | k).
After 150 steps, log10 E: k3s2 −2.69, k4s2 −2.71, nearest −3.26, bilinear −5.45, PixelShuffle
−2.65, ICNR −2.95 (targets −6.63). Δ vs nearest: k3s2 +0.57 [0.33, 0.82], k4s2 +0.55
[0.29, 0.80], PixelShuffle +0.60 [0.50, 0.71], ICNR +0.31 [0.20, 0.42], bilinear −2.20
[−2.54, −1.85]; PixelShuffle − ICNR 0.14 to 0.40 over the seeds. Test MSE 0.0026 (ICNR) to
0.0037 (k3s2): the arms fit about equally well; only the spectrum's tail differs.
The gap shrinks with training (`--set steps=500`): Δ k3s2 +0.16 [−0.22, 0.53], k4s2 +0.05,
PixelShuffle +0.15 [0.02, 0.29], ICNR −0.01, so claim 2 comes out inconclusive there: it is a
claim about early training. Bilinear stays lowest (−1.93) and ICNR still helps on every seed
(0.10 to 0.21); the test MSE of the transposed convs (0.00047) is then below nearest's (0.00064).
Negative control: both "tconv" arms give P = 0 exactly, so the headline is not reproduced, and
their Δ is −0.01 [−0.31, 0.29] (claim 2 inconclusive). Not built: the full profile's texture
images and autoencoder decoder (the full profile adds the second stage, fastai's blur arm and
the trend claim); no GPU was available to run it.

Run: `mlbench run checkerboard-artifacts` (quick, CPU); `--profile full --device cuda` for x4
super-resolution (two stride-2 stages, 16 -> 64 px), 32 channels, 5000 steps, fastai's ICNR + blur
arm, and the shrinking gap as a fitted trend (slope of Δ against log10 step).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlbench.core.config import param
from mlbench.core.errors import UsageError
from mlbench.core.grid import arm_key
from mlbench.core.verdict import AllOf, Claim, Paired, Paper, Threshold, Trend
from mlbench.exps.checkerboard_artifacts.every_seed import EverySeed, SignOnEverySeed

VERSION = 1
THREADS = 1  # grouped convolutions of ~30 tiny models: nothing to split on a shared 2-core CPU
SUMMARY = ("Transposed convolutions and plain PixelShuffle start (and stay, early in training) with checkerboard "
           "artifacts; resize + conv and ICNR start exactly artifact-free.")
CITATION = "Odena, Dumoulin & Olah 2016, Deconvolution and Checkerboard Artifacts (Distill)"
AITKEN = "Aitken et al. 2017, Checkerboard artifact free sub-pixel convolution (arXiv 1707.02937)"
UPSAMPLERS = ("tconv_k3s2", "tconv_k4s2", "nearest_conv", "bilinear_conv", "pixelshuffle", "pixelshuffle_icnr")
BLUR = "pixelshuffle_icnr_blur"
FLAT_AT_INIT = ("nearest_conv", "bilinear_conv", "pixelshuffle_icnr")
UNEVEN_AT_INIT = ("tconv_k3s2", "tconv_k4s2", "pixelshuffle")
REFERENCE = "nearest_conv"  # Δ = log10 E(arm) − log10 E(nearest + conv)
OVERLAP = ((2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (3, 3), (4, 3), (6, 3))  # (k, s) of the all-ones kernels
MIN_MEAN_P = 0.5  # headline: mean P of the uneven arms at init, every seed
SAME_SIGN_UNEVEN, SAME_SIGN_EVEN = 0.4, 0.2  # claim 5: P of |w| k3s2 above, k4s2 below
GAP_ARMS = ("tconv_k3s2", "pixelshuffle")


@dataclass(frozen=True)
class Config:
    channels: int = param(8, "C: feature channels of every layer (per model)", min=1)
    init_draws: int = param(30, "initialisations per seed for the statistics at init", min=1)
    init_size: int = param(12, "side of the constant input at init (output 2x, 2 px cropped)", min=4)
    crop: int = param(2, "border pixels dropped before both measures (zero padding makes edges differ)", min=0)
    image_size: int = param(32, "n: side of the target images (input: n / 2^stages)", min=8)
    stages: int = param(1, "stride-2 upsampling stages (2: x4 super-resolution)", min=1, max=3)
    blobs: int = param(4, "Gaussian blobs per image", min=1)
    sigma_min: float = param(2.0, "smallest blob σ (px of the target)", gt=0)
    sigma_max: float = param(5.0, "largest blob σ (px of the target)", gt=0)
    train_images: int = param(4800, "training pool per seed (150 steps x 32 = one pass)", min=1)
    test_images: int = param(128, "fixed test images per seed (artifact energy, test MSE)", min=1)
    steps: int = param(150, "training steps (the gap shrinks with more: claim 2 is about early training)", min=1)
    batch_size: int = param(32, "images per step", min=1)
    lr: float = param(2e-3, "Adam learning rate", gt=0)
    eval_every: int = param(25, "steps between test evaluations (the energy curves)", min=1)
    band: float = param(0.4, "artifact band: max(|f_u|, |f_v|) ≥ band cycles/px (Nyquist 0.5)", gt=0, max=0.5)
    blur_arm: bool = param(False, "also train fastai's ICNR + blur PixelShuffle (reported, no claim)")
    shrink_from: int = param(0, "first step of the fitted shrinking-gap trend (0: no trend claim; the gap is reported)", min=0)
    negative_control: bool = param(False, "both transposed convs become stride-1 after a nearest resize: the headline must NOT reproduce")

    def validate(self) -> None:
        if self.image_size % 2 ** self.stages:
            raise ValueError("image_size must be divisible by 2^stages")
        if self.image_size - 2 * self.crop < 4 or 2 * self.init_size - 2 * self.crop < 4:
            raise ValueError("crop leaves fewer than 4 px (image_size and 2 x init_size minus 2 x crop)")
        if self.sigma_max < self.sigma_min:
            raise ValueError("sigma_max must be >= sigma_min")
        if self.shrink_from and len(gap_steps(self)) < 2:
            raise ValueError("shrink_from must leave two or more evaluation steps in [shrink_from, steps]")


def trained_arms(cfg: Config) -> tuple[str, ...]:
    return UPSAMPLERS + ((BLUR,) if cfg.blur_arm else ())


def overlap_key(k: int, s: int) -> str:
    return arm_key("uniform", k=k, s=s)


def gap_steps(cfg: Config) -> list[int]:
    """Evaluation steps of the trend fit (empty without one)."""
    if not cfg.shrink_from:
        return []
    evals = sorted({*range(0, cfg.steps + 1, cfg.eval_every), cfg.steps})
    return [s for s in evals if s >= cfg.shrink_from]


def arms(cfg: Config) -> list[str]:
    """Every measurement key: the upsamplers, the all-ones kernels, the gap at each trend step."""
    gaps = [arm_key(a, step=s) for a in GAP_ARMS for s in gap_steps(cfg)]
    return list(trained_arms(cfg)) + [overlap_key(k, s) for k, s in OVERLAP] + gaps


def check(cfg: Config, device: str) -> None:
    """Refuse on a CPU what is sized for a GPU."""
    work = cfg.steps * cfg.batch_size * cfg.image_size ** 2 * cfg.channels * len(trained_arms(cfg))
    if device == "cpu" and work > 2e10:
        raise UsageError(f"checkerboard-artifacts: ~{work:.0e} pixel-channel-steps is GPU-sized; use --device cuda, "
                         "or fewer --set steps / image_size / channels on CPU")


def claims(cfg: Config) -> list[Claim]:
    from math import log10

    n, L = cfg.image_size, cfg.stages
    flat = tuple(EverySeed("phase_contrast_max", a, "==", 0.0) for a in FLAT_AT_INIT)
    uneven = tuple(t for a in UNEVEN_AT_INIT for t in (EverySeed("phase_contrast_min", a, ">", 0.0),
                                                       EverySeed("phase_contrast", a, ">=", MIN_MEAN_P)))
    overlap = tuple(EverySeed("closed_form_error", overlap_key(k, s), "<=", 1e-12) for k, s in OVERLAP)
    even = tuple(EverySeed("phase_contrast", overlap_key(k, s), "==", 0.0) for k, s in OVERLAP if k % s == 0)
    out = [
        Claim("init-flat-output", f"On a constant input at init, nearest + conv, bilinear + conv and ICNR PixelShuffle "
              f"give a stride-phase contrast of exactly 0 in all {cfg.init_draws} inits of every seed; transposed conv "
              f"k3s2, k4s2 and plain PixelShuffle give P > 0 in every init and mean P ≥ {MIN_MEAN_P:g} on every seed",
              f"{CITATION}; {AITKEN}", AllOf(flat + uneven),
              paper=Paper("0 (artifact free at init)", "checkerboard of ICNR sub-pixel conv at initialisation",
                          "Aitken et al. 2017, abstract: 'free from checkerboard artifacts immediately after initialization'",
                          confirmed=True, ours=("pixelshuffle_icnr", "phase_contrast_max"))),
        Claim("trained-nyquist-energy", f"After {cfg.steps} steps of {n // 2 ** L} -> {n} super-resolution, transposed conv "
              f"k3s2 and PixelShuffle keep more output energy at ≥ {cfg.band:g} cycles/px than nearest + conv (paired "
              "log10 ratio over seeds, 95% CI above 0)", CITATION,
              AllOf(tuple(Paired("log10_energy", a, REFERENCE, "greater") for a in GAP_ARMS)),
              paper=Paper("artifacts disappear", "resize-convolution vs deconvolution (figures only, no numbers)",
                          "Odena et al. 2016, abstract and the resize-convolution figures", confirmed=True)),
        Claim("bilinear-lowest", "Bilinear + conv has the lowest artifact energy of the six upsamplers, on every seed",
              f"{CITATION}: resize-convolution (the paper compares no energies; this ranking is measured here)", AllOf(tuple(SignOnEverySeed("log10_energy", a, "bilinear_conv") for a in UPSAMPLERS
                                    if a != "bilinear_conv"))),
        Claim("icnr-helps", "ICNR lowers PixelShuffle's artifact energy after training, on every seed", AITKEN,
              SignOnEverySeed("log10_energy", "pixelshuffle", "pixelshuffle_icnr"),
              paper=Paper("smaller test error, no artifacts", "ICNR vs standard-initialised sub-pixel conv",
                          "Aitken et al. 2017, abstract", confirmed=True)),
        Claim("overlap-rule", "'Kernel size not divisible by the stride' is overlap arithmetic: all-ones kernels give "
              "phase sums n_a·n_b, n_r = ⌈(k − r)/s⌉ (P = 0 exactly iff s divides k, "
              f"{len(OVERLAP)} (k, s) checked); with same-sign |w| random kernels P(k3s2) > {SAME_SIGN_UNEVEN:g} and "
              f"P(k4s2) < {SAME_SIGN_EVEN:g} (95% CI over seeds). Signed kernels: reported, no such rule", CITATION,
              AllOf(overlap + even + (Threshold("phase_contrast_abs", "tconv_k3s2", SAME_SIGN_UNEVEN, "greater"),
                                      Threshold("phase_contrast_abs", "tconv_k4s2", SAME_SIGN_EVEN, "less"))),
              paper=Paper("uneven overlap when k is not divisible by s", "all-ones kernel, stride 2: phase sums 4, 2, 2, 1",
                          "Odena et al. 2016, 'Deconvolution & Overlap'", confirmed=True,
                          ours=(overlap_key(3, 2), "phase_contrast"))),
    ]
    if cfg.shrink_from:
        steps = gap_steps(cfg)
        out.append(Claim("gap-shrinks", f"The gap Δ = log10 E − log10 E(nearest + conv) of transposed conv k3s2 and "
                         f"PixelShuffle shrinks with training: per-seed slope of Δ against log10 step over steps "
                         f"{steps[0]}-{steps[-1]} below 0 (95% CI)", CITATION,
                         AllOf(tuple(Trend("gap", tuple(arm_key(a, step=s) for s in steps), tuple(log10(s) for s in steps),
                                           "less", x_label="log10 step") for a in GAP_ARMS))))
    return out
