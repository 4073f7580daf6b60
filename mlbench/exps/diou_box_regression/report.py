"""diou-box-regression: the error table (beside the paper's curves), the quirk attribution, the
paper's detector AP as context, and the figures: error curves, disjoint vs overlapping cases,
quirks, and the final error over the anchor centres (the paper's Fig. 3(a))."""

from __future__ import annotations

import math

from mlbench.core.grid import Grid, arm_key
from mlbench.core.plotting import curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.diou_box_regression import LOSSES, MODES, PAPER_CURVE, compares_to_figure, mode_arms

PAPER_AP = {"iou": 46.57, "giou": 47.73, "diou": 48.10, "ciou": 49.21}  # YOLOv3, VOC 2007 test, AP = mean AP@[.5:.95]
NAMES = {"iou": "IoU", "giou": "GIoU", "diou": "DIoU", "ciou": "CIoU"}


def report(cfg, ctx, m: dict, results: dict) -> None:
    _error_table(cfg, ctx, m)
    _quirk_table(cfg, ctx, m)
    ctx.table([{"loss": NAMES[loss], "paper_ap": PAPER_AP[loss],
                "final_error_autograd": mean(m[arm_key(loss, mode="autograd")]["final_error"]),
                "final_error_paper_port": mean(m[arm_key(loss, mode="paper")]["final_error"])} for loss in LOSSES],
              name="detector", title="Context only, not tested: the paper's YOLOv3 on PASCAL VOC 2007 test (AP = mean "
              "of AP at IoU 0.5:0.95, %; the authors' DIoU-darknet README, paper Table 1) beside our simulation's "
              "mean final error per case")
    per_case = {mode: _mean_curves(cfg, ctx, mode, results[mode]) for mode in MODES}
    _plot_curves(cfg, ctx, per_case)
    _plot_split(cfg, ctx, results["autograd"])
    _plot_quirks(cfg, ctx, m)
    _plot_centres(cfg, ctx, results)


def _error_table(cfg, ctx, m: dict) -> None:
    rows, T = [], cfg.steps
    shown = sorted({*cfg.report_steps, cfg.early_step} - {T})
    for mode in MODES:
        for loss in LOSSES:
            r = m[arm_key(loss, mode=mode)]
            rows.append({"mode": mode, "loss": NAMES[loss], **{f"error_t{t}": mean(r[f"error_t{t}"]) for t in shown},
                         **mean_ci_cells("final_error", r["final_error"], lower=0), "error_auc": mean(r["error_auc"]),
                         "final_error_disjoint": mean(r["final_error_disjoint"]),
                         "final_error_overlap": mean(r["final_error_overlap"]),
                         "unchanged_disjoint": mean(r["unchanged_disjoint"]),
                         "nonpositive_size": int(sum(r["nonpositive_size"]))})
    for k, loss in enumerate(LOSSES) if compares_to_figure(cfg) else ():
        paper = {f"error_t{t}": PAPER_CURVE[t][k] for t in shown if t in PAPER_CURVE}
        rows.append({"mode": "paper Fig. 3(b)", "loss": NAMES[loss], **paper,
                     **({"final_error": PAPER_CURVE[T][k]} if T in PAPER_CURVE else {})})
    share = mean(m[arm_key("iou", mode="autograd")]["disjoint_share"])
    ctx.table(rows, title=f"Mean regression error per case |Δx| + |Δy| + |Δw| + |Δh| after t iterations "
              f"({cfg.centres} centres × 343 cases per seed, {share:.0%} of them initially disjoint; final_error at "
              f"t = {T}: mean and 95% CI over seeds); error_auc = its sum over iterations 1-{T} (the MATLAB's "
              f"IoU_Loss); final error of the initially disjoint and overlapping cases; unchanged_disjoint = share "
              f"of initially disjoint cases whose error moved < {cfg.unchanged_tol:g}; nonpositive_size = cases "
              f"whose w or h reached ≤ 0 (all seeds). mode 'paper' = the authors' hand-written gradients; "
              f"'paper Fig. 3(b)' = the paper's curves read off its plot (1,715,000 cases; DIoU and CIoU at 200 "
              f"lie on the axis, < 0.005)")


