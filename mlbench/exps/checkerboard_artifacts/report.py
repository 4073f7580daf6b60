"""checkerboard-artifacts: the upsampler table, the overlap table, the gap over training, the
per-seed energies; figures of the overlap patterns, the energy curves and the trained outputs."""

from __future__ import annotations

import math

import torch

from mlbench.core.plotting import curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.checkerboard_artifacts import OVERLAP, REFERENCE, overlap_key, trained_arms
from mlbench.exps.checkerboard_artifacts.artifacts import tap_counts

NAMES = {"tconv_k3s2": "transposed conv k3s2", "tconv_k4s2": "transposed conv k4s2",
         "nearest_conv": "nearest + conv", "bilinear_conv": "bilinear + conv", "pixelshuffle": "PixelShuffle",
         "pixelshuffle_icnr": "PixelShuffle + ICNR", "pixelshuffle_icnr_blur": "PixelShuffle + ICNR + blur"}


def label(cfg, arm: str) -> str:
    if cfg.negative_control and arm.startswith("tconv_"):
        return f"{arm}: nearest + k3s1 tconv (control)"
    return NAMES[arm]


def report(cfg, ctx, m: dict, init: dict, trained: dict) -> None:
    _tables(cfg, ctx, m, init, trained)
    _plot_init(cfg, ctx, m, init)
    _plot_training(cfg, ctx, trained)
    _plot_outputs(cfg, ctx, trained)
    _plot_spectrum(cfg, ctx, trained)


def _delta(m: dict, arm: str) -> list[float]:
    return [a - r for a, r in zip(m[arm]["log10_energy"], m[REFERENCE]["log10_energy"])]


def _tables(cfg, ctx, m: dict, init: dict, trained: dict) -> None:
    arms = trained_arms(cfg)
    rows = [{"upsampler": label(cfg, a), "P_init": mean(m[a]["phase_contrast"]),
             "P_init_min": min(m[a]["phase_contrast_min"]), "P_init_max": max(m[a]["phase_contrast_max"]),
             "P_same_sign": mean(m[a]["phase_contrast_abs"]), **mean_ci_cells("log10_E", m[a]["log10_energy"]),
             **mean_ci_cells("delta", _delta(m, a)), "test_mse": mean(m[a]["test_mse"])} for a in arms]
    ctx.table(rows, title=f"Upsamplers: stride-phase contrast P on a constant input at init (mean over seeds of the "
              f"mean over {cfg.init_draws} inits; min/max over every init; P_same_sign: |w| weights, zero bias), and "
              f"after {cfg.steps} steps the log10 artifact energy at ≥ {cfg.band:g} cycles/px and "
              f"delta = log10 E − log10 E(nearest + conv) (mean, 95% CI over {len(ctx.seeds)} seeds); targets: "
              f"log10 E = {mean(trained['target_log10_energy']):.2f}")
    ctx.table([{"k": k, "s": s, "divisible": k % s == 0, "taps_per_phase": " ".join(map(str, tap_counts(k, s))),
                "phase_sums": " ".join(f"{v:g}" for v in init["overlap"][overlap_key(k, s)]["phase_sums"]),
                "P_measured": init["overlap"][overlap_key(k, s)]["phase_contrast"],
                "P_closed_form": init["overlap"][overlap_key(k, s)]["closed_form"]} for k, s in OVERLAP],
              name="overlap", title=f"Overlap arithmetic: all-ones k x k transposed conv, stride s, {cfg.channels} "
              "channels, on a constant input of ones (interior); taps per phase ⌈(k − r)/s⌉, phase sums C·n_a·n_b")
    steps, energy = trained["curve_steps"], trained["curve_energy"]
    gap_rows = []
    for i, step in enumerate(steps):
        for a in arms:
            if a != REFERENCE:
                gap_rows.append({"step": step, "upsampler": label(cfg, a), **mean_ci_cells(
                    "delta", [e[i] - r[i] for e, r in zip(energy[a], energy[REFERENCE])])})
    ctx.table(gap_rows, name="gap", title="The gap over training: delta = log10 E − log10 E(nearest + conv) at each "
              "evaluation (mean, 95% CI over seeds)")
    ctx.table([{"seed": k, **{a: m[a]["log10_energy"][i] for a in arms},
                "ps_minus_icnr": m["pixelshuffle"]["log10_energy"][i] - m["pixelshuffle_icnr"]["log10_energy"][i]}
               for i, k in enumerate(ctx.seeds)], name="seeds",
              title=f"log10 artifact energy per seed after {cfg.steps} steps")


SHORT = {"tconv_k3s2": "tconv\nk3s2", "tconv_k4s2": "tconv\nk4s2", "nearest_conv": "nearest\n+ conv",
         "bilinear_conv": "bilinear\n+ conv", "pixelshuffle": "Pixel-\nShuffle", "pixelshuffle_icnr": "PS +\nICNR",
         "pixelshuffle_icnr_blur": "PS + ICNR\n+ blur"}


def _relative(img) -> torch.Tensor:
    """A patch as its deviation from its own mean, relative to its rms (a flat patch is all 0)."""
    t = torch.tensor(img, dtype=torch.float64)
    return (t - t.mean()) / t.square().mean().sqrt().clamp_min(1e-300)


