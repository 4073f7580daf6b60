"""autoregressive-digits: the NLL table, the papers' MNIST numbers beside ours, and the figures
(validation curves and paired test NLLs, samples, Jacobian patterns)."""

from __future__ import annotations

import math
from collections import Counter

from mlbench.core.plotting import curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.autoregressive_digits import fvsbn_arm, made_key, nade_key
from mlbench.exps.autoregressive_digits import fvsbn as fvsbn_lib, made as made_lib, nade as nade_lib

# (model, paper configuration) -> test NLL on binarised MNIST, nats/image (not confirmed against the papers)
PAPER_MNIST = {"fvsbn": ("FVSBN (Larochelle & Murray 2011)", 97.45), "nade": ("NADE, H=500 (Larochelle & Murray 2011)", 88.86),
               (1, 1): ("MADE, 1 hidden layer, 1 mask (Germain 2015)", 88.40),
               (1, 32): ("MADE, 1 hidden layer, 32 masks (Germain 2015)", 88.04),
               (2, 32): ("MADE, 2 hidden layers, 32 masks (Germain 2015)", 86.64)}
MNIST_PIXELS = 784


def models(cfg) -> list[tuple[str, str, int, int]]:
    """(measurement key, label, parameter count, epoch budget) of every model in the main table."""
    d = cfg.image_size ** 2
    rows = [("independent", "independent pixels (closed form)", d, 0),
            ("fvsbn", "FVSBN (λ chosen on validation)", fvsbn_lib.parameter_count(d), cfg.fvsbn_epochs)]
    rows += [(nade_key(cfg, h), f"NADE, H={h}", nade_lib.parameter_count(d, h), cfg.nade_epochs) for h in cfg.nade_hidden]
    rows += [(made_key(cfg, l, k), f"MADE, {l} x {cfg.made_width}, {k} mask{'s' if k > 1 else ''}",
              made_lib.parameter_count(d, (cfg.made_width,) * l), cfg.made_epochs)
             for l in cfg.made_layers for k in cfg.made_masks]
    return rows


def paper_figure(cfg, key: str) -> tuple[str, float]:
    if key in ("fvsbn", "independent"):
        return PAPER_MNIST["fvsbn"] if key == "fvsbn" else ("-", math.nan)
    if key.startswith("nade"):
        return PAPER_MNIST["nade"]
    layers, masks = next((l, k) for l in cfg.made_layers for k in cfg.made_masks if made_key(cfg, l, k) == key)
    near = (layers, masks) if (layers, masks) in PAPER_MNIST else (1, 1) if masks == 1 else (min(layers, 2), 32)
    return PAPER_MNIST[near]


def report(cfg, ctx, m: dict, results: dict, data) -> None:
    d = cfg.image_size ** 2
    rows = []
    for key, label, params, epochs in models(cfg):
        r = m[key]
        gap = [a - b for a, b in zip(r["test_nll"], m["fvsbn"]["test_nll"])]
        rows.append({"model": label, "arm": key, "parameters": params, "epoch_budget": epochs,
                     "epochs_run": mean(r["epochs_run"]) if "epochs_run" in r else 0,
                     "best_epoch": mean(r["best_epoch"]) if "best_epoch" in r else 0,
                     **mean_ci_cells("test_nll", r["test_nll"]), "bits_per_pixel": mean(r["test_nll"]) / (d * math.log(2)),
                     **mean_ci_cells("minus_fvsbn", gap), "train_nll": mean(r["train_nll"]),
                     "jacobian_violations": sum(r.get("jacobian_violations", [0.0])),
                     "context_nonzero": mean(r.get("jacobian_context_nonzero", [0.0])),
                     "paper_mnist_nll": paper_figure(cfg, key)[1]})
    seeds = len(m["fvsbn"]["test_nll"])
    ctx.table(rows, title=f"Test NLL, nats per image ({d} binary pixels), mean and 95% CI over {seeds} seeds, at "
              f"each model's best validation epoch (epoch 0 = the independent model; epochs_run < epoch_budget: "
              f"stopped after {cfg.patience} epochs without improvement); minus_fvsbn = model − FVSBN, paired; "
              f"jacobian_violations = nonzero ∂logit_d/∂x_j for j not before d, summed over seeds; context_nonzero = "
              f"nonzero entries below it (the model uses its context); paper_mnist_nll = the paper's "
              f"binarised-MNIST figure (784 pixels: not comparable)"
              + (" — negative control: pixel columns permuted" if cfg.negative_control else ""))
    _l2_table(cfg, ctx, m)
    _paper_table(cfg, ctx, m, d)
    if max(cfg.made_masks) > 1:
        _ensemble_table(cfg, ctx, m)
    _plot_nll(cfg, ctx, m, results)
    _plot_samples(cfg, ctx, m, results, data)
    _plot_jacobians(cfg, ctx, m, results)