def _quirk_table(cfg, ctx, m: dict) -> None:
    rows, early = [], cfg.early_step
    for key, loss, fixes in mode_arms(cfg, "paper"):
        r, exact = m[key], m[arm_key(loss, mode="autograd")]
        rel = {f"vs_exact_t{t}": mean([a / b for a, b in zip(r[f"error_t{t}"], exact[f"error_t{t}"])])
               for t in (early, cfg.steps)}
        rows.append({"loss": NAMES[loss], "fixed": "+".join(fixes) or "none",
                     f"error_t{early}": mean(r[f"error_t{early}"]), "final_error": mean(r["final_error"]), **rel,
                     "max_abs_diff_vs_exact": max(abs(a - b) for a, b in zip(r["final_error"], exact["final_error"])),
                     "nonpositive_size": sum(r["nonpositive_size"])})
    ctx.table(rows, name="quirks", title="Which of the MATLAB's quirks make the paper's curves: paper-mode arms with "
              "the listed quirks fixed (i: ½ in ∂/∂w, ∂/∂h; ii: enclosing-box derivatives; iii: clamped intersection "
              "in GIoU's union; iv: 1/(w²+h²) in CIoU's ∂v; v: sign of ρ²∂c²/∂x in DIoU). vs_exact = mean error / "
              "the autograd arm's (mean over seeds of the per-seed ratio); max_abs_diff_vs_exact = largest |final "
              "error − autograd's| over seeds")


def _mean_curves(cfg, ctx, mode: str, res: dict) -> dict:
    """{loss: seeds × (T+1) mean error per case} of the arms the claims read."""
    grid, n = _grid(cfg, ctx, mode), res["cases"]
    return {loss: [[v / n for v in res["sums"][0][grid.index(arm_key(loss, mode=mode), k)]] for k in grid.seeds]
            for loss in LOSSES}


def _grid(cfg, ctx, mode: str) -> Grid:
    """The stacked members of `mode`'s arms, as run.py built them (to read its per-member results)."""
    return Grid(tuple(k for k, _, _ in mode_arms(cfg, mode)), tuple(ctx.seeds))


def _plot_curves(cfg, ctx, per_case: dict) -> None:
    fig, ax = figure(2, 2)
    x = list(range(cfg.steps + 1))
    titles = {"autograd": "exact gradients (autograd)", "paper": "the authors' hand-written gradients"}
    for c, mode in enumerate(MODES):
        for r, log in enumerate((False, True)):
            a = ax[r][c]
            curves(a, x, {NAMES[k]: v for k, v in per_case[mode].items()}, xlabel="iteration",
                   ylabel="mean error per case" + (" (log scale)" if log else ""), title=titles[mode] if r == 0 else "")
            if log:
                a.set_yscale("log")
    for k, loss in enumerate(LOSSES) if compares_to_figure(cfg) else ():
        ts = [t for t in PAPER_CURVE if PAPER_CURVE[t][k] > 0]
        ax[0][1].scatter(ts, [PAPER_CURVE[t][k] for t in ts], marker="x", s=30, color=f"C{k}", zorder=3)
    if compares_to_figure(cfg):
        ax[0][1].scatter([], [], marker="x", color="grey", label="paper Fig. 3(b), read off")
    ax[0][1].legend(fontsize="small", loc="upper right", bbox_to_anchor=(1.0, 0.84))  # clear of the curves
    fig.suptitle(f"Box regression, {cfg.centres} centres × 343 cases per seed (thin lines: seeds)")
    ctx.plot("error_curves", fig)