def _show(ax, rel, lim: float, title: str):
    im = ax.imshow(rel.numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    ax.set_title(title, fontsize="small")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _plot_init(cfg, ctx, m: dict, init: dict) -> None:
    arms = trained_arms(cfg)
    fig, ax = figure(1, 1, width=12.0, height=6.0)
    ax[0][0].remove()
    axd = fig.subplot_mosaic([["a", "b", "c", "d"], ["e", "f", "P", "P"]])
    fig.set_layout_engine("constrained")
    panels = [(init["overlap"][overlap_key(k, s)]["patch"], f"all-ones k{k}s{s}") for k, s in ((3, 2), (4, 2))]
    panels += [(init["patches"][a]["signed"], f"{label(cfg, a)}, random init")
               for a in ("tconv_k3s2", "nearest_conv", "pixelshuffle", "pixelshuffle_icnr")]
    rel = [_relative(p) for p, _ in panels]
    lim = max(max(float(r.abs().max()) for r in rel), 1e-12)
    for key, r, (_, title) in zip("abcdef", rel, panels):
        im = _show(axd[key], r, lim, title)
    fig.colorbar(im, ax=[axd[k] for k in "abcd"], shrink=0.8, label="(y − mean) / rms, every patch")
    big = axd["P"]
    for i, (metric, name) in enumerate((("phase_contrast", "signed init"), ("phase_contrast_abs", "|w|, zero bias"))):
        xs = [j + (i - 0.5) * 0.25 for j in range(len(arms))]
        vals = [m[a][metric] for a in arms]
        big.plot(xs, [mean(v) for v in vals], "o", label=name)
        for x, v in zip(xs, vals):
            big.scatter([x] * len(v), v, s=8, color="grey", alpha=0.5)
    big.set_xticks(range(len(arms)), [SHORT[a] for a in arms], fontsize="x-small")
    big.set(ylabel="phase contrast P at init", title="P on a constant input (grey dots: seeds)")
    big.axhline(math.sqrt(4 / 3), color="grey", lw=0.8, ls=":", label="maximum √(4/3)")
    big.legend(fontsize="small")
    fig.suptitle("A constant input through each upsampler at initialisation (crops of the output)")
    ctx.plot("init_patterns", fig)


def _plot_training(cfg, ctx, trained: dict) -> None:
    arms, steps, energy = trained_arms(cfg), trained["curve_steps"], trained["curve_energy"]
    fig, ax = figure(1, 2, width=5.5)
    for i, a in enumerate(arms):  # one colour per arm in both panels
        curves(ax[0][0], steps, {label(cfg, a): energy[a]}, xlabel="training step",
               ylabel=f"log10 share of power at ≥ {cfg.band:g} cycles/px", title="artifact energy (thin lines: seeds)",
               color=f"C{i}")
        if a != REFERENCE:
            gaps = [[e - r for e, r in zip(es, rs)] for es, rs in zip(energy[a], energy[REFERENCE])]
            curves(ax[0][1], steps, {label(cfg, a): gaps}, xlabel="training step",
                   ylabel="log10 E − log10 E(nearest + conv)", title="gap to nearest + conv", color=f"C{i}")
    ax[0][1].axhline(0.0, color="grey", lw=0.8, ls=":")
    fig.tight_layout()
    ctx.plot("energy_vs_step", fig)


def _plot_outputs(cfg, ctx, trained: dict) -> None:
    arms, sample = trained_arms(cfg), trained["sample"]
    target = torch.tensor(sample["target"])
    panels = [("target", target)] + [(label(cfg, a), torch.tensor(sample["arms"][a])) for a in arms]
    fig, ax = figure(2, len(panels), width=2.3, height=2.4)
    fig.set_layout_engine("constrained")
    lo, hi = min(float(p.min()) for _, p in panels), max(float(p.max()) for _, p in panels)
    res = max(float((p - target).abs().max()) for _, p in panels[1:])
    for j, (name, img) in enumerate(panels):
        im0 = ax[0][j].imshow(img.numpy(), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax[0][j].set_title(name.replace(" + ", "\n+ "), fontsize="x-small")
        if j:
            im1 = ax[1][j].imshow((img - target).numpy(), cmap="RdBu_r", vmin=-res, vmax=res, interpolation="nearest")
        for a in (ax[0][j], ax[1][j]):
            a.tick_params(labelsize="xx-small")
    small = torch.nn.functional.avg_pool2d(target[None, None], 2 ** cfg.stages)[0, 0]
    ax[1][0].imshow(small.numpy(), cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
    ax[1][0].set_title(f"input ({small.shape[0]} x {small.shape[1]} average pool)", fontsize="x-small")
    fig.colorbar(im0, ax=ax[0], shrink=0.8, label="output")
    fig.colorbar(im1, ax=ax[1], shrink=0.8, label="output − target")
    fig.suptitle(f"A test image after {cfg.steps} steps (seed {ctx.seeds[0]}): output (top), output − target (bottom)")
    ctx.plot("outputs", fig)


def _plot_spectrum(cfg, ctx, trained: dict) -> None:
    """Share of the output power at each max(|f_u|, |f_v|), mean over test images and seeds."""
    arms, freqs = trained_arms(cfg), trained["frequencies"]
    fig, ax = figure(1, 1, width=7.0, height=4.2)
    a = ax[0][0]
    profiles = {label(cfg, arm): trained["profile"][arm] for arm in arms}
    profiles["target"] = trained["target_profile"]
    for i, (name, rows) in enumerate(profiles.items()):
        share = [sum(col) / len(col) for col in zip(*rows)]
        a.plot(freqs, share, marker="o", ms=3, label=name, color="black" if name == "target" else f"C{i}",
               ls="--" if name == "target" else "-")
    a.set_yscale("log")
    a.axvspan(cfg.band, max(freqs), color="grey", alpha=0.15, label=f"artifact band (≥ {cfg.band:g})")
    a.set(xlabel="max(|f_u|, |f_v|), cycles/px (Nyquist 0.5)", ylabel="share of the windowed output power",
          title=f"Output spectra after {cfg.steps} steps (mean over {cfg.test_images} test images and seeds)")
    a.legend(fontsize="x-small")
    ctx.plot("spectrum", fig)
