"""flops-vs-latency: the counted-cost and machine tables (byte-identical on rerun), the timed
latency, guideline, MAC and noise tables, and their figures."""

from __future__ import annotations

import statistics

import torch

from mlbench.core.grid import arm_key
from mlbench.core.tables import mean_ci_cells
from mlbench.exps.flops_vs_latency import G1_ALIGNED, G2_GROUPS, group_variants
from mlbench.exps.flops_vs_latency.nets import timed_designs
from mlbench.exps.flops_vs_latency.plots import latency_plot, mac_plot
from mlbench.exps.flops_vs_latency.rules import NULL_BAND

GUIDELINE = {"g1": "G1 unequal widths", "g2": "G2 group conv", "g3": "G3 fragmentation", "g4": "G4 element-wise",
             "g4-low": "G4 element-wise", "dw": "depthwise-separable"}
# the paper's own figures as time ratios (variant / baseline), recalled, not checked against the paper
PAPER = {"g1-36:432": ("≈ 1.98 (1480 vs 748 batches/s)", "≈ 1.32 (76.2 vs 57.6 images/s)"),
         "g2-groups8": ("> 2 (text of §2)", "up to ≈ 1.3 (text of §2)"),
         "g3-parallel4": ("≈ 3 (4 fragments vs 1, text of §2)", "small (text of §2)"),
         "g4-neither": ("≈ 0.83 (≈ 20 % faster, text of §2)", "≈ 0.83 (≈ 20 % faster)")}


