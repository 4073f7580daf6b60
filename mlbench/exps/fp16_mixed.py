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
median step time and `torch.cuda.max_memory_allocated` for fp32 (TF32 off), TF32, bf16, fp16.

Run: `mlbench run fp16-mixed` (quick, CPU); `mlbench run fp16-mixed --profile full --device cuda`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from mlbench.core.config import param
from mlbench.core.verdict import AllOf, Claim, Equivalent, Paired, Threshold, mean

VERSION = 1
CITATION = "Micikevicius et al. 2018, Mixed Precision Training"
FP16_MAX = 65504.0  # smallest normal 2^-14, smallest subnormal 2^-24
GROWTH, BACKOFF = 2.0, 0.5  # torch.amp.GradScaler defaults
# arm: (storage format, fp32 master weights, loss scaling); arm-major order in the stacked model
ARMS = {"fp32": (None, True, "none"), "bf16": ("bfloat16", True, "none"),
        "fp16-pure": ("float16", False, "none"), "fp16-noscale": ("float16", True, "none"),
        "fp16-static": ("float16", True, "static"), "fp16-dynamic": ("float16", True, "dynamic")}
SCALES = ("1", "static", "dynamic")
AMP_PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = param((128, 128), "hidden widths of the MLP 64-...-10 on digits")
    steps: int = param(600, "SGD steps (gradients shrink as training converges: underflow grows)")
    batch_size: int = param(128, "images per step; mean cross-entropy, so dL/dlogits carries 1/B")
    lr: float = param(0.1, "SGD learning rate")
    momentum: float = param(0.9, "SGD momentum (torch semantics: v = mu v + g, w -= lr v)")
    static_scale: float = param(1024.0, "static loss scale (the paper used 8 to 32k)")
    init_scale: float = param(65536.0, "dynamic scaler's initial scale (GradScaler: 2^16)")
    growth_interval: int = param(100, "clean steps before the dynamic scale doubles (GradScaler: 2000)")
    census_steps: tuple[int, ...] = param((0, 150, 300, 599), "steps at which gradients and updates are censused (the last one judges)")
    eval_every: int = param(25, "steps between test evaluations (curves)")
    margin: float = param(0.01, "equivalence margin on test accuracy (±1 pp)")
    loss_margin: float = param(0.1, "equivalence margin on final training loss (ratio within 1 ± 10%); also the 'worse' bound")
    min_underflow: float = param(0.05, "share of activation gradients zeroed at scale 1 that counts as 'clear'")
    min_removed: float = param(0.99, "share of the zeroed gradient mass (sum |g|) the dynamic scale must recover")
    negative_control: bool = param(False, "the scaled fp16 arms lose their fp32 master weights: the headline must NOT reproduce")
    amp_benchmark: bool = param(False, "GPU only: real autocast + GradScaler on an LM, step time and peak memory")
    amp_d_model: int = param(512, "LM width (FACTS.md anchor: 6 layers, d=512, B=32, T=256)")
    amp_layers: int = param(6, "LM depth")
    amp_seq_len: int = param(256, "LM sequence length T")
    amp_batch: int = param(32, "LM batch size")
    amp_vocab: int = param(512, "LM vocabulary; tokens from a random Markov chain, 4 successors each (entropy <= ln 4 = 1.39)")
    amp_lr: float = param(1e-3, "LM learning rate (fused AdamW, as in the anchor)")
    amp_steps: int = param(300, "timed LM steps per precision and seed")
    amp_warmup: int = param(20, "untimed LM steps first (kernel selection, allocator)")

    def validate(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "growth_interval", "amp_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if not all(0 <= s < self.steps for s in self.census_steps):
            raise ValueError(f"census_steps must lie in [0, steps={self.steps})")
        if min(self.static_scale, self.init_scale, self.margin, self.loss_margin) <= 0:
            raise ValueError("scales and margins must be positive")
        if self.amp_d_model % 64:
            raise ValueError("amp_d_model must be a multiple of 64 (heads of size 64)")


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
              AllOf(like_fp32("fp16-dynamic") + like_fp32("fp16-static"))),
        Claim("underflow", f"Without loss scaling over {cfg.min_underflow:.0%} of the non-zero activation gradients "
              f"become 0 in fp16 late in training (last census step); the dynamic loss scale recovers at least "
              f"{cfg.min_removed:.0%} of the gradient mass (sum |g|) so lost", f"{CITATION}, §3.2 Fig. 3",
              AllOf((Threshold("zeroed_frac", "scale-1", cfg.min_underflow, "greater"),
                     Threshold("removed_mass", "scale-dynamic", cfg.min_removed, "greater")))),
        Claim("master-weights", f"Pure fp16 (no fp32 master copy) ends worse: final training loss over "
              f"{1 + cfg.loss_margin:g}x fp32's, with a clear share (>10%) of its updates lost "
              "(|lr v| below ~2^-11 |w| rounds away)", f"{CITATION}, §3.1 Fig. 2a",
              AllOf((worse("fp16-pure"), Threshold("lost_update_frac", "fp16-pure", 0.1, "greater")))),
        Claim("bf16", "bf16 (fp32's exponent range, 7 mantissa bits) needs no loss scaling: equivalent to fp32 "
              "by the same margins", "seed 001; Kalamkar et al. 2019", AllOf(like_fp32("bf16"))),
        Claim("unscaled-hurts", f"fp16 with master weights but no loss scaling ends worse (training loss over "
              f"{1 + cfg.loss_margin:g}x fp32's). Reported on its own: at digits scale the gradients that "
              "underflow carry a tiny share of the gradient mass", f"{CITATION}, §3.2", worse("fp16-noscale")),
    ]
    if cfg.amp_benchmark:
        out.append(Claim("amp-speed", "On a GPU, AMP fp16 + GradScaler trains the LM >= 1.5x faster than fp32 "
                         "(TF32 off), with less peak memory and final loss within 2%", f"{CITATION}; FACTS.md "
                         "H100 anchor", AllOf((Paired("step_ms", "amp-fp32", "amp-fp16", "greater", math.log(1.5), True),
                                               Paired("peak_mib", "amp-fp32", "amp-fp16", "greater", 0.0, True),
                                               Equivalent("log_final_loss", "amp-fp16", "amp-fp32", math.log(1.02))))))
    return out


