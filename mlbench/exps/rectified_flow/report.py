"""rectified-flow: SW1 by sampler and NFE, the paired comparisons the claims read, and the figures
(SW1 against steps, samples, trajectories, training losses)."""

from __future__ import annotations

import math

from mlbench.core.grid import arm_key
from mlbench.core.plotting import by_x, curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.rectified_flow import FLOOR, FLOWS, SAMPLERS, reference_nfe

LABELS = {"vp-eps": "VP ε-model", "rf-uniform": "1-RF, uniform t", "rf-lognorm": "1-RF, logit-normal t", "vp-euler": "VP, PF-ODE Euler",
          "vp-ddim": "VP, DDIM", "rf2": "2-RF (reflow)", "rf2-shuffled": "reflow on shuffled pairs"}


def report(cfg, ctx, m: dict, evals: dict, floor: dict, curves_: dict) -> None:
    nfes, ref = sorted(cfg.nfe_grid), reference_nfe(cfg)
    wide = [{"sampler": s, **{f"sw1_nfe{n}": mean(m[arm_key(s, nfe=n)]["sw1"]) for n in nfes},
             "straightness": mean(m[s]["straightness"]) if s in FLOWS else ""} for s in SAMPLERS]
    wide.append({"sampler": "data vs data (floor)", **{f"sw1_nfe{n}": mean(m[FLOOR]["sw1"]) for n in nfes}})
    ctx.table(wide, title=f"Sliced W1 to fresh data by sampler and number of steps (mean over {len(ctx.seeds)} "
              f"seeds; {cfg.n_eval} samples, {cfg.projections} directions) and straightness S along the "
              f"{ref}-step trajectory; the floor is SW1 between two fresh data samples")
    long = [{"sampler": s, "nfe": n, **mean_ci_cells("sw1", m[arm_key(s, nfe=n)]["sw1"], lower=0),
             **mean_ci_cells("excess", m[arm_key(s, nfe=n)]["excess"])} for s in SAMPLERS for n in nfes]
    ctx.table(long, name="sw1", title=f"SW1 with 95% CI over seeds; excess = SW1 minus the same sampler's "
              f"SW1 at {ref} steps (step count apart from converged quality)")
    ctx.table(_comparisons(cfg, m), name="paired", title="Paired per-seed comparisons (95% CI over seeds)")
    _plot_sw1(cfg, ctx, m)
    _plot_samples(cfg, ctx, evals, floor)
    _plot_paths(ctx, evals)
    _plot_losses(ctx, curves_)


def _paired(name: str, metric: str, a: list, b: list, log_ratio: bool = False) -> dict:
    diffs = [math.log(x / y) if log_ratio else x - y for x, y in zip(a, b)]
    return {"comparison": name, "metric": metric, **mean_ci_cells("effect", diffs),
            "per_seed": " ".join(f"{d:.3g}" for d in diffs)}


def _comparisons(cfg, m: dict) -> list[dict]:
    ref = reference_nfe(cfg)

    def sw(s: str, n: int, metric: str = "sw1") -> list:
        return m[arm_key(s, nfe=n)][metric]

    rows = [_paired("2-RF / 1-RF, one step", "log SW1 ratio", sw("rf2", 1), sw("rf-uniform", 1), True),
            _paired("reflow on shuffled / 2-RF", "log S ratio", m["rf2-shuffled"]["straightness"],
                    m["rf2"]["straightness"], True),
            _paired("DDIM − 1-RF, 4 steps", "excess", sw("vp-ddim", 4, "excess"), sw("rf-uniform", 4, "excess")),
            _paired("DDIM − 1-RF, 4 steps", "SW1", sw("vp-ddim", 4), sw("rf-uniform", 4)),
            _paired("PF-ODE Euler − 1-RF, 4 steps", "excess", sw("vp-euler", 4, "excess"), sw("rf-uniform", 4, "excess")),
            _paired("PF-ODE Euler − 1-RF, 4 steps", "SW1", sw("vp-euler", 4), sw("rf-uniform", 4)),
            _paired(f"PF-ODE Euler − 1-RF, {ref} steps", "SW1", sw("vp-euler", ref), sw("rf-uniform", ref))]
    rows += [_paired(f"logit-normal − uniform t, {n} step{'s' if n > 1 else ''}", "SW1", sw("rf-lognorm", n),
                     sw("rf-uniform", n))
             for n in sorted(cfg.nfe_grid) if n in (1, 2, 4, 8, ref)]
    if 32 in cfg.nfe_grid:
        rows.append(_paired(f"2-RF at 32 steps − 1-RF at {ref}", "SW1", sw("rf2", 32), sw("rf-uniform", ref)))
    return rows


