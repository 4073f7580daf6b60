"""diou-box-regression: every arm × seed of a gradient mode regressed as one stacked tensor, in
units of anchor centres; the per-step error sums of the units combine into the measurements."""

from __future__ import annotations

import math

import torch

from mlbench.core.grid import Grid, arm_key
from mlbench.exps.diou_box_regression import (FIGURE_STEPS, LOSSES, MODES, PAPER_CURVE, QUIRKS, RATIO,
                                              compares_to_figure, measured_steps, mode_arms)
from mlbench.exps.diou_box_regression.boxes import iou
from mlbench.exps.diou_box_regression.report import report
from mlbench.exps.diou_box_regression.simulation import (CASES_PER_CENTRE, Block, anchor_centres, case_error,
                                                         descend, exact_ascent, hand_ascent, learning_rates,
                                                         regression_cases)

SUMS = ("all", "disjoint", "overlap")  # error summed over all cases, the initially disjoint ones, the others


def blocks_of(grid: Grid, arms: list, device) -> list[Block]:
    """One block of contiguous rows per loss (arms are grouped by loss, members arm-major)."""
    rows: dict[str, list[int]] = {}
    for m, key, _ in grid.members():
        rows.setdefault(next(loss for k, loss, _ in arms if k == key), []).append(m)
    fixed_of = {key: fixes for key, _, fixes in arms}
    return [Block(loss, ms[0], ms[-1] + 1,
                  {q: torch.tensor([q in fixed_of[grid.arm_of(m)] for m in ms], device=device)[:, None] for q in QUIRKS})
            for loss, ms in rows.items()]