CLAIMS = claims(Config())


# ----------------------------------------------------------------------------- fp16 emulation
def arm_specs(cfg: Config) -> dict[str, tuple]:
    specs = dict(ARMS)
    if cfg.negative_control:  # remove the ingredient the headline depends on
        for arm in ("fp16-static", "fp16-dynamic"):
            specs[arm] = (specs[arm][0], False, specs[arm][2])
    return specs


def segments(formats: list, seeds: int) -> tuple:
    """Model ranges (start, stop, dtype name or None) over M = arms*seeds, arm-major, merged."""
    segs: list[list] = []
    for a, fmt in enumerate(formats):
        if segs and segs[-1][2] == fmt:
            segs[-1][1] = (a + 1) * seeds
        else:
            segs.append([a * seeds, (a + 1) * seeds, fmt])
    return tuple(tuple(s) for s in segs)


def round_models(x, segs: tuple):
    """x (M, ...) with each model's slice rounded to its storage format (fp32 -> fmt -> fp32)."""
    import torch

    if all(fmt is None for *_, fmt in segs):
        return x
    return torch.cat([x[a:b] if fmt is None else x[a:b].to(getattr(torch, fmt)).to(x.dtype) for a, b, fmt in segs])


@cache
def _round_op():
    import torch

    class Round(torch.autograd.Function):
        """Identity that stores its input (forward) and its gradient (backward) in each model's format."""

        @staticmethod
        def forward(ctx, x, segs):
            ctx.segs = segs
            return round_models(x, segs)

        @staticmethod
        def backward(ctx, grad):
            return round_models(grad, ctx.segs), None

    return Round.apply


def forward(params: dict, x, segs: tuple, hooks: list | None = None):
    """Logits (M, B, 10) of M stacked MLPs: z_l = fp16(fp16(h) fp16(W_l) + fp16(b_l)), h = relu(z)."""
    import torch

    rnd, n = _round_op(), len(params) // 2
    h = rnd(x, segs)  # (M, B, 64)
    for l in range(n):
        z = rnd(torch.baddbmm(rnd(params[f"b{l}"], segs), h, rnd(params[f"w{l}"], segs)), segs)  # (M, B, d_l)
        if hooks is not None:
            z.register_hook(hooks.append)  # dL/dz as the (scaled) loss delivers it
        h = z.relu() if l < n - 1 else z
    return h