def _plot_sw1(cfg, ctx, m: dict) -> None:
    fig, ax = figure(1, 2, width=5.5)
    nfes = sorted(cfg.nfe_grid)
    panels = ((ax[0][0], "sw1", "sliced W1 to fresh data", {}),
              (ax[0][1], "excess", f"excess over own {reference_nfe(cfg)}-step SW1", {"linthresh": 0.01}))
    for a, metric, label, symlog in panels:
        by_x(a, nfes, {LABELS[s]: [m[arm_key(s, nfe=n)][metric] for n in nfes] for s in SAMPLERS},
             xlabel="sampling steps (NFE)", ylabel=label)
        if _log_y(a, "symlog" if symlog else "log", **symlog):
            a.set_xscale("log", base=2)
    ax[0][0].axhline(mean(m[FLOOR]["sw1"]), color="grey", lw=0.8, ls=":", label="data vs data")
    ax[0][0].legend(fontsize="x-small")
    ax[0][1].legend().remove()
    fig.suptitle("Sample quality against the number of Euler / DDIM steps (dots: seeds)")
    ctx.plot("sw1_vs_steps", fig)


def _plot_samples(cfg, ctx, evals: dict, floor: dict) -> None:
    nfes = sorted({1, 2, 4, reference_nfe(cfg)})
    fig, ax = figure(len(SAMPLERS), len(nfes), width=2.2, height=2.2, sharex=True, sharey=True)
    data = floor["points"]
    for r, s in enumerate(SAMPLERS):
        for c, n in enumerate(nfes):
            a = ax[r][c]
            a.scatter(*zip(*data), s=1, color="lightgrey")
            a.scatter(*zip(*evals[f"eval-{s}"]["points"][str(n)]), s=1, color="C0")
            a.set_xlim(-3, 3)
            a.set_ylim(-3, 3)
            a.set_xticks([])
            a.set_yticks([])
            if r == 0:
                a.set_title(f"{n} step{'s' if n > 1 else ''}", fontsize="small")
        ax[r][0].set_ylabel(LABELS[s], fontsize="x-small")
    fig.subplots_adjust(top=0.95, hspace=0.08, wspace=0.08)
    fig.suptitle("Samples (seed 0, blue) over fresh data (grey)", fontsize="small", y=0.975)
    ctx.plot("samples", fig)


def _plot_paths(ctx, evals: dict) -> None:
    flows = ("rf-uniform", "rf2", "rf2-shuffled")
    fig, ax = figure(1, len(flows), width=3.6, height=3.6, sharex=True, sharey=True)
    for a, s in zip(ax[0], flows):
        for path in evals[f"eval-{s}"]["paths"]:
            xs, ys = zip(*path)
            a.plot(xs, ys, lw=0.6, color="C0", alpha=0.7)
            a.scatter([xs[0]], [ys[0]], s=4, color="grey")
            a.scatter([xs[-1]], [ys[-1]], s=4, color="C3")
        a.set(title=f"{LABELS[s]}, S = {mean(evals[f'eval-{s}']['straightness']):.2f}", xlabel="x₁")
        a.title.set_fontsize("small")
    ax[0][0].set_ylabel("x₂")
    fig.suptitle("ODE paths from noise (grey) to samples (red), seed 0", fontsize="small")
    ctx.plot("trajectories", fig)


def _plot_losses(ctx, curves_: dict) -> None:
    fig, ax = figure(1, 2)
    for a, key, title in ((ax[0][0], "objectives", "1-RF and VP ε-model training"),
                          (ax[0][1], "reflow", "reflow fine-tuning")):
        c = curves_[key]
        curves(a, c["steps"], {LABELS.get(arm, arm): rows for arm, rows in c["loss"].items()},
               xlabel="training step", ylabel="training loss (mean per model)", title=title)
        _log_y(a, "log")
    ctx.plot("training_loss", fig)


def _log_y(ax, scale: str, **kw) -> bool:
    """A log-type y axis where the data allow one; False when they do not (a diverged run plots
    only NaN, and matplotlib cannot draw log axes around no data)."""
    low, high = ax.dataLim.y0, ax.dataLim.y1
    ok = math.isfinite(low) and math.isfinite(high) and (scale != "log" or low > 0)
    if ok:
        ax.set_yscale(scale, **kw)
    return ok
