"""adam-vs-adamw: L2 regularisation in Adam is not weight decay.

Tests Loshchilov & Hutter 2019 (ICLR), "Decoupled Weight Decay Regularization" (seed documents
000-002), Algorithm 2, with schedule multiplier η_t and g = ∇f(θ):

    Adam+L2:      g ← g + λθ;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  θ ← θ − η_t α m̂/(√v̂ + ε)
    AdamW paper:  θ ← θ − η_t (α m̂/(√v̂ + ε) + λθ)        (decay independent of α)
    AdamW torch:  θ ← θ − η_t α (m̂/(√v̂ + ε) + λθ)        (`torch.optim.AdamW`: λ_torch = λ/α)

1. Mechanism (exact): in Adam+L2 the decay λθ passes through the adaptive normalisation, so
   weight i shrinks by η_t α λ/(√v̂_i + ε) a step: weights with large gradients are regularised
   less. AdamW shrinks every weight by η_t λ. Our vectorised update is checked step by step
   against `torch.optim.Adam(weight_decay=λ)` and `torch.optim.AdamW`.
2. The α × λ grid of all three optimisers (heatmaps of test error); each best cell is chosen on
   a validation split. Claims, stated separately: (a) AdamW generalises better than Adam+L2 at
   their best settings — the paper's main claim and hence the headline (the mechanism holds by
   construction; (a) is what a user of AdamW hopes for); (b) with decoupled decay the best λ
   depends less on α (|slope| of log λ*(α) against log α, per seed); (c) PyTorch's form, whose
   decay is α·λ_torch, re-couples them (its best λ_torch moves with α).

Data: scikit-learn's shipped 8x8 digits (800 train / 500 validation / 497 test); an MLP
64-h-h-10 with BatchNorm, so that W1, W2 are scale-invariant as in the paper's ResNets. The
whole grid (optimisers × α × λ × seeds) trains as ONE batched ensemble (one flat (M, P) weight
tensor, bmm) with a hand-written Adam whose α, L2 and decay are per-model tensors; seed k of
every cell shares its initial weights and data stream, so comparisons are paired.

What the data say. Quick (4 seeds, 600 steps, CPU): only the mechanism reproduces; (a), (b)
and (c) come out `inconclusive` — the optimisers differ by a fraction of a percent on 497
test digits, within the seed-to-seed noise, and the per-seed best λ jumps between grid cells.
At the `full` scale (8 seeds, measured once on an H100 while developing) (c) and (b)
reproduced (paper-form λ* flat in α, Adam+L2's drifting, PyTorch-form λ_torch* ∝ 1/α), while
(a) stayed inconclusive (and a variant with width 128 and 3000 steps found Adam+L2 *better*,
and (b) inconclusive): the generalisation gain of the paper's CIFAR ResNets does not appear on
digits. Without BatchNorm the picture flips: the paper form's best λ grows with α (its
equilibrium weight norm depends on λ/α). `negative_control` makes both AdamW arms couple their
decay (copies of Adam+L2): then no claim may come out `reproduced`.

Run: `mlbench run adam-vs-adamw` (quick, CPU); `--profile full --device cuda` for a 6 x 6 grid,
8 seeds, width 256, shift augmentation and warm restarts (AdamWR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlbench.core.config import param
from mlbench.core.verdict import AllOf, Claim, Paired, Threshold, mean

VERSION = 1
OPTIMISERS = ("adam-l2", "adamw-torch", "adamw-paper")
CITATION = "Loshchilov & Hutter 2019, Decoupled Weight Decay Regularization"
INTS = ("hidden", "steps", "batch_size", "restarts", "train_size", "val_size", "eval_every", "decay_bins")


@dataclass(frozen=True)
class Config:
    lrs: tuple[float, ...] = param((1e-3, 3e-3, 1e-2, 3e-2), "Adam learning rates α (heatmap rows)")
    wd_l2: tuple[float, ...] = param((1e-3, 1e-2, 1e-1, 1.0), "Adam+L2 λ (added to the gradient as λθ)")
    wd_torch: tuple[float, ...] = param((0.1, 1.0, 10.0, 100.0), "PyTorch AdamW λ_torch (shrink η_t·α·λ_torch a step): the paper grid / 1e-3")
    wd_paper: tuple[float, ...] = param((1e-4, 1e-3, 1e-2, 1e-1), "paper AdamW λ (shrink η_t·λ a step, independent of α)")
    hidden: int = param(64, "MLP width, 64-h-h-10 (256 in full)")
    steps: int = param(600, "training steps (48 epochs of 800 digits at batch 64)")
    batch_size: int = param(64, "images per step; one stream per seed, shared by every cell")
    restarts: int = param(1, "cosine cycles (SGDR, each twice the last); 1 = one cosine annealing to 0")
    train_size: int = param(800, "training digits (of sklearn's 1300 outside the fixed test split)")
    val_size: int = param(500, "validation digits: they choose the best cells; 497 test digits judge them")
    batch_norm: bool = param(True, "BatchNorm (no affine) after each hidden layer, as in the paper's ResNets")
    augment: bool = param(False, "random ±1-pixel shifts (full: on; at 600 steps they leave the MLP underfit)")
    decay_biases: bool = param(True, "decay biases too (the paper decays all weights; practice often does not)")
    beta1: float = param(0.9, "Adam β1 (paper and torch default)")
    beta2: float = param(0.999, "Adam β2 (paper and torch default)")
    eps: float = param(1e-8, "Adam ε (paper and torch default)")
    eval_every: int = param(100, "steps between logged evaluations")
    decay_bins: int = param(8, "gradient-RMS quantile bins of the effective-decay table")
    negative_control: bool = param(False, "both AdamW arms couple their decay (= Adam+L2): no claim may reproduce")

    def validate(self) -> None:
        if not len(self.wd_l2) == len(self.wd_torch) == len(self.wd_paper):
            raise ValueError("wd_l2, wd_torch and wd_paper must have the same length (one grid)")
        if min(*self.lrs, *self.wd_l2, *self.wd_torch, *self.wd_paper) <= 0 or len(self.lrs) < 2:
            raise ValueError("need >= 2 learning rates, and positive rates and decays (log-scale grid)")
        if self.train_size + self.val_size > 1300 or min(getattr(self, n) for n in INTS) < 1:
            raise ValueError(f"{', '.join(INTS)} must be positive; train_size + val_size <= 1300")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.eps > 0):
            raise ValueError("need 0 <= beta1, beta2 < 1 and eps > 0")

    def wd_grid(self, opt: str) -> tuple[float, ...]:
        return {"adam-l2": self.wd_l2, "adamw-torch": self.wd_torch, "adamw-paper": self.wd_paper}[opt]


def claims(cfg: Config) -> list[Claim]:
    fig2 = CITATION + ", Fig. 2"
    exact = tuple(Threshold("step_max_abs_diff", o, 1e-10, "less") for o in OPTIMISERS)
    return [
        Claim("generalisation", "AdamW (paper form) reaches a lower test error than Adam+L2, each at its best "
              "(α, λ) chosen on validation data (paired over seeds, percentage points)", fig2,
              Paired("best_test_error", "adam-l2", "adamw-paper", "greater", 0.0)),
        Claim("separability", "With decoupled decay the best λ depends less on α: the absolute slope of "
              "log λ*(α) vs log α is smaller for AdamW (paper form) than for Adam+L2", fig2,
              Paired("abs_slope", "adam-l2", "adamw-paper", "greater", 0.0)),
        Claim("torch-recouples", "PyTorch's AdamW (decay α·λ_torch) re-couples λ and α: the absolute slope of "
              "its best λ_torch vs α exceeds the paper form's", fig2 + "; PyTorch AdamW docs",
              Paired("abs_slope", "adamw-torch", "adamw-paper", "greater", 0.0)),
        Claim("mechanism", "One step of each optimiser equals torch's (Adam weight_decay / AdamW); Adam+L2's "
              "effective decay falls with gradient RMS (log-log slope < -0.5), AdamW's is uniform (abs. slope < 0.05)",
              CITATION + ", Alg. 2, Prop. 2",
              AllOf((Threshold("eff_decay_slope", "adam-l2", -0.5, "less"),
                     Threshold("eff_decay_abs_slope", "adamw-paper", 0.05, "less"),
                     Threshold("eff_decay_abs_slope", "adamw-torch", 0.05, "less"), *exact))),
    ]


CLAIMS = claims(Config())


# ----------------------------------------------------------------------------- the optimisers
def adam_step(p, g, m, v, t: int, lr, l2, decay, cfg: Config, mask=1.0) -> None:
    """Algorithm 2 for M stacked models, in place on p, m, v (M, P). Per model (M,):
    lr = η_t α;  l2 = λ (Adam+L2) else 0;  decay = η_t λ (paper) | η_t α λ (torch) | 0.

        g ← ∇f + l2·θ;  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
        θ ← (1 − decay) θ − lr · m̂ / (√v̂ + ε),   m̂ = m / (1−β1^t),  v̂ = v / (1−β2^t)

    `mask` (P,) is 0 for weights exempt from both kinds of decay.
    """
    bc1, bc2_sqrt = 1 - cfg.beta1**t, math.sqrt(1 - cfg.beta2**t)
    lr, l2, decay = lr[:, None], l2[:, None], decay[:, None]  # (M, 1)
    g = g + l2 * mask * p
    m.lerp_(g, 1 - cfg.beta1)  # as torch does: m + (1−β1)(g − m)
    v.mul_(cfg.beta2).addcmul_(g, g, value=1 - cfg.beta2)
    p.mul_(1 - decay * mask)
    p.sub_(lr / bc1 * m / (v.sqrt() / bc2_sqrt + cfg.eps))


def effective_decay(v_hat, alpha: float, lam: float, opt: str, eps: float):
    """Per-weight shrink of θ per step at η_t = 1, the decay term being at steady state in m̂:
    Adam+L2 α λ/(√v̂ + ε) (λθ is divided by the adaptive denominator); paper λ; torch α λ."""
    import torch

    if opt == "adam-l2":
        return alpha * lam / (v_hat.sqrt() + eps)
    return torch.full_like(v_hat, lam if opt == "adamw-paper" else alpha * lam)


def schedule(step: int, steps: int, restarts: int) -> float:
    """η_t: cosine annealing with warm restarts (SGDR, T_mult = 2); restarts = 1 is plain cosine."""
    start, length = 0.0, steps / (2**restarts - 1)
    while step >= start + length and length < steps:
        start, length = start + length, 2 * length
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - start) / length)))


def coupled(cfg: Config, opt: str) -> bool:
    """Whether `opt` adds its decay to the gradient (Adam+L2; every arm under the negative control)."""
    return opt == "adam-l2" or cfg.negative_control


def lam_grid(cfg: Config, opt: str) -> tuple[float, ...]:
    """The λ values `opt` trains with (the control's AdamW arms copy Adam+L2's grid)."""
    return cfg.wd_grid("adam-l2" if coupled(cfg, opt) else opt)


def grid_hypers(cfg: Config, seeds: int, device, dtype=None) -> dict:
    """Per-model α, L2 λ and decay (before η_t), each (M,), M = O·L·W·S with the seed innermost."""
    import torch

    rows = [(a, lam if coupled(cfg, o) else 0.0, 0.0 if coupled(cfg, o) else lam if o == "adamw-paper" else a * lam)
            for o in OPTIMISERS for a in cfg.lrs for lam in lam_grid(cfg, o) for _ in range(seeds)]
    cols = torch.tensor(rows, dtype=dtype or torch.float32, device=device).T
    return dict(zip(("alpha", "l2", "decay"), cols.contiguous()))


def step_check(cfg: Config, gen, n_steps: int = 6, size: int = 40) -> dict[str, float]:
    """Max |θ_ours − θ_torch| after n float64 steps (random gradients, cosine η_t), per optimiser,
    against the arm's namesake: Adam(weight_decay=λ), AdamW(weight_decay=λ_torch), AdamW(λ/α)."""
    import torch

    theta0 = torch.randn(1, size, generator=gen, dtype=torch.float64)
    grads = torch.randn(n_steps, 1, size, generator=gen, dtype=torch.float64)
    hyp, L, W = grid_hypers(cfg, 1, "cpu", torch.float64), len(cfg.lrs), len(cfg.wd_l2)
    out = {}
    for o, opt in enumerate(OPTIMISERS):
        i = slice((o * L + L - 1) * W + W // 2, None)  # the model with the largest α, a middle λ
        alpha, lam = cfg.lrs[-1], cfg.wd_grid(opt)[W // 2]
        ref = theta0[0].clone().requires_grad_(True)
        kw = dict(lr=alpha, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, foreach=False)
        torch_opt = (torch.optim.Adam([ref], weight_decay=lam, **kw) if opt == "adam-l2" else
                     torch.optim.AdamW([ref], weight_decay=lam / alpha if opt == "adamw-paper" else lam, **kw))
        ours, m, v = theta0.clone(), torch.zeros_like(theta0), torch.zeros_like(theta0)
        for t in range(1, n_steps + 1):
            eta = schedule(t - 1, n_steps, 1)
            torch_opt.param_groups[0]["lr"] = alpha * eta
            ref.grad = grads[t - 1, 0].clone()
            torch_opt.step()
            adam_step(ours, grads[t - 1], m, v, t, eta * hyp["alpha"][i][:1], hyp["l2"][i][:1],
                      eta * hyp["decay"][i][:1], cfg)
        out[opt] = (ours[0] - ref.detach()).abs().max().item()
    return out


# ----------------------------------------------------------------------------- data and model
def load_data(cfg: Config, ctx) -> dict:
    """Digits standardised with the training mean and std. x_train (K shifts, N, 64); eval = val + test."""
    import torch
    import torch.nn.functional as F

    from mlbench.data import digits

    x_pool, y_pool, x_test, y_test = digits.load(ctx.cache_dir)  # (1300, 64), (1300,), (497, 64), (497,)
    x_train = x_pool[: cfg.train_size]
    mu, sd = x_train.mean(0), x_train.std()
    shifts = [(0, 0)] + [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if cfg.augment and (dy or dx)]
    img = F.pad(x_train.view(-1, 8, 8), (1, 1, 1, 1))  # shifted-in pixels are blank
    x_shifted = torch.stack([img[:, 1 + dy:9 + dy, 1 + dx:9 + dx].reshape(-1, 64) for dy, dx in shifts])
    x_eval = torch.cat([x_pool[-cfg.val_size:], x_test])  # (V + T, 64)
    return {"x_train": ((x_shifted - mu) / sd).to(ctx.device), "y_train": y_pool[: cfg.train_size].to(ctx.device),
            "x_eval": ((x_eval - mu) / sd).to(ctx.device),
            "y_eval": torch.cat([y_pool[-cfg.val_size:], y_test]).to(ctx.device)}


def shapes(h: int) -> dict[str, tuple[int, int]]:
    return {"w1": (64, h), "b1": (1, h), "w2": (h, h), "b2": (1, h), "w3": (h, 10), "b3": (1, 10)}


def unflatten(flat, h: int) -> dict:
    """(M, P) -> named views (M, fan_in, fan_out). One flat tensor keeps the optimiser at ~15 ops a
    step; `split` (not slicing) makes the backward one concatenation."""
    sizes = shapes(h)
    parts = flat.split([a * b for a, b in sizes.values()], dim=1)
    return {name: part.view(-1, a, b) for (name, (a, b)), part in zip(sizes.items(), parts)}


def init_params(cfg: Config, gens: list, cells: int, device):
    """He-normal weights, zero biases; one draw per seed, repeated for every cell: (cells·S, P)."""
    import torch

    per_seed = torch.stack([torch.cat([(torch.randn(a, b, generator=g) * math.sqrt(2 / a)).flatten()
                                       if n[0] == "w" else torch.zeros(b) for n, (a, b) in shapes(cfg.hidden).items()])
                            for g in gens])  # (S, P)
    return per_seed.repeat(cells, 1).to(device).requires_grad_(True)


def decay_mask(cfg: Config, device):
    """(P,) 1 for decayed weights; biases are 0 unless decay_biases."""
    import torch

    return torch.cat([torch.full((a * b,), float(cfg.decay_biases or n[0] == "w"))
                      for n, (a, b) in shapes(cfg.hidden).items()]).to(device)


def forward(p: dict, x, batch_norm: bool = False, stats: list | None = None):
    """x (M, B, 64) -> logits (M, B, 10) for M stacked MLPs. BatchNorm uses the batch's statistics,
    or those in `stats` (an empty list is filled from this x: the population pass)."""
    h = x
    for layer in (1, 2):
        h = h @ p[f"w{layer}"] + p[f"b{layer}"]  # (M, B, h)
        h = (_batch_norm(h, stats, layer - 1) if batch_norm else h).relu()
    return h @ p["w3"] + p["b3"]


def _batch_norm(h, stats: list | None, layer: int):
    import torch.nn.functional as F

    if stats is None:  # training: the fused kernel on a (B, M·h) view, 3x faster than by hand
        M, B, H = h.shape
        out = F.batch_norm(h.transpose(0, 1).reshape(B, M * H), None, None, training=True, eps=1e-5)
        return out.view(B, M, H).transpose(0, 1)
    if len(stats) == layer:
        stats.append((h.mean(1, keepdim=True), h.var(1, unbiased=False, keepdim=True)))
    mu, var = stats[layer]
    return (h - mu) / (var + 1e-5).sqrt()


# ----------------------------------------------------------------------------- training
def evaluate(params: dict, data: dict, cfg: Config) -> dict:
    """Per-model val error, val loss, test error (errors in %), each (M,); BatchNorm statistics from
    the whole unshifted training set. A diverged model gets every image wrong."""
    import torch
    import torch.nn.functional as F

    V, M = cfg.val_size, params["w1"].shape[0]  # params: named views
    with torch.no_grad():
        stats: list = []
        forward(params, data["x_train"][0].expand(M, -1, -1), cfg.batch_norm, stats)
        logits = forward(params, data["x_eval"].expand(M, -1, -1), cfg.batch_norm, stats)  # (M, V+T, 10)
        wrong = (logits.argmax(-1) != data["y_eval"]).float() * 100  # (M, V+T)
        wrong = torch.where(torch.isfinite(logits).all(-1), wrong, torch.full_like(wrong, 100.0))
        loss = F.cross_entropy(logits[:, :V].transpose(1, 2), data["y_eval"][:V].expand(M, -1), reduction="none")
    return {"val_err": wrong[:, :V].mean(1).cpu(), "test_err": wrong[:, V:].mean(1).cpu(),
            "val_loss": loss.mean(1).nan_to_num(math.inf).cpu()}


def _log_eval(ctx, cfg: Config, step: int, ev: dict, train_loss) -> None:
    """One metrics line per model; `train_loss` (M,) may be on the GPU: one transfer, not one per model."""
    losses, val_err, test_err = train_loss.tolist(), ev["val_err"].tolist(), ev["test_err"].tolist()
    for m in range(len(losses)):
        rest, k = divmod(m, len(ctx.seeds))
        (o, i), j = divmod(rest // len(cfg.wd_l2), len(cfg.lrs)), rest % len(cfg.wd_l2)
        ctx.log(arm=OPTIMISERS[o], seed=k, step=step, lr=cfg.lrs[i], wd=lam_grid(cfg, OPTIMISERS[o])[j],
                train_loss=losses[m], val_error=val_err[m], test_error=test_err[m])


def train_grid(cfg: Config, ctx, data: dict) -> tuple:
    """Train every (optimiser, α, λ, seed) MLP as one batched ensemble: flat params (M, P), Adam's v, evaluation."""
    import torch
    import torch.nn.functional as F

    seeds, dev = len(ctx.seeds), ctx.device
    cells = len(OPTIMISERS) * len(cfg.lrs) * len(cfg.wd_l2)
    flat = init_params(cfg, [ctx.generator("init", k) for k in ctx.seeds], cells, dev)  # (M, P)
    m, v = torch.zeros_like(flat), torch.zeros_like(flat)  # Adam moments (M, P)
    hyp, mask = grid_hypers(cfg, seeds, dev), decay_mask(cfg, dev)
    gens, pool = [ctx.generator("batches", k) for k in ctx.seeds], data["x_train"].flatten(0, 1)  # (K·N, 64)
    train_loss = torch.zeros(cells * seeds)
    with ctx.task(f"train {cells * seeds} MLPs", total=cfg.steps) as bar:
        for step in range(cfg.steps):
            if step % cfg.eval_every == 0:
                _log_eval(ctx, cfg, step, evaluate(unflatten(flat, cfg.hidden), data, cfg), train_loss)
            idx = torch.stack([torch.randint(len(pool), (cfg.batch_size,), generator=g) for g in gens])
            idx = idx.to(dev).repeat(cells, 1)  # (M, B): model m sees seed (m mod S)'s batch
            logits = forward(unflatten(flat, cfg.hidden), pool[idx], cfg.batch_norm)  # (M, B, 10)
            y = data["y_train"][idx % cfg.train_size]
            per_model = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(1)  # (M,)
            grad, = torch.autograd.grad(per_model.sum(), flat)  # models share nothing: per-model gradients
            eta = schedule(step, cfg.steps, cfg.restarts)
            with torch.no_grad():
                adam_step(flat, grad, m, v, step + 1, eta * hyp["alpha"], hyp["l2"], eta * hyp["decay"], cfg, mask)
            train_loss = per_model.detach()  # read only at evaluations: no GPU sync per step
            bar.advance()
    final = evaluate(unflatten(flat, cfg.hidden), data, cfg)
    _log_eval(ctx, cfg, cfg.steps, final, train_loss)
    return flat.detach(), v, final


# ----------------------------------------------------------------------------- analysis
def _argbest(cells: list[tuple[float, float]]) -> int:
    """Index of the lowest (error, loss): the loss breaks ties between equal error counts."""
    return min(range(len(cells)), key=lambda c: cells[c])


def select(cfg: Config, err: list, loss: list) -> dict:
    """err, loss [opt][lr][wd][seed]. Per optimiser: the best cell (seed-mean validation error),
    the best λ index per α for each seed and for the seed mean."""
    L, W, S = len(cfg.lrs), len(cfg.wd_l2), len(err[0][0][0])
    out = {}
    for o, opt in enumerate(OPTIMISERS):
        avg = [[(mean(err[o][i][j]), mean(loss[o][i][j])) for j in range(W)] for i in range(L)]
        out[opt] = {"cell": divmod(_argbest([c for row in avg for c in row]), W),
                    "mean_best_wd_index": [_argbest(row) for row in avg],
                    "best_wd_index": [[_argbest([(err[o][i][j][k], loss[o][i][j][k]) for j in range(W)])
                                       for i in range(L)] for k in range(S)]}
    return out


def separability_slope(cfg: Config, opt: str, wd_index: list[int]) -> float:
    """Least-squares slope of log10 λ*(α) against log10 α (decades of λ per decade of α)."""
    from mlbench.core.verdict import slope

    lams = lam_grid(cfg, opt)
    return slope([math.log10(a) for a in cfg.lrs], [math.log10(lams[j]) for j in wd_index])


def mechanism(cfg: Config, v, chosen: dict, seeds: int) -> dict:
    """Per optimiser (at its best cell) and seed: effective decay vs gradient RMS √v̂ in quantile
    bins of its decayed weights, and the log-log slope across the bins."""
    import torch

    from mlbench.core.verdict import slope

    decayed = decay_mask(cfg, "cpu") > 0
    out = {}
    for o, opt in enumerate(OPTIMISERS):
        i, j = chosen[opt]["cell"]
        rows = []
        for k in range(seeds):
            m = ((o * len(cfg.lrs) + i) * len(cfg.wd_l2) + j) * seeds + k
            v_hat = v[m].double().cpu()[decayed] / (1 - cfg.beta2**cfg.steps)
            v_hat = v_hat[v_hat > 0].sort().values  # a weight that never had a gradient has no RMS
            eff = effective_decay(v_hat, cfg.lrs[i], lam_grid(cfg, opt)[j], "adam-l2" if coupled(cfg, opt) else opt, cfg.eps)
            bins = [(v_hat[c].sqrt().median().item(), eff[c].median().item())
                    for c in torch.arange(len(v_hat)).chunk(cfg.decay_bins)]
            rows.append({"bins": bins, "slope": slope([math.log10(r) for r, _ in bins], [math.log10(e) for _, e in bins])})
        out[opt] = rows
    return out


def run_grid(cfg: Config, ctx) -> dict:
    """The resumable unit: train, choose, measure the mechanism, save each (optimiser, seed) grid."""
    seeds, shape = len(ctx.seeds), (len(OPTIMISERS), len(cfg.lrs), len(cfg.wd_l2), len(ctx.seeds))
    flat, v, final = train_grid(cfg, ctx, load_data(cfg, ctx))
    grid = {key: t.view(shape).tolist() for key, t in final.items()}
    chosen = select(cfg, grid["val_err"], grid["val_loss"])
    named = {n: p.view(*shape, *p.shape[1:]) for n, p in unflatten(flat, cfg.hidden).items()}  # (O, L, W, S, ...)
    for o, opt in enumerate(OPTIMISERS):
        for k in ctx.seeds:
            ctx.save_checkpoint(f"{opt}-seed{k}", {n: p[o, :, :, k] for n, p in named.items()},  # (n_lr, n_wd, ...)
                                {"optimizer": opt, "seed_index": k, "lrs": list(cfg.lrs), "wds": list(lam_grid(cfg, opt))})
    return {"grid": grid, "chosen": chosen, "mechanism": mechanism(cfg, v, chosen, seeds)}


def run(cfg: Config, ctx) -> dict:
    checks = ctx.unit("step-check", lambda: [step_check(cfg, ctx.generator("step-check", k)) for k in ctx.seeds])
    res = ctx.unit("grid", lambda: run_grid(cfg, ctx))
    measurements: dict[str, dict[str, list[float]]] = {}
    for o, opt in enumerate(OPTIMISERS):
        (i, j), chosen = res["chosen"][opt]["cell"], res["chosen"][opt]
        slopes = [separability_slope(cfg, opt, idx) for idx in chosen["best_wd_index"]]
        mech = [r["slope"] for r in res["mechanism"][opt]]
        measurements[opt] = {
            "best_test_error": res["grid"]["test_err"][o][i][j], "best_val_error": res["grid"]["val_err"][o][i][j],
            "slope": slopes, "abs_slope": [abs(s) for s in slopes],
            "eff_decay_slope": mech, "eff_decay_abs_slope": [abs(s) for s in mech],
            "step_max_abs_diff": [c[opt] for c in checks]}
    _report(cfg, ctx, measurements, res)
    return measurements


# ----------------------------------------------------------------------------- tables, plots
def _report(cfg: Config, ctx, m: dict, res: dict) -> None:
    from mlbench.core.verdict import mean_ci

    rows, mech = [], []
    for opt in OPTIMISERS:
        (i, j), lams = res["chosen"][opt]["cell"], lam_grid(cfg, opt)
        err, sl = mean_ci(m[opt]["best_test_error"]), mean_ci(m[opt]["slope"])
        rows.append({"optimizer": opt, "decay": "g += λθ" if coupled(cfg, opt) else
                     {"adamw-torch": "θ -= η·α·λ·θ", "adamw-paper": "θ -= η·λ·θ"}[opt],
                     "best_lr": cfg.lrs[i], "best_wd": lams[j], "val_error_pct": mean_ci(m[opt]["best_val_error"]).mean,
                     "test_error_pct": err.mean, "test_ci_low": err.low, "test_ci_high": err.high,
                     "best_wd_per_lr": " ".join(f"{lams[b]:g}" for b in res["chosen"][opt]["mean_best_wd_index"]),
                     "slope_log_wd_vs_log_lr": sl.mean, "slope_ci_low": sl.low, "slope_ci_high": sl.high})
        per_seed = [r["bins"] for r in res["mechanism"][opt]]
        mech += [{"optimizer": opt, "bin": b, "grad_rms": mean_ci([s[b][0] for s in per_seed]).mean,
                  "effective_decay_per_step": mean_ci([s[b][1] for s in per_seed]).mean} for b in range(len(per_seed[0]))]
    ctx.table(rows, title=f"Best (α, λ) per optimiser, chosen on {cfg.val_size} validation digits; test error % on "
              f"497 test digits (mean, 95% CI over {len(ctx.seeds)} seeds); slope = d log10 λ*(α) / d log10 α")
    ctx.table([{"optimizer": opt, "lr": a, "wd": lam, "val_error_pct": mean_ci(res["grid"]["val_err"][o][i][j]).mean,
                "test_error_pct": mean_ci(res["grid"]["test_err"][o][i][j]).mean}
               for o, opt in enumerate(OPTIMISERS) for i, a in enumerate(cfg.lrs) for j, lam in enumerate(lam_grid(cfg, opt))],
              name="grid", title="Every (α, λ) cell: error % (mean over seeds)")
    ctx.table(mech, name="mechanism", title="Effective decay per step (η = 1) vs gradient RMS √v̂: quantile bins "
              "of the weights of each optimiser's best model (mean over seeds)")
    _plot(cfg, ctx, res, mech)


def _plot(cfg: Config, ctx, res: dict, mech: list[dict]) -> None:
    import numpy as np
    from matplotlib.patches import Rectangle

    from mlbench.core.plotting import figure

    err = np.array(res["grid"]["test_err"]).mean(-1)  # (O, L, W)
    vmin, vmax = err.min(), min(err.max(), 3 * err.min() + 1)  # keep contrast among the good cells
    fig, ax = figure(1, len(OPTIMISERS), width=4.2, height=3.8)
    for o, opt in enumerate(OPTIMISERS):
        a, chosen = ax[0][o], res["chosen"][opt]
        im = a.imshow(err[o], origin="lower", cmap="viridis_r", vmin=vmin, vmax=vmax, aspect="auto")
        for (i, j), e in np.ndenumerate(err[o]):
            a.text(j, i, f"{e:.1f}", ha="center", va="center", fontsize=8, color="white" if e > (vmin + vmax) / 2 else "black")
        a.plot(chosen["mean_best_wd_index"], range(len(cfg.lrs)), "o", mfc="none", mec="red", ms=18)
        a.add_patch(Rectangle((chosen["cell"][1] - .5, chosen["cell"][0] - .5), 1, 1, fill=False, ec="red", lw=2.5))
        a.set_xticks(range(err.shape[2]), [f"{w:g}" for w in lam_grid(cfg, opt)])
        a.set_yticks(range(len(cfg.lrs)), [f"{x:g}" for x in cfg.lrs] if o == 0 else [])
        a.set(xlabel="λ_torch (decay α·λ_torch)" if opt == "adamw-torch" and not coupled(cfg, opt) else "λ",
              title=opt + (" (control: coupled)" if opt != "adam-l2" and coupled(cfg, opt) else ""))
    ax[0][0].set_ylabel("learning rate α")
    fig.colorbar(im, ax=ax[0].tolist(), label=f"test error % (mean of {len(ctx.seeds)} seeds)", shrink=0.9)
    fig.suptitle("Test error over α × λ. Box: best cell on validation; circles: best λ for each α (validation)")
    ctx.plot("heatmaps", fig)
    fig, ax = figure(1, 1, width=5.5, height=4)
    for opt, style in zip(OPTIMISERS, ("o-", "s--", "^:")):
        rows = [r for r in mech if r["optimizer"] == opt]
        ax[0][0].plot([r["grad_rms"] for r in rows], [r["effective_decay_per_step"] for r in rows], style, label=opt)
    ax[0][0].set(xscale="log", yscale="log", xlabel="gradient RMS √v̂ (quantile bins of the weights)",
                 ylabel="effective decay per step (η = 1)", title="Adam+L2 decays weights with large gradients less")
    ax[0][0].legend()
    ctx.plot("effective_decay", fig)