def update_scale(scale, tracker, found_inf, interval: int):
    """GradScaler's rule (torch._amp_update_scale_), elementwise over models:
    inf/NaN: s <- s·BACKOFF, tracker <- 0; else tracker += 1 and at `interval`: s <- s·GROWTH, tracker <- 0."""
    import torch

    grown = tracker + 1
    grow = ~found_inf & (grown >= interval) & torch.isfinite(scale * GROWTH)
    scale = torch.where(found_inf, scale * BACKOFF, torch.where(grow, scale * GROWTH, scale))
    return scale, torch.where(found_inf | grow, torch.zeros_like(tracker), grown)


def sgd_step(params: dict, velocity: dict, scale, upd_segs: tuple, lr: float, momentum: float):
    """Unscale, skip models with inf/NaN gradients, SGD with momentum. No-master models do every op
    in fp16: v <- fp16(fp16(mu v) + fp16(g/s)), w <- fp16(w - fp16(lr v)). Returns found_inf (M,)."""
    import torch

    found_inf = ~torch.stack([p.grad.isfinite().flatten(1).all(1) for p in params.values()]).all(0)  # (M,)
    with torch.no_grad():
        for k, p in params.items():
            skip = found_inf.view(-1, *[1] * (p.dim() - 1))
            g = round_models(p.grad / scale.view_as(skip), upd_segs)
            v = round_models(round_models(momentum * velocity[k], upd_segs) + g, upd_segs)
            velocity[k] = torch.where(skip, velocity[k], v)
            p.copy_(torch.where(skip, p, round_models(p - round_models(lr * v, upd_segs), upd_segs)))
            p.grad = None
    return found_inf


# ----------------------------------------------------------------------------- training
def init_params(cfg: Config, gens: list, n_arms: int, upd_segs: tuple, device) -> dict:
    """He-initialised stacked MLPs, w_l (M, fan_in, fan_out), b_l (M, 1, fan_out); seed k shares its init across arms."""
    import torch

    sizes = (64, *cfg.hidden, 10)
    per_seed = [{} for _ in gens]
    for p, g in zip(per_seed, gens):
        for l, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
            p[f"w{l}"], p[f"b{l}"] = torch.randn(i, o, generator=g) * math.sqrt(2.0 / i), torch.zeros(1, o)
    stacked = {k: torch.stack([p[k] for p in per_seed]).repeat(n_arms, 1, 1) for k in per_seed[0]}
    return {k: round_models(v, upd_segs).to(device).requires_grad_(True) for k, v in stacked.items()}


def _frac(mask, among) -> float:
    return (mask & among).sum().item() / max(among.sum().item(), 1)


def census(cfg: Config, act_grads: list, w_grads: dict, w_old: dict, params: dict, velocity: dict,
           scales: list, pure: list) -> list[dict]:
    """Per seed k: the fp32 arm's gradients (model k) against fp16's range, its updates against its
    weights, and the weights the pure-fp16 arm (model pure[k]) left unchanged this step."""
    import torch

    out = []
    for k, m in enumerate(pure):
        row: dict = {}
        act = torch.cat([h[k].flatten() for h in act_grads])
        for kind, g in (("act", act), ("w", torch.cat([v[k].flatten() for v in w_grads.values()]))):
            nz, mass = g != 0, g.abs().sum().item()
            for name, s in zip(SCALES, (1.0, cfg.static_scale, scales[k])):
                g16 = (g * s).half()
                row[f"{kind}_zeroed@{name}"] = _frac(g16 == 0, nz)
                row[f"{kind}_mass_lost@{name}"] = g[g16 == 0].abs().sum().item() / max(mass, 1e-300)
                row[f"{kind}_overflow@{name}"] = _frac(g16.isinf(), nz)
        log2 = act[act != 0].abs().log2().floor().clamp(-48, 17)
        row["act_log2_hist"] = (torch.bincount((log2 + 48).long(), minlength=66) / max(len(log2), 1)).tolist()
        w = torch.cat([w_old[n][k].flatten() for n in w_old])
        u = cfg.lr * torch.cat([velocity[n][k].flatten() for n in w_old])  # the fp32 arm's update
        row["below_2^-11"] = _frac(u.abs() < 2.0**-11 * w.abs(), u != 0)
        row["lost_in_fp16"] = _frac((w.half().float() - u.half().float()).half() == w.half(), u != 0)
        unchanged = torch.cat([(params[n][m] == w_old[n][m]).flatten() for n in w_old])
        row["pure_lost"] = _frac(unchanged, torch.cat([velocity[n][m].flatten() for n in w_old]) != 0)
        out.append(row)
    return out


