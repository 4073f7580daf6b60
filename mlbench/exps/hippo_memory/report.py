"""hippo-memory: error tables (vs N, by family, vs stretch, by discretisation) and their figures."""

from __future__ import annotations

from mlbench.core.grid import arm_key
from mlbench.core.plotting import by_x, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.exps.hippo_memory import MEASURES, MEMORIES, METHODS, Config
from mlbench.exps.hippo_memory.operators import positions

NAMES = {"legs": "LegS", "legt": "LegT", "lagt": "LagT", "fout": "FouT", "ema": "EMA bank",
         "random": "random stable A", "lastn": "last N samples"}
FAMILY_NAMES = {"bandlimited": "band-limited noise", "randomwalk": "random walk", "sines": "sum of sines"}


def plot_ns(cfg: Config) -> tuple[int, ...]:
    """The state sizes whose reconstructions are plotted: smallest, middle, largest."""
    ns = sorted(cfg.n_grid)
    return tuple(dict.fromkeys((ns[0], ns[len(ns) // 2], ns[-1])))


def report(cfg: Config, ctx, m: dict, signals: list, examples: dict, families: tuple[str, ...]) -> None:
    """The four tables and three figures; `signals` are the first seed's first signal per family,
    `examples[N]` the reconstructions `memorise` kept at the plotted N."""
    _tables(cfg, ctx, m, families)
    _plot_reconstruction(cfg, ctx, signals, examples, families)
    _plot_error_vs_n(cfg, ctx, m)
    _plot_error_vs_stretch(cfg, ctx, m)


def _tables(cfg: Config, ctx, m: dict, families: tuple[str, ...]) -> None:
    """Per arm: the mean relative MSE over seeds and its 95% CI (`relmse`, `relmse_ci_low/high`)."""
    ns = sorted(cfg.n_grid)
    ctx.table([{"memory": mem, "N": n, **mean_ci_cells("relmse", m[arm_key(mem, N=n)]["relmse"], lower=0)}
               for mem in MEMORIES for n in ns],
              title=f"Relative MSE of the reconstructed history vs state size N (L={cfg.length}, {cfg.method}; "
              f"mean and 95% CI over {len(ctx.seeds)} seeds, each the mean over {len(families)} families x "
              f"{cfg.signals_per_family} signals)")
    by_family = [{"memory": mem, "N": n} for mem in MEMORIES for n in ns]
    for row in by_family:
        for fam in families:
            metric = f"relmse_{fam}"
            row.update(mean_ci_cells(metric, m[arm_key(row["memory"], N=row["N"])][metric], lower=0))
    ctx.table(by_family, name="families",
              title="Relative MSE by signal family (mean and 95% CI over seeds)")
    ctx.table([{"memory": mem, "stretch": s, "steps": s * cfg.length,
                **mean_ci_cells("relmse", m[arm_key(mem, stretch=s)]["relmse"], lower=0)}
               for mem in ("legs", "legt") for s in sorted(cfg.stretches)], name="timescale",
              title=f"Timescale: the signals sampled at stretch x L0 steps (N={cfg.timescale_n}; LegT window = "
              f"L0 = {cfg.length} steps)")
    ctx.table([{"measure": k, "method": mth, **mean_ci_cells("relmse", m[arm_key(f"{k}-{mth}", N=cfg.disc_n)]["relmse"],
                                                             lower=0)}
               for k in MEASURES for mth in METHODS], name="discretisation",
              title=f"Relative MSE by discretisation (N={cfg.disc_n}, L={cfg.length}; mean and 95% CI over seeds)")


def _plot_reconstruction(cfg: Config, ctx, signals: list, examples: dict, families: tuple[str, ...]) -> None:
    shown = plot_ns(cfg)
    x = positions(cfg.length).tolist()
    fig, ax = figure(2, 2, width=6.0, height=3.2)
    fig.set_layout_engine("constrained")
    panels = [(f"{FAMILY_NAMES.get(fam, fam)}: LegS", signals[i], {f"LegS N={n}": examples[n]["legs_families"][i] for n in shown})
              for i, fam in enumerate(families[:3])]
    n_mid = shown[len(shown) // 2]
    panels.append((f"{FAMILY_NAMES.get(families[0], families[0])}: every memory at N={n_mid}", signals[0],
                   {NAMES[k]: examples[n_mid][k] for k in MEMORIES}))
    for a, (title, sig, lines) in zip([a for row in ax for a in row], panels):
        a.plot(x, sig, "k", lw=1.4, label="signal")
        for label, ys in lines.items():
            a.plot(x, ys, lw=0.8, label=label)
        a.set(title=f"{title} (seed {ctx.seeds[0]})", xlabel="position in the history (0 = start, 1 = now)",
              ylabel="value")
        a.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    for a in [a for row in ax for a in row][len(panels):]:
        a.set_visible(False)  # fewer than three families
    ctx.plot("reconstruction", fig)


def _plot_error_vs_n(cfg: Config, ctx, m: dict) -> None:
    ns = sorted(cfg.n_grid)
    fig, ax = figure(1, 1, width=6.0, height=4.0)
    for style, group in (("o-", MEASURES), ("s--", tuple(k for k in MEMORIES if k not in MEASURES))):
        by_x(ax[0][0], ns, {NAMES[k]: [m[arm_key(k, N=n)]["relmse"] for n in ns] for k in group}, style=style,
             xlabel="state size N", ylabel="relative MSE of the reconstructed history",
             title=f"Error vs state size (L={cfg.length}, {cfg.method}; dots: seeds)")
    ax[0][0].axhline(cfg.max_error, color="grey", lw=0.8, ls=":", label=f"claimed bound {cfg.max_error:g}")
    ax[0][0].set_yscale("log")
    ax[0][0].set_xscale("log", base=2)
    ax[0][0].set_xticks(ns, [str(n) for n in ns], minor=False)
    ax[0][0].legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    ctx.plot("error_vs_n", fig)


def _plot_error_vs_stretch(cfg: Config, ctx, m: dict) -> None:
    ss = sorted(cfg.stretches)
    fig, ax = figure(1, 1)
    labels = {"legs": "LegS", "legt": f"LegT (window {cfg.length} steps)"}
    by_x(ax[0][0], ss, {labels[k]: [m[arm_key(k, stretch=s)]["relmse"] for s in ss] for k in labels},
         xlabel=f"stretch s (history = s x {cfg.length} steps)", ylabel="relative MSE of the reconstructed history",
         title=f"Timescale robustness, N={cfg.timescale_n} (dots: seeds)")
    ax[0][0].set(xscale="log", yscale="log")
    ax[0][0].set_xticks(ss, [str(s) for s in ss])
    ax[0][0].set_xticks([], minor=True)
    ctx.plot("error_vs_stretch", fig)
