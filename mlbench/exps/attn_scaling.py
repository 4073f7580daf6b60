"""attn-scaling: why q·k is divided by sqrt(d).

Shows (Vaswani et al. 2017, §3.2.1 and footnote 4; seed documents 000 and 003):

1. At initialisation, with unit-variance q and k, unscaled logits q·k have variance d, so the
   softmax saturates (entropy -> 0, one-hot attention) as the head dimension d grows, while the
   scaled logits keep variance 1 and the entropy stays put.
2. Training: a one-layer attention model on associative recall (P key-value pairs, then a
   query key; predict its value) reaches 90 % held-out accuracy several times more slowly
   without the scale, and the slowdown grows with d. With Adam at toy scale the unscaled
   model still learns eventually: "never converges" is too strong, "much slower" is measured.
3. T5-style: no scale in the forward pass but W_q initialised with std·d^-1/2 learns like the
   scaled model (the factor is folded into the init).

All arms and seeds of one head dimension train together as one batched model (stacked
parameters, one Adam over them: Adam is elementwise, so this equals separate training).
Arms are paired: seed k of every arm shares its data stream and initial weights.

Run: `mlbench run attn-scaling` (quick, CPU); `--profile full --device cuda` for d up to 1024.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from mlbench.core.config import param
from mlbench.core.numerics import Divergence
from mlbench.core.verdict import AllOf, Claim, Equivalent, Paired, Trend, mean

VERSION = 1
ARMS = ("scaled", "unscaled", "t5-init")
CITATION = "Vaswani et al. 2017, §3.2.1 fn. 4"


@dataclass(frozen=True)
class Config:
    head_dims: tuple[int, ...] = param((16, 64, 256), "head dimensions d trained (largest judges the claim)")
    stats_dims: tuple[int, ...] = param((16, 64, 256, 1024), "d grid for the statistics at initialisation")
    stats_keys: int = param(64, "keys per query in the init statistics (max entropy ln 64 = 4.16)")
    stats_queries: int = param(512, "queries per seed for the init statistics (x stats_keys logits each)")
    d_model: int = param(64, "embedding width; LayerNorm keeps token inputs at unit variance")
    n_pairs: int = param(16, "key-value pairs in each recall sequence")
    n_keys: int = param(32, "key vocabulary")
    n_values: int = param(32, "value vocabulary (= number of classes)")
    steps: int = param(600, "max training steps (training stops once every model reaches the threshold)")
    batch_size: int = param(128, "sequences per step")
    lr: float = param(1e-3, "learning rate (Adam as in the prototype; SGD shows a starker gap)")
    optimizer: Literal["adam", "sgd"] = param("adam", "adam | sgd")
    eval_every: int = param(25, "steps between held-out evaluations (resolution of steps-to-threshold)")
    eval_size: int = param(2048, "held-out sequences per seed (fixed, own generator)")
    threshold: float = param(0.9, "held-out accuracy that counts as 'learned'")
    init: Literal["unit", "torch"] = param("unit", "unit: W ~ N(0, 1/d_model) so q, k have unit variance; torch: nn.Linear default (variance 1/3)")
    negative_control: bool = param(False, "scale the 'unscaled' arm too: the claim must then NOT reproduce")

    def validate(self) -> None:
        if self.n_pairs > self.n_keys:
            raise ValueError("n_pairs must be <= n_keys (keys in a sequence are distinct)")
        for name in ("steps", "batch_size", "eval_every", "eval_size", "stats_queries", "stats_keys"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive")
        if min(self.head_dims) < 1 or min(self.stats_dims) < 1:
            raise ValueError("dimensions must be positive")
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")


def arm(name: str, d: int) -> str:
    return f"{name}@d{d}"


def claims(cfg: Config) -> list[Claim]:
    lo, hi = min(cfg.head_dims), max(cfg.head_dims)
    s_lo, s_hi = min(cfg.stats_dims), max(cfg.stats_dims)
    stats_unscaled = tuple(arm("unscaled-init", d) for d in sorted(cfg.stats_dims))
    xs = tuple(math.log2(d) for d in sorted(cfg.stats_dims))
    return [
        Claim("training", f"Without the scale, attention learns more slowly at d={hi}: initial entropy "
              f"collapses, steps to {cfg.threshold:.0%} held-out accuracy rise, and the slowdown grows with d "
              f"(d={lo} -> {hi})", CITATION,
              AllOf((Paired("steps_to_threshold", arm("unscaled", hi), arm("scaled", hi), log_ratio=True),
                     Paired("H0", arm("scaled", hi), arm("unscaled", hi), min_effect=1.0),
                     Paired("log_slowdown", f"d{hi}", f"d{lo}")))),
        Claim("init-saturation", "At init, unscaled softmax entropy falls with log d while scaled entropy "
              "does not change with d", CITATION,
              AllOf((Trend("entropy", stats_unscaled, xs, "less", -0.1, x_label="log2 d"),
                     Equivalent("entropy", arm("scaled-init", s_hi), arm("scaled-init", s_lo), 0.1)))),
        Claim("t5-init", f"T5-style init (unscaled logits, W_q std x d^-1/2) learns like the scaled model "
              f"at d={hi}: slowdown < 1.5x", "Raffel et al. 2020 (T5); seed 003",
              Paired("steps_to_threshold", arm("t5-init", hi), arm("scaled", hi), "less",
                     math.log(1.5), log_ratio=True)),
    ]


CLAIMS = claims(Config())


# ----------------------------------------------------------------------------- statistics
def init_statistics(d: int, cfg: Config, gen) -> dict[str, dict[str, float]]:
    """Softmax statistics for q, k ~ N(0, I_d), scaled (1/sqrt d) and unscaled."""
    import torch

    q = torch.randn(cfg.stats_queries, 1, d, generator=gen)  # (Q, 1, d)
    k = torch.randn(cfg.stats_queries, cfg.stats_keys, d, generator=gen)  # (Q, T, d)
    raw = (q @ k.transpose(1, 2)).squeeze(1).double()  # (Q, T); softmax statistics in float64
    out = {}
    for name, logits in (("scaled", raw / math.sqrt(d)), ("unscaled", raw)):
        p = torch.softmax(logits, dim=-1)
        entropy = -(p * p.clamp_min(1e-300).log()).sum(-1)
        p2 = (p**2).sum(-1)  # ||diag(p) - pp^T||_F^2 = Σp² - 2Σp³ + (Σp²)²
        jac = (p2 - 2 * (p**3).sum(-1) + p2**2).clamp_min(0).sqrt()
        out[name] = {"logit_var": logits.var().item(), "entropy": entropy.mean().item(),
                     "max_prob": p.max(-1).values.mean().item(), "jacobian_norm": jac.mean().item()}
    return out


# ----------------------------------------------------------------------------- the task
def recall_batch(cfg: Config, seeds: int, batch: int, gen):
    """Associative recall: P distinct keys with random values, and a query among them.

    Returns pair indices (S, B, P) into the n_keys x n_values table, query keys (S, B), targets (S, B).
    """
    import torch

    keys = torch.rand(seeds, batch, cfg.n_keys, generator=gen).argsort(-1)[..., : cfg.n_pairs]
    values = torch.randint(cfg.n_values, (seeds, batch, cfg.n_pairs), generator=gen)
    pick = torch.randint(cfg.n_pairs, (seeds, batch, 1), generator=gen)
    query = keys.gather(-1, pick).squeeze(-1)
    target = values.gather(-1, pick).squeeze(-1)
    return keys * cfg.n_values + values, query, target


def init_params(cfg: Config, d: int, seeds: int, gens: list) -> dict:
    """Stacked parameters for (arm, seed) models, arm-major: index = arm * seeds + seed."""
    import torch

    D = cfg.d_model
    proj_std = 1.0 / math.sqrt(D) if cfg.init == "unit" else 1.0 / math.sqrt(3 * D)
    per_seed = []
    for g in gens:
        per_seed.append({
            "emb_key": torch.randn(cfg.n_keys, D, generator=g),
            "emb_value": torch.randn(cfg.n_values, D, generator=g),
            "w_q": torch.randn(D, d, generator=g) * proj_std,
            "w_k": torch.randn(D, d, generator=g) * proj_std,
            "w_v": torch.randn(D, d, generator=g) * proj_std,
            "w_o": torch.randn(d, cfg.n_values, generator=g) / math.sqrt(d),
            "b_o": torch.zeros(cfg.n_values),
        })
    params = {}
    for name in per_seed[0]:
        seed_stack = torch.stack([p[name] for p in per_seed])  # (S, ...)
        arms = [seed_stack.clone() for _ in ARMS]
        if name == "w_q":  # T5: fold the 1/sqrt(d) into the query projection's init
            arms[ARMS.index("t5-init")] = seed_stack / math.sqrt(d)
        params[name] = torch.cat(arms).requires_grad_(True)  # (A*S, ...)
    return params


def forward(params: dict, pairs, query, logit_scale):
    """Logits (M, B, n_values) and attention probabilities (M, B, P) for M stacked models."""
    import torch
    import torch.nn.functional as F

    ek, ev = params["emb_key"], params["emb_value"]  # (M, nk, D), (M, nv, D)
    D = ek.shape[-1]
    pair_tok = F.layer_norm(ek[:, :, None, :] + ev[:, None, :, :], (D,)).flatten(1, 2)  # (M, nk*nv, D)
    k_tab, v_tab = pair_tok @ params["w_k"], pair_tok @ params["w_v"]  # (M, nk*nv, d)
    q_tab = F.layer_norm(ek, (D,)) @ params["w_q"]  # (M, nk, d)
    M, B, P = pairs.shape
    d = k_tab.shape[-1]
    flat = pairs.reshape(M, B * P, 1).expand(M, B * P, d)
    k = k_tab.gather(1, flat).view(M, B, P, d)
    v = v_tab.gather(1, flat).view(M, B, P, d)
    q = q_tab.gather(1, query.reshape(M, B, 1).expand(M, B, d))  # (M, B, d)
    scores = torch.einsum("mbd,mbpd->mbp", q, k) * logit_scale[:, None, None]
    attn = scores.softmax(-1)
    out = torch.einsum("mbp,mbpd->mbd", attn, v)
    return out @ params["w_o"] + params["b_o"][:, None, :], attn


# ----------------------------------------------------------------------------- training
def _logit_scales(cfg: Config, d: int, seeds: int, device):
    import torch

    unscaled = 1.0 / math.sqrt(d) if cfg.negative_control else 1.0
    per_arm = {"scaled": 1.0 / math.sqrt(d), "unscaled": unscaled, "t5-init": 1.0}
    return torch.tensor([per_arm[a] for a in ARMS for _ in range(seeds)], device=device)


def _batches(cfg: Config, gens: list, batch: int, device):
    """One batch per seed (each seed its own stream), repeated for every arm (arm-major)."""
    import torch

    parts = [recall_batch(cfg, 1, batch, g) for g in gens]  # per seed: (1, B, ...) x 3
    out = []
    for i in range(3):
        per_seed = torch.cat([p[i] for p in parts])  # (S, B, ...)
        out.append(per_seed.repeat(len(ARMS), *([1] * (per_seed.dim() - 1))).to(device))  # (A*S, B, ...)
    return out


def train_head_dim(cfg: Config, ctx, d: int) -> dict:
    """Train every (arm, seed) model at head dimension d together; JSON-able results."""
    import torch
    import torch.nn.functional as F

    seeds, dev = len(ctx.seeds), ctx.device
    params = {k: v.detach().to(dev).requires_grad_(True)
              for k, v in init_params(cfg, d, seeds, [ctx.generator(f"init-d{d}", k) for k in ctx.seeds]).items()}
    scale = _logit_scales(cfg, d, seeds, dev)
    eval_pairs, eval_query, eval_target = _batches(cfg, [ctx.generator("heldout", k) for k in ctx.seeds], cfg.eval_size, dev)
    data_gens = [ctx.generator(f"data-d{d}", k) for k in ctx.seeds]
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(list(params.values()), lr=cfg.lr)
    M = len(ARMS) * seeds
    reached = [None] * M
    curve_steps, curve_acc, h0 = [], [], None
    losses = torch.zeros(M)
    divergence = Divergence(M)
    with ctx.task(f"train d={d} ({M} models)", total=cfg.steps) as bar:
        for step in range(cfg.steps + 1):
            if step % cfg.eval_every == 0 or step == cfg.steps:
                with torch.no_grad():
                    logits, attn = forward(params, eval_pairs, eval_query, scale)
                acc = (logits.argmax(-1) == eval_target).float().mean(1).cpu()  # (M,)
                if h0 is None:
                    h0 = (-(attn * attn.clamp_min(1e-30).log()).sum(-1)).mean(1).cpu()
                curve_steps.append(step)
                curve_acc.append(acc.tolist())
                for m in range(M):
                    a, k = divmod(m, seeds)
                    if reached[m] is None and acc[m] >= cfg.threshold:
                        reached[m] = step
                    ctx.log(arm=ARMS[a], d=d, seed=k, step=step, heldout_acc=acc[m].item(),
                            train_loss=losses[m].item())
                if all(r is not None or divergence.diverged(m) for m, r in enumerate(reached)) or step == cfg.steps:
                    bar.advance(cfg.steps - step)
                    break
            pairs, query, target = _batches(cfg, data_gens, cfg.batch_size, dev)
            logits, _ = forward(params, pairs, query, scale)
            per_model = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none").view(M, -1).mean(1)
            opt.zero_grad(set_to_none=True)
            per_model.sum().backward()  # models share no parameters: each gets its own gradient
            opt.step()
            losses = per_model.detach().cpu()
            for m in divergence.update(losses, step + 1):  # NaN/inf loss: recorded, never a crash
                a, k = divmod(m, seeds)
                ctx.log(arm=ARMS[a], d=d, seed=k, step=step + 1, diverged=True, train_loss=losses[m].item())
            bar.advance()
    for m in range(M):
        a, k = divmod(m, seeds)
        ctx.save_checkpoint(f"{ARMS[a]}-d{d}-seed{k}", {n: p[m] for n, p in params.items()},
                            {"arm": ARMS[a], "head_dim": str(d), "seed_index": str(k)})
    censored = cfg.steps + cfg.eval_every  # "not reached": counted as one evaluation past the budget
    out = {}
    for a, name in enumerate(ARMS):
        idx = range(a * seeds, (a + 1) * seeds)
        out[arm(name, d)] = {
            "steps_to_threshold": [divergence.mask(float(reached[m] if reached[m] is not None else censored), m)
                                   for m in idx],
            "reached": [float(reached[m] is not None) for m in idx],
            "diverged_at": [float(divergence.step[m]) if divergence.diverged(m) else math.nan for m in idx],
            "H0": [h0[m].item() for m in idx],
            "final_acc": [curve_acc[-1][m] for m in idx],
        }
    return {"measurements": out, "curve_steps": curve_steps, "curve_acc": curve_acc}


def run(cfg: Config, ctx) -> dict:
    measurements: dict[str, dict[str, list[float]]] = {}
    stats_dims, head_dims = sorted(cfg.stats_dims), sorted(cfg.head_dims)
    stats = ctx.map_units({f"init-stats-d{d}": (lambda d=d: [init_statistics(d, cfg, ctx.generator(f"stats-d{d}", k))
                                                          for k in ctx.seeds]) for d in stats_dims})
    for d in stats_dims:
        per_seed = stats[f"init-stats-d{d}"]
        for name in ("scaled", "unscaled"):
            measurements[arm(f"{name}-init", d)] = {key: [s[name][key] for s in per_seed] for key in per_seed[0][name]}
    trained = ctx.map_units({f"train-d{d}": (lambda d=d: train_head_dim(cfg, ctx, d)) for d in head_dims})
    curves = {d: trained[f"train-d{d}"] for d in head_dims}
    for d in head_dims:
        measurements.update(curves[d]["measurements"])
        s, u = (measurements[arm(n, d)]["steps_to_threshold"] for n in ("scaled", "unscaled"))
        measurements[f"d{d}"] = {"log_slowdown": [math.log(b / a) for a, b in zip(s, u)]}
    _report(cfg, ctx, measurements, curves)
    return measurements


# ----------------------------------------------------------------------------- tables, plots

def _report(cfg: Config, ctx, m: dict, curves: dict) -> None:
    from mlbench.core.plotting import figure
    from mlbench.core.verdict import mean_ci

    rows = []
    for d in sorted(cfg.head_dims):
        base = mean(m[arm("scaled", d)]["steps_to_threshold"])
        for name in ARMS:
            r = m[arm(name, d)]
            ci = mean_ci(r["steps_to_threshold"])
            rows.append({"d": d, "arm": name, "H0": mean(r["H0"]), "steps": ci.mean,
                         "steps_95ci": f"[{ci.low:.0f}, {ci.high:.0f}]", "reached": f"{int(sum(r['reached']))}/{len(r['reached'])}",
                         "diverged": sum(not math.isnan(x) for x in r["diverged_at"]),
                         "slowdown": ci.mean / base, "acc_end": mean(r["final_acc"])})
    ctx.table(rows, title=f"Associative recall: steps to {cfg.threshold:.0%} held-out accuracy (mean, 95% CI "
              f"over seeds), initial attention entropy H0 (nats), slowdown = steps / scaled steps, acc_end = "
              f"held-out accuracy when training stopped (all models past the threshold, or the step budget); "
              f"init '{cfg.init}', {cfg.optimizer} lr {cfg.lr:g}")
    stats_rows = []
    for d in sorted(cfg.stats_dims):
        for name in ("scaled", "unscaled"):
            r = m[arm(f"{name}-init", d)]
            stats_rows.append({"d": d, "logits": name, "logit_var": mean(r["logit_var"]),
                               "entropy": mean(r["entropy"]), "max_prob": mean(r["max_prob"]),
                               "jacobian_fro": mean(r["jacobian_norm"])})
    ctx.table(stats_rows, name="init", title=f"Softmax at init, q,k ~ N(0, I_d), {cfg.stats_keys} keys "
              f"(max entropy ln {cfg.stats_keys} = {math.log(cfg.stats_keys):.2f})")

    fig, ax = figure(1, 2)
    dims = sorted(cfg.stats_dims)
    for name, style in (("scaled", "o-"), ("unscaled", "s--")):
        ax[0][0].plot(dims, [mean(m[arm(f"{name}-init", d)]["entropy"]) for d in dims], style, label=name)
        ax[0][1].plot(dims, [mean(m[arm(f"{name}-init", d)]["jacobian_norm"]) for d in dims], style, label=name)
    ax[0][0].axhline(math.log(cfg.stats_keys), color="grey", lw=0.8, ls=":", label="max (uniform)")
    for a, title in ((ax[0][0], "softmax entropy at init (nats)"), (ax[0][1], "‖diag(p) − ppᵀ‖_F at init")):
        a.set_xscale("log", base=2)
        a.set_xlabel("head dimension d")
        a.set_title(title)
        a.legend()
    ctx.plot("init_statistics", fig)

    fig, ax = figure(1, 2)
    d_hi = max(cfg.head_dims)
    res, seeds = curves[d_hi], len(ctx.seeds)
    for a, name in enumerate(ARMS):
        acc = [mean(row[a * seeds:(a + 1) * seeds]) for row in res["curve_acc"]]
        ax[0][0].plot(res["curve_steps"], acc, label=name)
    ax[0][0].axhline(cfg.threshold, color="grey", lw=0.8, ls=":")
    ax[0][0].set(xlabel="step", ylabel="held-out accuracy", title=f"recall, d={d_hi} (mean of {seeds} seeds)")
    ax[0][0].legend()
    dims = sorted(cfg.head_dims)
    for name in ("unscaled", "t5-init"):
        ratios = [[u / s for u, s in zip(m[arm(name, d)]["steps_to_threshold"], m[arm("scaled", d)]["steps_to_threshold"])
                   if math.isfinite(u / s)] for d in dims]  # per seed; diverged models are left out
        shown = [(d, r) for d, r in zip(dims, ratios) if r]
        if not shown:
            continue
        line, = ax[0][1].plot([d for d, _ in shown], [mean(r) for _, r in shown], "o-", label=f"{name} / scaled")
        for d, r in shown:
            ax[0][1].scatter([d] * len(r), r, s=10, color=line.get_color(), alpha=0.5)
    ax[0][1].axhline(1.0, color="grey", lw=0.8, ls=":")
    ax[0][1].set_xscale("log", base=2)
    ax[0][1].set(xlabel="head dimension d", ylabel=f"steps to {cfg.threshold:.0%}, ratio to scaled",
                 title="slowdown vs d (dots: seeds)")
    if ax[0][1].get_legend_handles_labels()[0]:  # nothing to show when every model diverged
        ax[0][1].legend()
    ctx.plot("training", fig)