def _plot_split(cfg, ctx, res: dict) -> None:
    """Exact gradients: mean error of the initially disjoint and the initially overlapping cases."""
    grid, n, x = _grid(cfg, ctx, "autograd"), res["cases"], list(range(cfg.steps + 1))
    fig, ax = figure(1, 2)
    for c, (s, name) in enumerate(((1, "initially disjoint"), (2, "initially overlapping"))):
        by = {}
        for loss in LOSSES:
            rows = []
            for k in grid.seeds:
                m = grid.index(arm_key(loss, mode="autograd"), k)
                count = res["disjoint"][m] if s == 1 else n - res["disjoint"][m]
                rows.append([v / count if count else math.nan for v in res["sums"][s][m]])
            by[NAMES[loss]] = rows
        curves(ax[0][c], x, by, xlabel="iteration", ylabel="mean error per case (log scale)",
               title=f"{name} cases, exact gradients")
        ax[0][c].set_yscale("log")
    ctx.plot("disjoint_vs_overlapping", fig)


def _plot_quirks(cfg, ctx, m: dict) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    arms = mode_arms(cfg, "paper")
    height = 0.35 * len(arms) + 1.2
    fig, ax = figure(1, 2, width=5.5, height=height)
    fig.subplots_adjust(top=1 - 0.45 / height)  # a fixed 0.45 in above the panels, however many rows
    labels = [f"{NAMES[loss]}, fixed: {'+'.join(f) or 'none'}" for _, loss, f in arms]
    for c, (metric, name) in enumerate(((f"error_t{cfg.early_step}", f"iteration {cfg.early_step}"),
                                        ("final_error", f"iteration {cfg.steps}"))):
        a = ax[0][c]
        ys = list(range(len(arms)))[::-1]
        ours = [mean(m[key][metric]) for key, _, _ in arms]
        exact = [mean(m[arm_key(loss, mode="autograd")][metric]) for _, loss, _ in arms]
        a.hlines(ys, [min(p, q) for p, q in zip(ours, exact)], [max(p, q) for p, q in zip(ours, exact)], color="grey",
                 lw=0.8)
        a.scatter(ours, ys, color=[f"C{LOSSES.index(l)}" for _, l, _ in arms], s=30, zorder=3,
                  label="hand-written gradients, the listed quirks fixed")
        a.scatter(exact, ys, marker="|", s=200, color="black", zorder=3, label="exact gradients (autograd)")
        a.set_xscale("log")
        a.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))  # 0.01, 0.03, 0.1, ...: labels never collide
        a.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        a.xaxis.set_minor_formatter(NullFormatter())
        a.set(xlabel=f"mean error per case at {name} (log scale)", title=f"paper-mode arms, {name}")
        a.set_yticks(ys, labels if c == 0 else [""] * len(ys), fontsize="small")
        a.grid(axis="y", lw=0.3, alpha=0.5)
    handles, names = ax[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=2, fontsize="small", bbox_to_anchor=(0.5, 1 - 0.12 / height))
    ctx.plot("quirks", fig)


def _plot_centres(cfg, ctx, results: dict) -> None:
    """Final error summed over a centre's 343 cases, at the centre (Fig. 3(a)'s surfaces)."""
    from matplotlib.colors import LogNorm

    fig, ax = figure(2, 4, width=3.2, height=3.0)
    S = len(ctx.seeds)
    values = [v for mode in MODES for row in results[mode]["centre_final"] for v in row if v > 0]
    norm = LogNorm(min(values), max(values)) if values else None
    for r, mode in enumerate(MODES):
        grid, res = _grid(cfg, ctx, mode), results[mode]
        for c, loss in enumerate(LOSSES):
            xy = [p for k in range(S) for p in res["centres"][k]]
            z = [max(v, norm.vmin) if norm else v for k in grid.seeds
                 for v in res["centre_final"][grid.index(arm_key(loss, mode=mode), k)]]
            sc = ax[r][c].scatter([p[0] for p in xy], [p[1] for p in xy], c=z, s=14, cmap="viridis", norm=norm)
            ax[r][c].set(title=f"{NAMES[loss]}, {mode}", aspect="equal",
                         xlabel="anchor centre x" if r == len(MODES) - 1 else "", ylabel="anchor centre y" if c == 0 else "")
    fig.colorbar(sc, ax=ax.ravel().tolist(), label="final error summed over the centre's 343 cases")
    fig.suptitle("Final error by anchor centre (target at (10, 10)); rows: exact (autograd) and the authors' "
                 "hand-written gradients")
    ctx.plot("final_error_by_centre", fig)