def evaluate(params: dict, x, y, segs: tuple):
    """Accuracy and mean cross-entropy (M,) on (x, y), each model in its own storage format."""
    import torch
    import torch.nn.functional as F

    M = params["w0"].shape[0]
    with torch.no_grad():
        logits = forward(params, x.expand(M, -1, -1), segs)  # (M, N, 10)
    y = y.expand(M, -1)
    loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)
    return (logits.argmax(-1) == y).float().mean(1).cpu(), loss.cpu()


def train(cfg: Config, ctx) -> dict:
    """Every (arm, seed) model trained together; returns JSON-able measurements, curves, census."""
    import torch
    import torch.nn.functional as F

    from mlbench.data import digits

    dev, S, specs = ctx.device, len(ctx.seeds), arm_specs(cfg)
    names = list(specs)
    x_tr, y_tr, x_te, y_te = (t.to(dev) for t in digits.load(ctx.cache_dir))  # (1300, 64), ..., (497, 64)
    segs = segments([specs[a][0] for a in names], S)
    upd_segs = segments([None if specs[a][1] else specs[a][0] for a in names], S)
    params = init_params(cfg, [ctx.generator("init", k) for k in ctx.seeds], len(names), upd_segs, dev)
    velocity = {k: torch.zeros_like(p) for k, p in params.items()}
    s0 = {"none": 1.0, "static": cfg.static_scale, "dynamic": cfg.init_scale}
    scale = torch.tensor([s0[specs[a][2]] for a in names for _ in range(S)], device=dev)  # (M,)
    dynamic = torch.tensor([specs[a][2] == "dynamic" for a in names for _ in range(S)], device=dev)
    tracker, skipped = torch.zeros_like(scale, dtype=torch.long), torch.zeros_like(scale)
    gens, dyn0, pure = [ctx.generator("batches", k) for k in ctx.seeds], names.index("fp16-dynamic") * S, names.index("fp16-pure") * S
    curves, censuses, losses = {"step": [], "test_acc": [], "train_loss": [], "scale": []}, {}, []

    def evaluate_and_log(step: int):
        acc, test_loss = evaluate(params, x_te, y_te, segs)
        batch_loss = torch.stack(losses).mean(0) if losses else torch.full_like(acc, math.nan)
        # one device -> host transfer per tensor (per-element reads would each wait on the GPU)
        acc_l, test_l, batch_l, scale_l, skipped_l = (t.tolist() for t in (acc, test_loss, batch_loss, scale, skipped))
        for key, val in zip(curves, (step, acc_l, batch_l, scale_l)):
            curves[key].append(val)
        for m in range(len(scale)):
            ctx.log(arm=names[m // S], seed=m % S, step=step, test_acc=acc_l[m], test_loss=test_l[m],
                    batch_loss=batch_l[m], loss_scale=scale_l[m], skipped_steps=skipped_l[m])
        losses.clear()
        return acc, test_loss

    for step in ctx.track(range(cfg.steps), f"train {len(names)} arms x {S} seeds"):
        if step % cfg.eval_every == 0:
            evaluate_and_log(step)
        idx = torch.stack([torch.randint(len(y_tr), (cfg.batch_size,), generator=g) for g in gens])
        idx = idx.repeat(len(names), 1).to(dev)  # (M, B): seed k's batch is shared by every arm
        hooks = [] if step in cfg.census_steps else None
        loss = F.cross_entropy(forward(params, x_tr[idx], segs, hooks).transpose(1, 2), y_tr[idx],
                               reduction="none").mean(1)  # (M,)
        (loss * scale).sum().backward()  # models share nothing: each gets its own scaled gradient
        if hooks is not None:
            w_grads, w_old = {k: p.grad[:S].clone() for k, p in params.items()}, {k: p.detach().clone() for k, p in params.items()}
        found_inf = sgd_step(params, velocity, scale, upd_segs, cfg.lr, cfg.momentum)
        if hooks is not None:
            censuses[str(step)] = census(cfg, [h[:S] for h in hooks], w_grads, w_old, params, velocity,
                                         scale[dyn0:dyn0 + S].tolist(), list(range(pure, pure + S)))
        new_scale, new_tracker = update_scale(scale, tracker, found_inf, cfg.growth_interval)
        scale, tracker = torch.where(dynamic, new_scale, scale), torch.where(dynamic, new_tracker, tracker)
        skipped += found_inf  # both stay on the device: no GPU sync per step
        losses.append(loss.detach())
    acc, test_loss = evaluate_and_log(cfg.steps)
    for m in range(len(scale)):
        arm, k = names[m // S], m % S
        dtype = torch.float32 if specs[arm][1] else getattr(torch, specs[arm][0])
        ctx.save_checkpoint(f"{arm}-seed{k}", {n: p[m].detach().to(dtype) for n, p in params.items()},
                            {"arm": arm, "seed_index": str(k), "storage": str(specs[arm][0]), "master": str(specs[arm][1])})
    _, train_loss = evaluate(params, x_tr, y_tr, segs)  # the whole training set: less noisy than batches
    final = {"test_acc": acc.tolist(), "test_loss": test_loss.tolist(), "train_loss": train_loss.tolist(),
             "skipped_steps": skipped.tolist(), "final_scale": scale.tolist()}
    return {"measurements": {a: {key: v[i * S:(i + 1) * S] for key, v in final.items()} for i, a in enumerate(names)},
            "curves": curves, "census": censuses}


# ----------------------------------------------------------------------------- GPU: real AMP
def lm_tokens(cfg: Config, gen, n_batches: int):
    """(n, B, T+1) int32 tokens of a random Markov chain: each token has 4 random successors (entropy <= ln 4)."""
    import torch

    succ = torch.randint(cfg.amp_vocab, (cfg.amp_vocab, 4), generator=gen)
    n, T = n_batches * cfg.amp_batch, cfg.amp_seq_len
    choice = torch.randint(4, (n, T), generator=gen)
    tok = [torch.randint(cfg.amp_vocab, (n,), generator=gen)]
    for t in range(T):
        tok.append(succ[tok[-1], choice[:, t]])
    return torch.stack(tok, 1).view(n_batches, cfg.amp_batch, T + 1).int()


def lm_loss(p: dict, tokens, layers: int):
    """Next-token cross-entropy of a pre-LN GPT (no biases or LN gains, tied embeddings), heads of 64."""
    import torch.nn.functional as F

    B, T, D = tokens.shape[0], tokens.shape[1] - 1, p["emb"].shape[1]
    x = p["emb"][tokens[:, :-1]] + p["pos"][:T]  # (B, T, D)
    for l in range(layers):
        qkv = F.linear(F.layer_norm(x, (D,)), p[f"qkv{l}"]).view(B, T, 3, D // 64, 64)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, 64)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, D)
        x = x + F.linear(att, p[f"proj{l}"])
        x = x + F.linear(F.gelu(F.linear(F.layer_norm(x, (D,)), p[f"fc{l}"])), p[f"out{l}"])
    logits = F.linear(F.layer_norm(x, (D,)), p["emb"])  # (B, T, V)
    return F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())


def amp_train(cfg: Config, ctx, precision: str, k: int) -> dict:
    """Train the LM under one precision: median step time, peak allocated memory, final loss."""
    import time

    import torch

    D, mm = cfg.amp_d_model, torch.backends.cuda.matmul
    shapes = {"emb": (cfg.amp_vocab, D), "pos": (cfg.amp_seq_len, D)}
    for l in range(cfg.amp_layers):
        shapes |= {f"qkv{l}": (3 * D, D), f"proj{l}": (D, D), f"fc{l}": (4 * D, D), f"out{l}": (D, 4 * D)}
    gen, tf32_before = ctx.generator("amp", k), mm.allow_tf32
    pool = lm_tokens(cfg, gen, cfg.amp_warmup + cfg.amp_steps).to(ctx.device)  # a fresh batch every step
    p = {n: (torch.randn(*s, generator=gen) * 0.02).to(ctx.device).requires_grad_(True) for n, s in shapes.items()}
    opt = torch.optim.AdamW(list(p.values()), lr=cfg.amp_lr, fused=True)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    mm.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    try:
        for step in range(cfg.amp_warmup + cfg.amp_steps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
                loss = lm_loss(p, pool[step].long(), cfg.amp_layers)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            losses.append(loss.detach())
    finally:
        mm.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32_before
    losses = torch.stack(losses).float().cpu()
    for step in range(0, len(losses), 10):
        ctx.log(arm=f"amp-{precision}", seed=k, step=step, lm_loss=losses[step])
    timed, final = sorted(times[cfg.amp_warmup:]), losses[-20:].mean().item()
    return {"step_ms": 1e3 * timed[len(timed) // 2], "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
            "final_loss": final, "log_final_loss": math.log(final)}


# ----------------------------------------------------------------------------- run
def check(cfg: Config, device: str) -> None:
    """Before anything is written: real autocast timing needs a GPU."""
    if cfg.amp_benchmark and device != "cuda":
        from mlbench.core.errors import UsageError

        raise UsageError("fp16-mixed: the 'full' profile (amp_benchmark) times real CUDA autocast and needs "
                         "--device cuda on a GPU; on CPU run the quick profile (or --set amp_benchmark=false)")


def run(cfg: Config, ctx) -> dict:
    res = ctx.unit("train", lambda: train(cfg, ctx))
    m = res["measurements"]
    for arm in list(m):
        m[arm]["log_train_loss"] = [math.log(max(v, 1e-30)) if v == v else math.nan for v in m[arm]["train_loss"]]  # NaN: diverged
    last = res["census"][str(max(cfg.census_steps))]
    for name in SCALES:
        m[f"scale-{name}"] = {key: [r[f"{kind}@{name}"] for r in last] for key, kind in
                              (("zeroed_frac", "act_zeroed"), ("mass_lost", "act_mass_lost"), ("w_zeroed_frac", "w_zeroed"))}
        for removed, lost in (("removed_frac", "zeroed_frac"), ("removed_mass", "mass_lost")):  # vs scale 1
            m[f"scale-{name}"][removed] = [1.0 - s / u if u > 0 else 0.0 for s, u in
                                           zip(m[f"scale-{name}"][lost], m["scale-1"][lost])]
    m["fp16-pure"]["lost_update_frac"] = [r["pure_lost"] for r in last]
    m["fp32"]["update_below_2^-11"] = [r["below_2^-11"] for r in last]
    if cfg.amp_benchmark:
        for prec in AMP_PRECISIONS:
            rows = ctx.unit(f"amp-{prec}", lambda prec=prec: [amp_train(cfg, ctx, prec, k) for k in ctx.seeds])
            m[f"amp-{prec}"] = {key: [r[key] for r in rows] for key in rows[0]}
    _tables(cfg, ctx, m, res)
    _plots(ctx, res, list(arm_specs(cfg)))
    return m


# ----------------------------------------------------------------------------- tables, plots

def _tables(cfg: Config, ctx, m: dict, res: dict) -> None:
    from mlbench.core.verdict import mean_ci

    base, rows = m["fp32"], []
    for arm, (fmt, master, scaling) in arm_specs(cfg).items():
        r, ci = m[arm], mean_ci(m[arm]["test_acc"])
        rows.append({"arm": arm, "storage": fmt or "float32", "fp32_master": master, "loss_scale": scaling,
                     "test_acc": ci.mean, "acc_ci_low": ci.low, "acc_ci_high": ci.high,
                     "acc_minus_fp32": ci.mean - mean(base["test_acc"]), "train_loss": mean(r["train_loss"]),
                     "loss_ratio_vs_fp32": math.exp(mean(r["log_train_loss"]) - mean(base["log_train_loss"])),
                     "skipped_steps": mean(r["skipped_steps"]), "final_scale": mean(r["final_scale"])})
    ctx.table(rows, title=f"Digits MLP 64-{'-'.join(map(str, cfg.hidden))}-10, SGD lr {cfg.lr:g} momentum "
              f"{cfg.momentum:g}, {cfg.steps} steps: test accuracy (mean, 95% CI over seeds), final training loss")
    census_rows, update_rows = [], []
    for step, per_seed in sorted(res["census"].items(), key=lambda kv: int(kv[0])):
        for name in SCALES:
            census_rows.append({"step": int(step), "loss_scale": name, **{
                f"{kind}_{what}": mean([r[f"{kind}_{what}@{name}"] for r in per_seed])
                for kind in ("act", "w") for what in ("zeroed", "mass_lost", "overflow")}})
        update_rows.append({"step": int(step), **{key: mean([r[key] for r in per_seed])
                                                  for key in ("below_2^-11", "lost_in_fp16", "pure_lost")}})
    ctx.table(census_rows, name="underflow", title="fp32 gradients of the fp32 arm against fp16: share of non-zero "
              "values that fp16(s·g) makes 0 (zeroed) or inf (overflow), and share of sum |g| zeroed (mass_lost); "
              "act = dL/dz, w = dL/dW")
    ctx.table(update_rows, name="lost_updates", title="Updates u = lr·v: share with |u| < 2^-11 |w| and share lost "
              "when added in fp16 (fp32 arm); share of weights the pure-fp16 arm left unchanged")
    if cfg.amp_benchmark:
        ref = m["amp-fp32"]
        ctx.table([{"precision": p, "step_ms": mean(r["step_ms"]), "speedup_vs_fp32": mean(ref["step_ms"]) / mean(r["step_ms"]),
                    "peak_mib": mean(r["peak_mib"]), "memory_vs_fp32": mean(r["peak_mib"]) / mean(ref["peak_mib"]),
                    "final_loss": mean(r["final_loss"])} for p in AMP_PRECISIONS for r in [m[f"amp-{p}"]]],
                  name="amp", title=f"GPU LM ({cfg.amp_layers} layers, d={cfg.amp_d_model}, B={cfg.amp_batch}, "
                  f"T={cfg.amp_seq_len}, {cfg.amp_steps} steps): median step time, torch.cuda.max_memory_allocated")


def _plots(ctx, res: dict, names: list) -> None:
    from mlbench.core.plotting import figure

    fig, ax = figure(1, 2)
    steps = sorted(res["census"], key=int)
    for step in steps:
        hist = [mean(col) for col in zip(*[r["act_log2_hist"] for r in res["census"][step]])]
        ax[0][0].step(range(-48, 18), hist, where="post", label=f"step {step}")
    for x, text in ((-24, "2^-24 subnormal"), (-14, "2^-14 normal"), (math.log2(FP16_MAX), "65504")):
        ax[0][0].axvline(x, color="grey", ls=":", lw=0.8)
        ax[0][0].text(x, ax[0][0].get_ylim()[1] * 0.95, text, rotation=90, va="top", fontsize=7)
    ax[0][0].axvspan(-48, -25, color="red", alpha=0.08)
    ax[0][0].set(xlabel="log2 |dL/dz| (fp32 arm; <= -48 in the first bin)", ylabel="share of non-zero values",
                 title="activation gradients vs fp16 (red: round to 0)")
    ax[0][0].legend(fontsize=7)
    for name in SCALES:
        ys = [mean([r[f"act_zeroed@{name}"] for r in res["census"][s]]) for s in steps]
        ax[0][1].plot([int(s) for s in steps], ys, "o-", label=f"loss scale {name}")
    ax[0][1].set(xlabel="step", ylabel="share zeroed in fp16", title="underflow grows as training converges")
    ax[0][1].legend()
    ctx.plot("underflow", fig)

    fig, ax = figure(1, 3)
    c, S = res["curves"], len(ctx.seeds)
    for a, name in enumerate(names):
        for panel, key in ((0, "train_loss"), (1, "test_acc")):
            ax[0][panel].plot(c["step"][1:], [mean(row[a * S:(a + 1) * S]) for row in c[key][1:]], label=name)
    a = names.index("fp16-dynamic")
    ax[0][2].plot(c["step"], [mean(row[a * S:(a + 1) * S]) for row in c["scale"]])
    ax[0][0].set(yscale="log", xlabel="step", ylabel="training loss (batches)", title="loss (mean over seeds)")
    ax[0][1].set(xlabel="step", ylabel="test accuracy", ylim=(0.9, 1.0), title="test accuracy")
    ax[0][2].set(yscale="log", xlabel="step", ylabel="loss scale", title="fp16-dynamic: loss scale (GradScaler rule)")
    ax[0][0].legend(fontsize=7)
    ctx.plot("training", fig)
