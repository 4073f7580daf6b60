"""preln-vs-postln: where LayerNorm goes decides the gradients at initialisation.

Shows (Xiong et al. 2020, On Layer Normalization in the Transformer Architecture, ICML,
Theorem 1 and Fig. 3; seed document 000, the post on initialisation, parametrisation and
normalisation):

1. Headline (Theorem 1, Xavier init): the gradient of the last layer's FFN weight W²_L does not
   shrink with depth in a Post-LN Transformer, u = LN(x + Attn(x)), x′ = LN(u + FFN(u)), and
   shrinks like L^−½ in a Pre-LN one, u = x + Attn(LN(x)), x′ = u + FFN(LN(u)) (plus a final
   LN). Per seed we fit the slope of ln‖∂ℓ/∂W²_L‖_F on ln L for L ∈ {6, 12, 24}: Pre-LN's slope
   CI must lie in [−0.75, −0.25], Post-LN's lower CI bound must be ≥ −0.1, and the paired slope
   gap (post − pre, the slope of ln(g_post / g_pre)) must have its CI above 0.3.
2. Fig. 3: in Post-LN the gradient grows toward the output: ‖∂ℓ/∂W²_L‖ / ‖∂ℓ/∂W²_1‖ > 1 at the
   largest depth (CI above 1) and its log rises with ln L (slope CI above 0).
3. A reported finding, not the headline: claims 1 and 2 re-run with PyTorch's default init
   (linear1, linear2, out_proj and the head kaiming_uniform(a = √5), variance 1/(3·fan_in);
   in_proj Xavier as nn.MultiheadAttention does). The theorem assumes Xavier; the pattern of
   claim 2 is known to depend on the init (the FFN branch starts ~2x smaller).
4. Full profile only (GPU): training without warm-up. Post-LN without warm-up ends worse than
   with it (paired held-out loss; a diverged model counts at ln V, a lower bound), and Pre-LN
   without warm-up ends within 2 % of Post-LN with it (TOST on the log loss).

Protocol (quick): a causal LM on uniform random tokens (vocab 256, T = 64, batch 32 sequences),
d = 128, 4 heads, d_ff = 512, ReLU, dropout 0, no position encoding (the causal mask already
breaks the symmetry, and the claims are about the residual path), token embedding N(0, 1/d),
a linear head; one forward/backward of the mean next-token loss (≈ ln 256 at init). Measured:
‖∂ℓ/∂W²_l‖_F of every layer l. LayerNorm has no affine part (at init its gain 1, bias 0 are the
identity, and the gradient of W² does not depend on whether they are parameters). Arms:
{post, pre} x {xavier, default}; every arm of a seed sees the same token batch, every depth
the same batch, each depth its own init draw, and within a depth and seed the two inits scale
the same uniform draws (so every comparison is paired). All arms x seeds of one depth are one
stacked model ((L, M, ...) weights, bmm), run through in slices of members only to bound the
memory (`layer_models_per_pass`; the slices change no number, see the tests).

Measured (quick, 5 seeds, one thread, ~24 s CPU): Xavier init, Pre-LN slope −0.51 (CI −0.60 to
−0.41; theory −½), Post-LN slope +0.13 (CI 0.03 to 0.23: it does not shrink, it even grows a
little between L = 6 and 24; the theorem's bound does not depend on L), paired gap 0.64 (CI 0.53
to 0.75): headline reproduced. Post-LN last/first 1.06 / 1.61 / 1.82 at L = 6 / 12 / 24 (slope of
its log 0.38, CI 0.18 to 0.59): claim 2 reproduced. Pre-LN is not flat here, its last/first falls
0.39 -> 0.21: with an N(0, 1/d) embedding its first layer's gradient is the largest (Fig. 3 is
recalled as flat; it depends on the embedding scale). PyTorch's default init: Pre-LN slope −0.56,
Post-LN +0.16, gap 0.73: claim 1 reproduced; Post-LN last/first 0.91 / 0.90 / 0.91 (slope −0.00,
CI −0.17 to 0.16): the growth toward the output is gone, yet flat cannot be shown "not growing"
at these bounds, so claim 2 is inconclusive, not not_reproduced. The sweep file: nn.Embedding's
N(0, 1) embedding flattens Pre-LN's slope to −0.37 (Xavier, still in the band) and −0.25
(default init: inconclusive); batch 16 instead of 32 changes no verdict at 5 seeds.

Negative control (`negative_control=true`): the Post-LN arm is built Pre-LN too, so the two arms
are the same model on the same batch: the paired slope gap is exactly 0 and the headline must
come out not_reproduced.

Seed documents: 000.

Run: `mlbench run preln-vs-postln` (quick, CPU, one thread); `--profile full --device cuda`
for d ∈ {256, 512}, L up to 48, 8 seeds and the warm-up training study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mlbench.core.config import param
from mlbench.core.grid import arm_key
from mlbench.core.verdict import AllOf, Claim, Equivalent, Paired, Paper, Threshold, Trend

VERSION = 1
THREADS = 1  # one bmm after another; FACTS.md: under load torch's 2 threads ran up to 5x slower than 1
SUMMARY = ("At initialisation the last layer's gradient does not shrink with depth in a Post-LN Transformer "
           "but shrinks like L^-1/2 in a Pre-LN one; Post-LN's gradients grow toward the output.")
CITATION = "Xiong et al. 2020, On Layer Normalization in the Transformer Architecture, Theorem 1 and Fig. 3"
DEFAULT_INIT_CITATION = CITATION + ", re-run with PyTorch's nn.TransformerEncoderLayer init"
WARMUP_CITATION = "Xiong et al. 2020, On Layer Normalization in the Transformer Architecture, §3 and §4"
PLACEMENTS = ("post", "pre")
INITS = ("xavier", "default")
# the claims' bounds, fixed before any run
PRE_SLOPE_BAND = (-0.75, -0.25)  # Pre-LN: slope of ln g_L on ln L (theory −½)
POST_SLOPE_MIN = -0.1  # Post-LN: the slope's lower CI bound (theory 0: "does not shrink")
GAP_MIN = 0.3  # the paired gap post − pre of the slopes (theory ½)
TOST_MARGIN = 0.02  # warm-up study: Pre-LN without warm-up within 2 % of Post-LN with it


@dataclass(frozen=True)
class Config:
    depths: tuple[int, ...] = param((6, 12, 24), "numbers of layers L (the depth slopes are fitted over them)", min=2)
    d_models: tuple[int, ...] = param((128,), "model widths d (the claims are judged at the largest)", min=8)
    n_heads: int = param(4, "attention heads (every d divisible by it)", min=1)
    ffn_mult: int = param(4, "d_ff = ffn_mult x d (512 at d = 128)", min=1)
    vocab: int = param(256, "token vocabulary (the loss at init is about ln vocab)", min=2)
    seq_len: int = param(64, "tokens per sequence T", min=2)
    batch_size: int = param(32, "sequences per seed's batch (one forward/backward; >= 32 for claim 2)", min=1)
    inits: tuple[str, ...] = param(INITS, "xavier (the theorem's) and/or default (PyTorch's nn.TransformerEncoderLayer)")
    embed: Literal["inv-sqrt-d", "unit"] = param(
        "inv-sqrt-d", "token embedding N(0, 1/d), or N(0, 1) (nn.Embedding's default; flattens Pre-LN's slope)")
    layer_models_per_pass: int = param(
        24, "memory bound: (layer, model) pairs held in one forward/backward (~25 MB each at d = 128, measured)", min=1)
    negative_control: bool = param(
        False, "build the Post-LN arm Pre-LN too: the slope gap is 0 and the headline must NOT reproduce")
    # the warm-up study (full profile, GPU): 0 train steps = off
    train_steps: int = param(0, "Adam steps of the warm-up study (0: off; the full profile trains 5000)", min=0)
    train_d_model: int = param(256, "warm-up study: width d", min=8)
    train_layers: int = param(6, "warm-up study: layers L", min=1)
    train_context: int = param(128, "warm-up study: characters per training sequence", min=2)
    train_batch: int = param(32, "warm-up study: sequences per step", min=1)
    train_lrs: tuple[float, ...] = param((5e-4, 1e-3), "warm-up study: peak learning rates", min=0)
    warmup_steps: int = param(
        500, "warm-up study: linear warm-up steps of the warmed arms; every arm decays as lr·√(warmup/t) after it", min=1)
    beta2: float = param(0.98, "warm-up study: Adam beta2 (beta1 0.9, eps 1e-8, no weight decay)", min=0, max=0.9999)
    corpus_chars: int = param(
        2_000_000, "warm-up study: characters of the procedural toy-Python corpus (last 10 % held out)", min=10_000)
    eval_every: int = param(250, "warm-up study: steps between held-out evaluations", min=1)
    eval_windows: int = param(256, "warm-up study: held-out windows per seed (fixed)", min=1)

    def validate(self) -> None:
        if "xavier" not in self.inits or any(i not in INITS for i in self.inits) or len(set(self.inits)) != len(self.inits):
            raise ValueError(f"inits must be distinct values of {', '.join(INITS)} and include xavier (the headline's)")
        if len(set(self.depths)) < 2 or len(set(self.depths)) != len(self.depths):
            raise ValueError("depths must be two or more distinct layer counts (a slope needs two)")
        if any(d % self.n_heads for d in self.d_models) or (self.train_steps and self.train_d_model % self.n_heads):
            raise ValueError("every d_model (and train_d_model) must be divisible by n_heads")


def key(placement: str, d: int, L: int, init: str) -> str:
    """The measurement key of one arm at one width and depth: "post@d128,L6,init=xavier"."""
    return arm_key(placement, d=d, L=L, init=init)


def gap_key(d: int, L: int, init: str) -> str:
    return arm_key("post-vs-pre", d=d, L=L, init=init)


def slopes_key(d: int, init: str) -> str:
    return arm_key("slopes", d=d, init=init)


def train_key(placement: str, warmup: int, lr: float) -> str:
    return arm_key(placement, warmup=warmup, lr=lr)


def arms(cfg: Config) -> list[str]:
    """Every measurement key: the arms, the per-depth paired gaps, the per-seed slopes, the training arms."""
    out = []
    for d in sorted(cfg.d_models):
        for init in cfg.inits:
            for L in sorted(cfg.depths):
                out += [key(p, d, L, init) for p in PLACEMENTS] + [gap_key(d, L, init)]
            out.append(slopes_key(d, init))
    if cfg.train_steps:
        out += [train_key(p, w, lr) for lr in cfg.train_lrs for w in (0, cfg.warmup_steps) for p in PLACEMENTS]
    return out


def _depth_test(cfg: Config, init: str) -> AllOf:
    d, depths = max(cfg.d_models), sorted(cfg.depths)
    xs = tuple(math.log(L) for L in depths)
    pre, post = (tuple(key(p, d, L, init) for L in depths) for p in PLACEMENTS[::-1])
    gaps = tuple(gap_key(d, L, init) for L in depths)
    return AllOf((Trend("log_grad_last", pre, xs, "less", PRE_SLOPE_BAND[1], x_label="ln L (Pre-LN)"),
                  Trend("log_grad_last", pre, xs, "greater", PRE_SLOPE_BAND[0], x_label="ln L (Pre-LN)"),
                  Trend("log_grad_last", post, xs, "greater", POST_SLOPE_MIN, x_label="ln L (Post-LN)"),
                  Trend("log_grad_ratio", gaps, xs, "greater", GAP_MIN, x_label="ln L (Post-LN / Pre-LN)")))


def _growth_test(cfg: Config, init: str) -> AllOf:
    d, depths = max(cfg.d_models), sorted(cfg.depths)
    post = tuple(key("post", d, L, init) for L in depths)
    return AllOf((Threshold("last_first", post[-1], 1.0, "greater"),
                  Trend("log_last_first", post, tuple(math.log(L) for L in depths), "greater", 0.0,
                        x_label="ln L (Post-LN)")))


def claims(cfg: Config) -> list[Claim]:
    d, L_max = max(cfg.d_models), max(cfg.depths)
    theorem = Paper(-0.5, "slope of ln‖∂ℓ/∂W²_L‖_F on ln L for Pre-LN (Post-LN: 0)",
                    "Theorem 1: O(d·√(ln d / L)) for Pre-LN, O(d·√(ln d)) for Post-LN", confirmed=False,
                    ours=(slopes_key(d, "xavier"), "pre_slope"))
    fig3 = Paper("grows with the layer index", "Post-LN gradient norm of W² at init (Pre-LN: flat)", "Fig. 3",
                 confirmed=False, ours=(key("post", d, L_max, "xavier"), "last_first"))
    depth_text = (f"the last layer's gradient ‖∂ℓ/∂W²_L‖ shrinks like L^−½ in Pre-LN (slope CI within "
                  f"[{PRE_SLOPE_BAND[0]:g}, {PRE_SLOPE_BAND[1]:g}]) and does not shrink in Post-LN (slope CI above "
                  f"{POST_SLOPE_MIN:g}); paired slope gap post − pre above {GAP_MIN:g} (d = {d}, L = "
                  f"{', '.join(map(str, sorted(cfg.depths)))})")
    growth_text = (f"in Post-LN the gradient grows toward the output: ‖∂ℓ/∂W²_L‖ / ‖∂ℓ/∂W²_1‖ above 1 at L = {L_max} "
                   "and rising with depth")
    out = [Claim("depth-scaling", f"At init with Xavier init, {depth_text}", CITATION, _depth_test(cfg, "xavier"),
                 paper=theorem),
           Claim("post-grows-to-output", f"At init with Xavier init, {growth_text}", CITATION,
                 _growth_test(cfg, "xavier"), paper=fig3)]
    if "default" in cfg.inits:
        note = "the theorem assumes Xavier init; this re-run with PyTorch's default init is a finding, not a test of it"
        out += [Claim("depth-scaling-default-init", f"With PyTorch's default init, {depth_text}", DEFAULT_INIT_CITATION,
                      _depth_test(cfg, "default"), paper=Paper(theorem.value, theorem.unit, theorem.where, False,
                                                               (slopes_key(d, "default"), "pre_slope"), note)),
                Claim("post-grows-to-output-default-init", f"With PyTorch's default init, {growth_text}", DEFAULT_INIT_CITATION,
                      _growth_test(cfg, "default"), paper=Paper(fig3.value, fig3.unit, fig3.where, False,
                                                                (key("post", d, L_max, "default"), "last_first"), note))]
    if cfg.train_steps:
        out += _warmup_claims(cfg)
    return out


def _warmup_claims(cfg: Config) -> list[Claim]:
    W, lrs = cfg.warmup_steps, sorted(cfg.train_lrs)
    lr_text = ", ".join(f"{lr:g}" for lr in lrs)
    worse = AllOf(tuple(Paired("final_loss", train_key("post", 0, lr), train_key("post", W, lr), "greater", log_ratio=True)
                        for lr in lrs))
    same = AllOf(tuple(Equivalent("log_final_loss", train_key("pre", 0, lr), train_key("post", W, lr), math.log1p(TOST_MARGIN))
                       for lr in lrs))
    return [Claim("postln-needs-warmup", f"Post-LN trained without warm-up ends with a higher held-out loss than with "
                  f"{W} warm-up steps (lr {lr_text}; a diverged model counts as worse)", WARMUP_CITATION, worse,
                  paper=Paper("8.45 vs ~34", "BLEU of Post-LN without vs with warm-up (IWSLT14 De-En)", "§3, Fig. 2",
                              confirmed=False)),
            Claim("preln-without-warmup", f"Pre-LN trained without warm-up ends within {TOST_MARGIN:.0%} of Post-LN "
                  f"with warm-up (TOST on the log held-out loss; lr {lr_text})", WARMUP_CITATION, same,
                  paper=Paper("comparable", "Pre-LN without warm-up vs Post-LN with it, reached in fewer steps",
                              "§4, Figs. 4-5", confirmed=False))]


def grad_work(cfg: Config) -> float:
    """Per seed, the gradient study's Σ layers x models x tokens x d²: its cost, roughly (quick: 5.6e9, ~5 s CPU)."""
    tokens, models = cfg.batch_size * cfg.seq_len, len(PLACEMENTS) * len(cfg.inits)
    return float(sum(L * models * tokens * d * d for d in cfg.d_models for L in cfg.depths))


def train_work(cfg: Config) -> float:
    """Per seed, the warm-up study's steps x layers x models x tokens x d² (full: 6.4e15)."""
    models = len(PLACEMENTS) * 2 * len(cfg.train_lrs)
    return float(cfg.train_steps * cfg.train_layers * models * cfg.train_batch * cfg.train_context * cfg.train_d_model ** 2)


def check(cfg: Config, device: str) -> None:
    """Before anything is written: the warm-up study and paper-scale gradients are GPU-sized."""
    from mlbench.core.errors import UsageError

    if device == "cuda":
        return
    if grad_work(cfg) > 1e11:  # ~20x the quick profile's work per seed
        raise UsageError("preln-vs-postln: these depths and widths are GPU-sized (20x the quick profile's work per "
                         "seed or more); use --device cuda, or smaller --set depths=... d_models=... on CPU")
    if train_work(cfg) > 1e11:
        raise UsageError("preln-vs-postln: this warm-up study is GPU-sized (steps x layers x models x tokens x d² "
                         "> 1e11 per seed); use --device cuda, or smaller --set train_steps=... on CPU")