def _l2_table(cfg, ctx, m: dict) -> None:
    chosen = Counter(m["fvsbn"]["l2"])
    rows = [{"l2": v, **mean_ci_cells("val_nll", m[fvsbn_arm(v)]["val_nll"]), "test_nll": mean(m[fvsbn_arm(v)]["test_nll"]),
             "best_epoch": mean(m[fvsbn_arm(v)]["best_epoch"]), "chosen_by_seeds": chosen.get(v, 0)} for v in cfg.fvsbn_l2]
    ctx.table(rows, name="fvsbn-l2", title="FVSBN: L2 strength λ (loss + λ·Σ W²) chosen per seed on validation NLL")


def _paper_table(cfg, ctx, m: dict, d: int) -> None:
    rows = []
    for key, label, _, _ in models(cfg)[1:]:
        config, value = paper_figure(cfg, key)
        ours = mean(m[key]["test_nll"])
        rows.append({"ours": label, "ours_nll": ours, "ours_nats_per_pixel": ours / d, "paper": config,
                     "paper_mnist_nll": value, "paper_nats_per_pixel": value / MNIST_PIXELS})
    ctx.table(rows, name="paper", title=f"The papers' binarised-MNIST test NLLs (28x28, {MNIST_PIXELS} pixels; recalled, "
              f"not checked against the papers) beside ours ({d}-pixel digits): different data, compare orderings, not values")


def _ensemble_table(cfg, ctx, m: dict) -> None:
    rows = [{"arm": made_key(cfg, l, k), "masks": k, **mean_ci_cells("test_nll", m[made_key(cfg, l, k)]["test_nll"]),
             "logit_average_nll": mean(m[made_key(cfg, l, k)]["test_nll_logit_average"])}
            for l in cfg.made_layers for k in cfg.made_masks if k > 1]
    ctx.table(rows, name="ensemble", title="MADE over K masks: test NLL of the probability average (a mixture, a valid "
              "likelihood) beside the logit average (σ of the mean logit: not normalised, not a likelihood)")


def _fvsbn_shown(m: dict) -> str:
    """The FVSBN arm chosen for the first seed (its curves, samples and Jacobian are shown)."""
    return fvsbn_arm(m["fvsbn"]["l2"][0])


def _shown(cfg, m: dict) -> list[tuple[str, str]]:
    return [(_fvsbn_shown(m), "FVSBN")] + [(key, label) for key, label, _, _ in models(cfg)[2:]]