def label(name: str) -> str:
    """A variant's name for people."""
    if name.startswith("g1-"):
        c1, c2 = (int(c) for c in name[3:].split(":"))
        aligned = " aligned" if (c1, c2) in G1_ALIGNED else ""
        return f"1:{round(c2 / c1)}{aligned} ({c1}, {c2})"
    if name.startswith("g2-groups"):
        g = int(name[9:])
        return f"g = {g} (c = {dict(G2_GROUPS)[g]})"
    fixed = {"null": "null: a second 1:1", "g3-1": "1 fragment", "g4-both": "ReLU + shortcut",
             "g4-no-shortcut": "no shortcut", "g4-no-relu": "no ReLU", "g4-neither": "neither",
             "dw-dense": "dense 3×3", "dw-separable": "depthwise 3×3 + 1×1"}
    if name in fixed:
        return fixed[name]
    if name.startswith("g3-series"):
        n = int(name[9:])
        return f"{n} in series (width {round(128 / n ** 0.5)})"
    return f"{name[11:]} parallel"  # g3-parallelN


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman's ρ: Pearson's r of the ranks (ties get their average rank)."""
    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=v.__getitem__)
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for t in range(i, j + 1):
                r[order[t]] = (i + j) / 2
            i = j + 1
        return r
    a, b = ranks(xs), ranks(ys)
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    den = (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5
    return num / den if den else float("nan")


def report(cfg, ctx, m: dict, cost: dict, passes: dict) -> None:
    _costs(cfg, ctx, m, cost)
    _machine(cfg, ctx, passes)
    _latency(cfg, ctx, m, passes)
    _guidelines(cfg, ctx, m)
    _mac(cfg, ctx, m, cost)
    _noise(cfg, ctx, m, passes)
    latency_plot(cfg, ctx, m, label)
    mac_plot(cfg, ctx, m, label)


def _costs(cfg, ctx, m: dict, cost: dict) -> None:
    rows = []
    for group, (hw, variants) in timed_designs(cfg).items():
        for name, _ in variants:
            key, c = arm_key(name, hw=hw), cost[arm_key(name, hw=hw)]
            rows.append({"group": group, "variant": label(name), "hw": hw, "flops": c["flops"],
                         "flops_counted": c["flops_counted"], "flops_match": c["flops"] == c["flops_counted"],
                         "flop_ratio": m[key]["flop_ratio"][0], "memory_access_cost": c["memory_access_cost"],
                         "mac_ratio": m[key]["mac_ratio"][0], "params": c["params"], "convs": c["convs"],
                         "elementwise": c["elementwise"]})
    nc = " Negative control: every variant is a copy of its group's baseline." if cfg.negative_control else ""
    ctx.table(rows, title=f"What each network costs on paper (batch {cfg.batch}): FLOPs = 2B by the closed form "
              "B = b·h·w·c_in·c_out·k²/g and by torch's FlopCounterMode (they must match), memory access cost "
              "MAC = b·h·w·(c_in + c_out) + c_in·c_out·k²/g summed over convs, conv calls, numbers written by "
              f"ReLUs and residual adds; ratios to the group's baseline (first row).{nc}")


def _machine(cfg, ctx, passes: dict) -> None:
    first = next(iter(passes.values()))["groups"]
    device = torch.cuda.get_device_name(ctx.device) if ctx.device.type == "cuda" else "cpu"
    ctx.table([{"device": device, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "torch": torch.__version__, "mkldnn": torch.backends.mkldnn.is_available(),
                "threads": torch.get_num_threads(), "clock": next(iter(first.values()))["clock"],
                "dtype": cfg.timing_dtype, "batch": cfg.batch}],
              name="machine", title="The machine timed: torch's CPU capability, oneDNN (mkldnn), threads and clock")


def _latency(cfg, ctx, m: dict, passes: dict) -> None:
    rows = []
    for group, (hw, names) in group_variants(cfg).items():
        for name in names:
            key = arm_key(name, hw=hw)
            r = m[key]["ratio"]
            rows.append({"group": group, "variant": label(name), "hw": hw, "flop_ratio": m[key]["flop_ratio"][0],
                         **mean_ci_cells("ratio", r, lower=0),
                         "ratio_per_pass": " / ".join(f"{v:.3f}" for v in r),
                         "iqr_per_pass": " / ".join(f"{a:.3f}-{b:.3f}" for a, b in zip(m[key]["ratio_q1"], m[key]["ratio_q3"])),
                         "latency_over_flops": statistics.fmean(m[key]["latency_over_flops"]),
                         "ms_per_call": statistics.median(p["arms"][key]["ms"] for p in passes.values()),
                         "inner": statistics.median(p["groups"][group]["inner"] for p in passes.values())})
    clock = next(iter(next(iter(passes.values()))["groups"].values()))["clock"]
    ctx.table(rows, name="latency", title=f"Latency ratio to the group's baseline at equal FLOPs, by {clock}: per "
              f"pass the median (and IQR) of {cfg.rounds} per-round ratios, each round timing the group in a fresh "
              "shuffled order; mean and 95% CI over passes; latency_over_flops = latency ratio / FLOP ratio; "
              "ms_per_call and inner (calls per sample): medians over passes, for orientation only")


def _guidelines(cfg, ctx, m: dict) -> None:
    rows = []
    for group, (hw, names) in group_variants(cfg).items():
        for name in names[1:]:
            if name == "null":
                continue
            key = arm_key(name, hw=hw)
            gpu, arm = PAPER.get(name, ("", "")) if hw == cfg.resolution else ("", "")
            rows.append({"guideline": GUIDELINE[group], "variant": label(name), "vs": label(names[0]), "hw": hw,
                         "flop_ratio": m[key]["flop_ratio"][0], "ours": statistics.fmean(m[key]["ratio"]),
                         "ours_min_pass": min(m[key]["ratio"]), "ours_max_pass": max(m[key]["ratio"]),
                         "paper_gpu": gpu, "paper_arm": arm})
    ctx.table(rows, name="guidelines", title="Each guideline's contrast: our latency ratio (mean of the per-pass "
              "medians, and their range) beside the paper's GPU (GTX 1080Ti) and ARM (Snapdragon 810) figures "
              "as time ratios (recalled from the paper's tables and text, not checked against it)")


def _mac(cfg, ctx, m: dict, cost: dict) -> None:
    rows = []
    for group in ("g1", "g2", "g3"):
        hw, names = group_variants(cfg)[group]
        names = [n for n in names if n != "null"]
        keys = [arm_key(n, hw=hw) for n in names]
        mac = [cost[k]["memory_access_cost"] for k in keys]
        convs = [cost[k]["convs"] for k in keys]
        for s in range(len(ctx.seeds)):
            lat = [m[k]["ratio"][s] for k in keys]
            rows.append({"group": group, "pass": s + 1, "variants": len(keys), "spearman_latency_vs_mac": spearman(mac, lat),
                         "spearman_latency_vs_convs": spearman(convs, lat) if len(set(convs)) > 1 else float("nan")})
    ctx.table(rows, name="mac", title="Does memory access cost (or the number of conv calls) rank latency within a "
              "guideline's equal-FLOP networks? Spearman ρ per pass (1: the same order; nan: no variation)")


def _noise(cfg, ctx, m: dict, passes: dict) -> None:
    null = arm_key("null", hw=cfg.resolution)
    lo, hi = NULL_BAND
    rows = [{"pass": s + 1, "null_ratio": r, "null_q1": q1, "null_q3": q3, "within_band": lo <= r <= hi}
            for s, (r, q1, q3) in enumerate(zip(m[null]["ratio"], m[null]["ratio_q1"], m[null]["ratio_q3"]))]
    ctx.table(rows, name="noise", title=f"The noise gate: two identical 1:1 G1 networks (own weights and inputs) "
              f"timed side by side; every pass must give a null ratio in [{lo:g}, {hi:g}], else every verdict is "
              "inconclusive (timing too noisy)")