def cases(cfg, ctx, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchors (S, 4, N) of centres lo..hi of every seed, and the targets (4, N) (the same for all)."""
    radius = 0.0 if cfg.negative_control else cfg.centre_radius
    per_seed = [regression_cases(anchor_centres(cfg.centres, radius, g)[lo:hi]) for g in ctx.generators("centres")]
    return torch.stack([a for a, _ in per_seed]), per_seed[0][1]


def simulate(cfg, ctx, mode: str, lo: int, hi: int) -> dict:
    """Regress centres lo..hi of every seed with every arm of `mode`; JSON-able error sums."""
    arms = mode_arms(cfg, mode)
    grid, dev = Grid(tuple(k for k, _, _ in arms), tuple(ctx.seeds)), ctx.device
    anchors, targets = cases(cfg, ctx, lo, hi)
    boxes = grid.repeat(anchors).transpose(0, 1).contiguous().to(dev)   # (4, M, N)
    targets = targets[:, None].to(dev)                                  # (4, 1, N)
    blocks, lrs = blocks_of(grid, arms, dev), learning_rates(cfg.stage_steps, cfg.stage_lrs)
    ascent = exact_ascent if mode == "autograd" else hand_ascent
    disjoint = iou(boxes, targets) == 0                                 # (M, N)
    error0 = case_error(boxes, targets)
    sums = torch.zeros(len(SUMS), len(grid), cfg.steps + 1, dtype=torch.float64, device=dev)
    nonpositive = torch.zeros_like(disjoint)
    for step in ctx.steps(cfg.steps, every=cfg.log_every, desc=f"{mode} gradients, centres {lo}-{hi} ({len(grid)} models)"):
        error = case_error(boxes, targets)                              # (M, N)
        sums[:, :, step.index] = torch.stack((error.sum(1), torch.where(disjoint, error, 0).sum(1),
                                              torch.where(disjoint, 0, error).sum(1)))
        if step.evaluate:
            ctx.watch(grid, step.index, error=sums[0, :, step.index])   # NaN/inf: recorded, never a crash
        if step.last:
            break
        boxes = descend(boxes, targets, ascent(boxes, targets, blocks), lrs[step.index])
        nonpositive |= (boxes[2] <= 0) | (boxes[3] <= 0)
    unchanged = disjoint & ((error - error0).abs() < cfg.unchanged_tol)
    if lo == 0:
        save_state(cfg, ctx, grid, mode, arms, boxes, targets)
    centre_final = error.view(len(grid), hi - lo, CASES_PER_CENTRE).sum(2)  # (M, centres): Fig. 3(a)'s surface
    return {"sums": sums.cpu().tolist(), "cases": error.shape[1], "disjoint": disjoint.sum(1).tolist(),
            "unchanged": unchanged.sum(1).tolist(), "nonpositive": nonpositive.sum(1).tolist(),
            "centre_final": centre_final.cpu().tolist(),
            "centres": [a[:2, ::CASES_PER_CENTRE].T.tolist() for a in anchors]}


def save_state(cfg, ctx, grid: Grid, mode: str, arms: list, boxes, targets) -> None:
    """The measured state: start and end boxes (x, y, w, h) of each seed's first cases."""
    k = min(cfg.checkpoint_cases, boxes.shape[2])
    anchors, _ = cases(cfg, ctx, 0, -(-k // CASES_PER_CENTRE))        # (S, 4, ≥ k)
    end = boxes[:, :, :k].permute(1, 2, 0).cpu()                        # (M, k, 4)
    begin = grid.repeat(anchors[:, :, :k]).transpose(1, 2).contiguous()
    info = {key: (loss, fixes) for key, loss, fixes in arms}
    ctx.save_models(grid, {"anchors": begin, "boxes": end, "targets": targets[:, 0, :k].T.expand(len(grid), k, 4).cpu()},
                    metadata=lambda m: {"arm": grid.arm_of(m), "seed_index": str(grid.seed_of(m)), "mode": mode,
                                        "loss": info[grid.arm_of(m)][0],
                                        "fixed_quirks": "+".join(info[grid.arm_of(m)][1]) or "none",
                                        "cases": f"the first {k} cases, in test_1715k.m's order (centre, target "
                                                 "ratio, anchor scale, anchor ratio); rows x, y, w, h"})


def chunks(cfg) -> list[tuple[int, int]]:
    size = cfg.chunk_centres or cfg.centres
    return [(lo, min(lo + size, cfg.centres)) for lo in range(0, cfg.centres, size)]


def combine(parts: list[dict]) -> dict:
    """Units of one mode -> totals over all centres (sums add; per-centre lists concatenate)."""
    add = lambda key: [sum(v) for v in zip(*(p[key] for p in parts))]  # noqa: E731
    sums = [[[sum(v) for v in zip(*rows)] for rows in zip(*(p["sums"][s] for p in parts))] for s in range(len(SUMS))]
    return {"sums": sums, "cases": sum(p["cases"] for p in parts), "disjoint": add("disjoint"),
            "unchanged": add("unchanged"), "nonpositive": add("nonpositive"),
            "centre_final": [sum((p["centre_final"][m] for p in parts), []) for m in range(len(parts[0]["disjoint"]))],
            "centres": [sum((p["centres"][s] for p in parts), []) for s in range(len(parts[0]["centres"]))]}


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.nan


def log_ratio(a: float, b: float) -> float:
    """|log(a / b)|; inf where a is 0 (or less)."""
    return abs(math.log(a / b)) if a > 0 else math.inf


def measure(cfg, ctx, mode: str, res: dict) -> dict:
    """Per-seed measurements of every arm of `mode` (and metrics lines of its mean-error curves)."""
    arms = mode_arms(cfg, mode)
    grid, n, T = Grid(tuple(k for k, _, _ in arms), tuple(ctx.seeds)), res["cases"], cfg.steps
    curve = [[v / n for v in row] for row in res["sums"][0]]           # (M, T + 1): mean error per case
    nd = res["disjoint"]
    per_model = {f"error_t{t}": [c[t] for c in curve] for t in measured_steps(cfg)}
    per_model.update(
        final_error=[c[T] for c in curve], error_auc=[sum(c[1:]) for c in curve],
        final_error_disjoint=[ratio(s[T], d) for s, d in zip(res["sums"][1], nd)],
        final_error_overlap=[ratio(s[T], n - d) for s, d in zip(res["sums"][2], nd)],
        unchanged_disjoint=[ratio(u, d) for u, d in zip(res["unchanged"], nd)],
        disjoint_share=[d / n for d in nd], nonpositive_size=[float(v) for v in res["nonpositive"]])
    if compares_to_figure(cfg):  # max over t of |log(ours / Fig. 3(b)'s)|
        loss_at = [next(loss for k, loss, _ in arms if k == key) for _, key, _ in grid.members()]
        per_model["figure_log_ratio"] = [max(log_ratio(c[t], PAPER_CURVE[t][LOSSES.index(loss)]) for t in FIGURE_STEPS)
                                         for c, loss in zip(curve, loss_at)]
    loss_of = {key: (loss, "+".join(fixes)) for key, loss, fixes in arms}
    for m, key, seed in grid.members():
        loss, fixed = loss_of[key]
        for t in sorted({*range(0, T + 1, cfg.log_every), T}):
            ctx.log(arm=loss, mode=mode, fixed=fixed if mode == "paper" else "", seed=seed, step=t, error=curve[m][t],
                    error_disjoint=ratio(res["sums"][1][m][t], nd[m]), error_overlap=ratio(res["sums"][2][m][t], n - nd[m]))
    return grid.measurements(**per_model)


def run(cfg, ctx) -> dict:
    parts = [(mode, lo, hi) for mode in MODES for lo, hi in chunks(cfg)]
    done = ctx.map_units({f"{mode}-centres{lo}-{hi}": (lambda mode=mode, lo=lo, hi=hi: simulate(cfg, ctx, mode, lo, hi))
                          for mode, lo, hi in parts})
    results = {mode: combine([done[f"{m}-centres{lo}-{hi}"] for m, lo, hi in parts if m == mode]) for mode in MODES}
    measurements: dict = {}
    for mode in MODES:
        measurements.update(measure(cfg, ctx, mode, results[mode]))
        giou, diou = measurements[arm_key("giou", mode=mode)], measurements[arm_key("diou", mode=mode)]
        measurements[arm_key(RATIO, mode=mode)] = {
            f"ratio_t{t}": [ratio(a, b) for a, b in zip(giou[f"error_t{t}"], diou[f"error_t{t}"])]
            for t in measured_steps(cfg)}
    report(cfg, ctx, measurements, results)
    return measurements
