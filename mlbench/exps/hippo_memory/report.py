"""hippo-memory: error tables (vs N, by family, vs stretch, by discretisation) and their figures."""

from __future__ import annotations

from mlbench.core.grid import arm_key
from mlbench.core.plotting import figure
from mlbench.core.verdict import mean
from mlbench.exps.hippo_memory import MEASURES, MEMORIES, METHODS, Config
from mlbench.exps.hippo_memory.operators import positions


def plot_ns(cfg: Config) -> tuple[int, ...]:
    """The state sizes whose reconstructions are plotted: smallest, middle, largest."""
    ns = sorted(cfg.n_grid)
    return tuple(dict.fromkeys((ns[0], ns[len(ns) // 2], ns[-1])))


def _tables(cfg: Config, ctx, m: dict, families: tuple[str, ...]) -> None:
    ns, memories = sorted(cfg.n_grid), MEMORIES
    ctx.table([{"N": n, **{mem: mean(m[arm_key(mem, N=n)]["relmse"]) for mem in memories}} for n in ns],
              title=f"Relative MSE of the reconstructed history vs state size N (L={cfg.length}, {cfg.method}; "
              f"mean over {len(ctx.seeds)} seeds x {len(families)} families x {cfg.signals_per_family} signals)")
    ctx.table([{"memory": mem, "N": n, **{fam: mean(m[arm_key(mem, N=n)][f"relmse_{fam}"]) for fam in families}}
               for mem in memories for n in ns], name="families", title="Relative MSE by signal family")
    ctx.table([{"stretch": s, "steps": s * cfg.length, **{k: mean(m[arm_key(k, x=s)]["relmse"]) for k in ("legs", "legt")}}
               for s in sorted(cfg.stretches)], name="timescale",
              title=f"Timescale: the signals sampled at s x L0 steps (N={cfg.timescale_n}; LegT window = L0 steps)")
    ctx.table([{"measure": k, **{mth: mean(m[f"{k}-{mth}"]["relmse"]) for mth in METHODS}} for k in MEASURES],
              name="discretisation", title=f"Relative MSE by discretisation (N={cfg.disc_n}, L={cfg.length})")


def report(cfg: Config, ctx, m: dict, signals: list, examples: dict, families: tuple[str, ...]) -> None:
    """The four tables and three figures; `signals` are the first seed's first signal per family,
    `examples[N]` the reconstructions `memorise` kept at the plotted N."""
    _tables(cfg, ctx, m, families)
    _plot_reconstruction(cfg, ctx, signals, examples, families)
    _plot_error_vs_n(cfg, ctx, m)
    _plot_error_vs_stretch(cfg, ctx, m)


def _plot_reconstruction(cfg: Config, ctx, signals: list, examples: dict, families: tuple[str, ...]) -> None:
    shown = plot_ns(cfg)
    x = positions(cfg.length).tolist()
    fig, ax = figure(2, 2, width=5.5, height=3.2)
    panels = [(fam, signals[i], {f"LegS N={n}": examples[n]["legs_families"][i] for n in shown})
              for i, fam in enumerate(families[:3])]
    n_mid = shown[len(shown) // 2]
    panels.append((f"{families[0]}: every memory at N={n_mid}", signals[0], {k: examples[n_mid][k] for k in MEMORIES}))
    for a, (title, sig, lines) in zip([a for row in ax for a in row], panels):
        a.plot(x, sig, "k", lw=1.4, label="signal")
        for label, ys in lines.items():
            a.plot(x, ys, lw=0.8, label=label)
        a.set(title=f"{title} (seed {ctx.seeds[0]})", xlabel="s / t (0 = start, 1 = now)")
        a.legend(fontsize="x-small", ncol=2)
    fig.tight_layout()
    ctx.plot("reconstruction", fig)


def _plot_error_vs_n(cfg: Config, ctx, m: dict) -> None:
    ns = sorted(cfg.n_grid)
    fig, ax = figure(1, 1)
    for mem in MEMORIES:
        ax[0][0].plot(ns, [mean(m[arm_key(mem, N=n)]["relmse"]) for n in ns], "o-" if mem in MEASURES else "s--", label=mem)
    ax[0][0].axhline(cfg.max_error, color="grey", lw=0.8, ls=":")
    ax[0][0].set(yscale="log", xlabel="state size N", ylabel="relative MSE of the history",
                 title=f"error vs N (L={cfg.length}, {cfg.method})")
    ax[0][0].set_xscale("log", base=2)
    ax[0][0].legend(fontsize="small")
    ctx.plot("error_vs_n", fig)


def _plot_error_vs_stretch(cfg: Config, ctx, m: dict) -> None:
    fig, ax = figure(1, 1)
    ss = sorted(cfg.stretches)
    for mem in ("legs", "legt"):
        ax[0][0].plot(ss, [mean(m[arm_key(mem, x=s)]["relmse"]) for s in ss], "o-", label=mem)
    ax[0][0].set(xscale="log", yscale="log", xlabel=f"stretch s (history = s x {cfg.length} steps)", ylabel="relative MSE",
                 title=f"timescale robustness, N={cfg.timescale_n}")
    ax[0][0].legend()
    ctx.plot("error_vs_stretch", fig)
