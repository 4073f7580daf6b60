"""temporal-shift: accuracy and cost per arm, the counted costs, the paper beside ours, and the figures."""

from __future__ import annotations

from mlbench.core.plotting import curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.temporal_shift import CHANCE_BAND, key, tasks

TASK_TEXT = {"direction": "direction of motion (left vs right)", "shape": "appearance (square vs cross)"}
# Something-Something V1, ResNet-50, 8 frames, 1 clip (Table 2 of the paper)
PAPER_ROWS = (("TSN (2D)", 33.0, 19.7, "recalled"), ("TSM", 33.0, 45.6, "reference README"))


def report(cfg, ctx, m: dict, trained: dict, shift_flops: int) -> None:
    _main_table(cfg, ctx, m)
    _cost_table(cfg, ctx, trained["direction"]["costs"], shift_flops)
    _paper_table(cfg, ctx, m)
    _plot_curves(cfg, ctx, trained)
    _plot_cost(cfg, ctx, m)
    _plot_examples(cfg, ctx, trained["direction"]["examples"])


def _main_table(cfg, ctx, m: dict) -> None:
    rows = []
    for task, names in tasks(cfg).items():
        base = m[key("2d", task)]["macs"][0]
        for arm in names:
            r = m[key(arm, task)]
            rows.append({"task": task, "arm": arm, "params": int(r["params"][0]), "macs": int(r["macs"][0]),
                         "cost_vs_2d": r["macs"][0] / base, **mean_ci_cells("acc", r["acc"], lower=0, upper=1),
                         "acc_min": min(r["acc"]), "acc_reversed": mean(r["acc_reversed"]),
                         "reversal_max_abs": max(r["reversal_max_abs"])})
    seeds = len(m[key("2d")]["acc"])
    control = " Frames shuffled in every video (negative control)." if cfg.negative_control else ""
    ctx.table(rows, title=f"Test accuracy on {cfg.test_size} fixed videos per seed (mean, 95% CI over {seeds} seeds; "
              f"acc_min: the worst seed), acc_reversed: the same videos played backwards (labels kept), "
              f"reversal_max_abs: max |logit(video) − logit(reversed video)| over test videos and seeds; params and "
              f"multiply-adds (macs) per video counted; {cfg.frames} frames of {cfg.size}x{cfg.size}, noise "
              f"{cfg.noise:g}, {cfg.steps} steps x {cfg.batch_size} videos.{control}")


def _cost_table(cfg, ctx, costs: dict, shift_flops: int) -> None:
    rows = [{"arm": arm, "temporal_kernel": 3 if arm == "3d" else 1, "params": c["params"], "macs_counted": c["macs"],
             "macs_closed_form": c["macs_formula"], "flops_counted": 2 * c["macs"],
             "shift_flops_counted": shift_flops if arm.startswith("tsm") else "",
             "macs_vs_tsm": c["macs"] / costs["tsm"]["macs"], "params_vs_tsm": c["params"] / costs["tsm"]["params"]}
            for arm, c in costs.items()]
    ctx.table(rows, name="cost", title="Cost of one model per video: macs_counted = FlopCounterMode's FLOPs / 2 on a "
              "forward pass, macs_closed_form = T·s²·9·k_t·(C + 2B·C²) + 2C (biases, averages and the shift's "
              f"copies not counted), shift_flops_counted: FlopCounterMode on the shift of one {cfg.channels}-channel "
              "feature map")


def _paper_table(cfg, ctx, m: dict) -> None:
    rows = [{"source": f"paper ({note})", "data": "Something-Something V1 (174 classes)", "model": model,
             "frames": 8, "cost": f"{gflops:g} GFLOPs", "top1_pct": acc} for model, gflops, acc, note in PAPER_ROWS]
    for arm in cfg.arms:
        r = m[key(arm)]
        rows.append({"source": "ours", "data": "generated direction task (2 classes)", "model": arm,
                     "frames": cfg.frames, "cost": f"{2 * r['macs'][0] / 1e6:.2f} MFLOPs", "top1_pct": 100 * mean(r["acc"])})
    ctx.table(rows, name="paper", title="The paper's Something-Something V1 figures (ResNet-50, 1 clip) beside ours, "
              "as context: a two-class toy is not comparable in size to 174 classes")


def _plot_curves(cfg, ctx, trained: dict) -> None:
    names = list(tasks(cfg))
    fig, ax = figure(1, len(names))
    for i, task in enumerate(names):
        res = trained[task]
        curves(ax[0][i], res["curve_steps"], res["curve"], xlabel="training step",
               ylabel=f"test accuracy (first {cfg.curve_size} videos)", title=TASK_TEXT[task])
        ax[0][i].axhline(0.5, color="grey", lw=0.8, ls=":")
    fig.suptitle("Learning curves: mean over seeds, thin lines one seed each, dotted line chance", fontsize="small")
    ctx.plot("learning_curves", fig)


def _plot_cost(cfg, ctx, m: dict) -> None:
    fig, ax = figure(1, 1, width=5.5)
    a = ax[0][0]
    for arm in cfg.arms:
        r = m[key(arm)]
        macs = [x / 1e6 for x in r["macs"]]
        dots = a.scatter(macs, r["acc"], label=arm, alpha=0.7)
        a.annotate(arm, (macs[0], mean(r["acc"])), xytext=(8, 0), textcoords="offset points", va="center",
                   fontsize="small", color=dots.get_facecolor()[0])
    a.axhspan(*CHANCE_BAND, color="grey", alpha=0.12, lw=0, label="chance band")
    a.set_xlim(0, 1.15 * max(m[key(arm)]["macs"][0] for arm in cfg.arms) / 1e6)
    a.set(xlabel="multiply-adds per video (millions, counted)", ylabel="test accuracy, direction task",
          title="Accuracy against cost (a dot per seed; 2D and TSM cost the same)")
    a.legend(fontsize="small", loc="center right")
    ctx.plot("accuracy_vs_cost", fig)


def _plot_examples(cfg, ctx, examples: dict) -> None:
    """One test video per class (seed 0, as the models saw them), and the first played backwards:
    each a row of its frames side by side, one pixel of gap between frames."""
    rows = [(f"label {c} ({'right' if c == '1' else 'left'})", clip) for c, clip in examples.items()]
    if rows:
        rows.append((f"{rows[0][0]}, reversed", rows[0][1][::-1]))
    size, gap = cfg.size, 1
    fig, ax = figure(len(rows), 1, width=0.6 * cfg.frames + 1.0, height=0.75 + 0.02 * size)
    for i, (label, clip) in enumerate(rows):
        mosaic = [[float("nan")] * ((size + gap) * cfg.frames - gap) for _ in range(size)]
        for t, frame in enumerate(clip):
            for y in range(size):
                mosaic[y][t * (size + gap):t * (size + gap) + size] = frame[y]
        a = ax[i][0]
        a.imshow(mosaic, cmap="gray", vmin=-1, vmax=2, interpolation="nearest")
        a.set_xticks([t * (size + gap) + size / 2 - 0.5 for t in range(cfg.frames)],
                     [f"t={t}" for t in range(cfg.frames)] if i == len(rows) - 1 else [], fontsize="x-small")
        a.set_yticks([])
        a.set_ylabel(label, fontsize="x-small", rotation=0, ha="right", va="center")
    fig.suptitle("Direction task: test videos of seed 0, frames left to right (a reversed left video is a right one)",
                 fontsize="small")
    ctx.plot("example_videos", fig)