def _plot_nll(cfg, ctx, m: dict, results: dict) -> None:
    fig, ax = figure(1, 2, width=6.0)
    all_curves = {k: v for r in results.values() for k, v in r.get("curves", {}).items()}
    for key, label in _shown(cfg, m):
        c = all_curves[key]
        curves(ax[0][0], list(range(len(c[0]))), {label: c}, xlabel="epoch", ylabel="validation NLL (nats per image)")
    ax[0][0].axhline(mean(m["independent"]["val_nll"]), color="grey", ls=":", lw=1, label="independent pixels")
    ax[0][0].legend(fontsize="small")
    ax[0][0].set_title("validation NLL during training (thin lines: seeds)")
    keys = [(k, lab) for k, lab, _, _ in models(cfg)[2:]]  # the neural models, against the FVSBN
    xs = list(range(len(keys)))
    for s in range(len(m["fvsbn"]["test_nll"])):
        gaps = [m[k]["test_nll"][s] - m["fvsbn"]["test_nll"][s] for k, _ in keys]
        ax[0][1].plot(xs, gaps, "o", ms=5, alpha=0.7, label=f"seed {s}")
    ax[0][1].plot(xs, [mean(m[k]["test_nll"]) - mean(m["fvsbn"]["test_nll"]) for k, _ in keys], "k_", ms=24, mew=2,
                  label="mean")
    ax[0][1].axhline(0.0, color="grey", lw=0.8, label="FVSBN")
    ax[0][1].axhline(-cfg.min_gain, color="grey", lw=0.8, ls="--", label=f"−{cfg.min_gain:g} (claimed gain)")
    ax[0][1].set_xticks(xs, [lab.replace(", ", "\n") for _, lab in keys], fontsize="small" if len(keys) < 5 else "x-small")
    ax[0][1].set_xlim(-0.5, len(keys) - 0.5)
    ax[0][1].set(ylabel="test NLL − FVSBN's (nats per image)", title="test NLL relative to the FVSBN, per seed")
    ax[0][1].legend(fontsize="small")
    ctx.plot("nll", fig)


def _mosaic(images, side: int, cols: int):
    """n flattened binary images -> one (rows·(side+1), cols·(side+1)) array, 1-pixel grey gaps."""
    import numpy as np

    n = len(images)
    rows = math.ceil(n / cols)
    out = np.full((rows * (side + 1) + 1, cols * (side + 1) + 1), 0.5)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[1 + r * (side + 1):1 + r * (side + 1) + side, 1 + c * (side + 1):1 + c * (side + 1) + side] = \
            np.asarray(img).reshape(side, side)
    return out


def _plot_samples(cfg, ctx, m: dict, results: dict, data) -> None:
    side, n = cfg.image_size, cfg.samples
    cols = min(n, 16)
    samples = {k: v for r in results.values() for k, v in r["samples"].items()}
    rows = [("test images", data["test"][0, :n].cpu().tolist()), ("independent", samples["independent"])]
    rows += [(label, samples[key]) for key, label in _shown(cfg, m)]
    fig, ax = figure(len(rows), 1, width=0.45 * cols, height=0.45 * math.ceil(n / cols) + 0.1)
    for a, (label, imgs) in zip(ax[:, 0], rows):
        a.imshow(_mosaic(imgs, side, cols), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        a.set_axis_off()
        a.text(-0.02, 0.5, label, transform=a.transAxes, ha="right", va="center", fontsize="small")
    fig.suptitle("Ancestral samples, one pixel at a time (first seed)" +
                 (" — negative control" if cfg.negative_control else ""))
    ctx.plot("samples", fig)


def _plot_jacobians(cfg, ctx, m: dict, results: dict) -> None:
    patterns = {k: v for r in results.values() for k, v in r.get("jacobian", {}).items()}
    shown = _shown(cfg, m)
    cols = min(len(shown), 4)
    fig, ax = figure(math.ceil(len(shown) / cols), cols, width=3.8, height=3.6)
    fig.subplots_adjust(wspace=0.35, hspace=0.45)
    panels = [a for row in ax for a in row]
    for a in panels[len(shown):]:
        a.set_axis_off()
    for a, (key, label) in zip(panels, shown):
        a.imshow(patterns[key], cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
        a.set(xlabel="input pixel j", ylabel="output logit d",
              title=f"{label}\nviolations: {int(sum(m[key]['jacobian_violations']))}")
        a.title.set_fontsize("small")
    fig.suptitle("Nonzero ∂logit_d/∂x_j (blue) at two inputs, first seed, natural-order mask: none on or above "
                 "the diagonal")
    ctx.plot("jacobian", fig)
