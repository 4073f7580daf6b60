"""flops-vs-latency figures: latency ratio beside FLOP ratio per guideline, and latency against
memory access cost."""

from __future__ import annotations

from mlbench.core.grid import arm_key
from mlbench.core.plotting import figure
from mlbench.exps.flops_vs_latency import group_variants
from mlbench.exps.flops_vs_latency.rules import NULL_BAND

PANELS = (("g1", "G1: channel widths c1:c2"), ("g2", "G2: group convolution"), ("g3", "G3: fragmentation"),
          ("g4", "G4: ReLU and shortcut"), ("dw", "depthwise-separable vs dense 3×3"))


def _panel_arms(cfg, group: str) -> list[tuple[str, str]]:
    """(arm key, tick label) of a panel; the G4 panel also holds the low-resolution pair."""
    groups = group_variants(cfg)
    hw, names = groups[group]
    out = [(arm_key(n, hw=hw), n) for n in names]
    if group == "g4" and "g4-low" in groups:
        low, low_names = groups["g4-low"]
        out += [(arm_key(n, hw=low), f"{n}@{low}") for n in low_names]
    return out


def _tick(label, name: str) -> str:
    base, _, hw = name.partition("@")
    return label(base) + (f", {hw}×{hw}" if hw else "")


def latency_plot(cfg, ctx, m: dict, label) -> None:
    fig, ax = figure(2, 3, width=5.2, height=4.4)
    for (group, title), a in zip(PANELS, [ax[0][0], ax[0][1], ax[0][2], ax[1][0], ax[1][1]]):
        arms = _panel_arms(cfg, group)
        for i, (key, _) in enumerate(arms):
            r, q1, q3 = m[key]["ratio"], m[key]["ratio_q1"], m[key]["ratio_q3"]
            xs = [i + 0.08 * (s - (len(r) - 1) / 2) for s in range(len(r))]
            a.errorbar(xs, r, yerr=[[x - lo for x, lo in zip(r, q1)], [hi - x for x, hi in zip(r, q3)]], fmt="o",
                       ms=4, color="C0", lw=0.8, label="latency ratio (pass median, IQR)" if i == 0 else None)
            a.plot([i - 0.3, i + 0.3], [m[key]["flop_ratio"][0]] * 2, color="C3", lw=2,
                   label="FLOP ratio (counted)" if i == 0 else None)
        a.axhline(1.0, color="black", lw=0.6)
        a.set_xticks(range(len(arms)), [_tick(label, n) for _, n in arms], rotation=35, ha="right", fontsize=7)
        a.set(ylabel="time (or FLOPs) / baseline's", title=title)
        a.legend(fontsize=6, loc="best")
    _null_panel(cfg, ax[1][2], m)
    if cfg.negative_control:
        fig.suptitle("negative control: every variant is a copy of its group's baseline", y=1.01)
    fig.tight_layout()
    ctx.plot("latency", fig)


def _null_panel(cfg, a, m: dict) -> None:
    null = arm_key("null", hw=cfg.resolution)
    r, q1, q3 = m[null]["ratio"], m[null]["ratio_q1"], m[null]["ratio_q3"]
    passes = list(range(1, len(r) + 1))
    a.errorbar(passes, r, yerr=[[x - lo for x, lo in zip(r, q1)], [hi - x for x, hi in zip(r, q3)]], fmt="o",
               color="C2", label="null ratio (median, IQR)")
    a.axhspan(*NULL_BAND, color="C2", alpha=0.15, label=f"gate: every pass in [{NULL_BAND[0]:g}, {NULL_BAND[1]:g}]")
    a.axhline(1.0, color="black", lw=0.6)
    a.set_xticks(passes)
    a.set(xlabel="pass", ylabel="time of a second 1:1 network / the first's", title="noise gate: identical networks")
    a.legend(fontsize=6, loc="best")


def mac_plot(cfg, ctx, m: dict, label) -> None:
    fig, ax = figure(1, 3, width=4.8, height=4.0)
    for a, (group, title) in zip(ax[0], PANELS[:3]):
        hw, names = group_variants(cfg)[group]
        for i, name in enumerate(n for n in names if n != "null"):
            key = arm_key(name, hw=hw)
            x, r = m[key]["mac_ratio"][0], m[key]["ratio"]
            a.scatter([x] * len(r), r, s=14, color=f"C{i}", alpha=0.7, label=label(name))
        a.axhline(1.0, color="black", lw=0.6)
        a.set(xlabel="memory access cost / baseline's (counted)", ylabel="latency ratio (a dot per pass)", title=title)
        a.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    ctx.plot("mac", fig)
