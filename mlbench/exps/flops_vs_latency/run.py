"""flops-vs-latency: count every network's FLOPs (one unit), then time every group once per pass
(one unit per pass: build the networks, warm up, shuffled rounds), then judge and report."""

from __future__ import annotations

import statistics
from functools import partial

import torch

from mlbench.core.grid import Grid, arm_key
from mlbench.exps.flops_vs_latency.nets import closed_form, counted_flops, forward, timed_designs, weights
from mlbench.exps.flops_vs_latency.report import report
from mlbench.exps.flops_vs_latency.timing import clock_for, summarise, time_group, warm_and_calibrate

DTYPES = {"float32": torch.float32, "float16": torch.float16}


def counts(cfg, ctx) -> dict:
    """Closed-form costs and FlopCounterMode's FLOPs of every variant, {arm: {...}}; saved as
    `checkpoints/counts.safetensors` (int64, one tensor per quantity and group)."""
    out, tensors = {}, {}
    for group, (hw, variants) in timed_designs(cfg).items():
        rows = []
        for name, design in variants:
            row = {**closed_form(design, cfg.batch, hw), "flops_counted": counted_flops(design, cfg.batch, hw)}
            out[arm_key(name, hw=hw)] = row
            rows.append(row)
            ctx.log(arm=name, hw=hw, **row)
        for q in rows[0]:
            tensors[f"{group}.{q}"] = torch.tensor([r[q] for r in rows], dtype=torch.int64)
    arms_meta = {g: ",".join(n for n, _ in v) for g, (_, v) in timed_designs(cfg).items()}
    ctx.save_checkpoint("counts", tensors, {"what": "counted cost per variant (order in metadata), batch "
                                            f"{cfg.batch}", **arms_meta})
    return out


def build(design, hw: int, cfg, gen: torch.Generator, device, dtype):
    """A network's own weights and input, drawn on the CPU from `gen` (same numbers on every device)."""
    make = lambda shape, std: (torch.randn(shape, generator=gen) * std).to(device, dtype)  # noqa: E731
    ws = weights(design, make)
    x = torch.randn(cfg.batch, design.c_in, hw, hw, generator=gen).to(device, dtype)
    if dtype == torch.float16:  # tensor-core kernels want NHWC
        ws = [[w.to(memory_format=torch.channels_last) for w in block] for block in ws]
        x = x.to(memory_format=torch.channels_last)
    return ws, x


def fingerprint(ws, y: torch.Tensor) -> dict[str, float]:
    """Checksums of the measured state: the weights and the network's output on its input."""
    flat = torch.cat([w.double().flatten() for block in ws for w in block])
    out = y.double()
    return {"weight_sum": float(flat.sum()), "weight_sq_sum": float((flat ** 2).sum()),
            "output_sum": float(out.sum()), "output_std": float(out.std())}


@torch.inference_mode()
def timed_pass(cfg, ctx, k: int) -> dict:
    """One pass: every group built, warmed up and timed in shuffled rounds. {arm: per-pass figures}."""
    clock, dtype = clock_for(ctx.device), DTYPES[cfg.timing_dtype]
    arms, groups, sums = {}, {}, {}
    for group, (hw, variants) in timed_designs(cfg).items():
        nets = [(name, design, *build(design, hw, cfg, ctx.generator(f"nets/{group}", k), ctx.device, dtype))
                for name, design in variants]
        fns = [partial(forward, design, ws, x) for _, design, ws, x in nets]
        inner = warm_and_calibrate(fns, cfg.warmup, cfg.min_sample_ms / 1e3, clock)
        timed = time_group(fns, rounds=cfg.rounds, inner=inner, clock=clock, order=ctx.generator(f"order/{group}", k))
        threads = torch.get_num_threads() if ctx.device.type == "cpu" else 1  # the noise gate reads it
        groups[group] = {"inner": inner, "clock": clock.name, "threads": threads}
        for i, (name, design, ws, x) in enumerate(nets):
            key = arm_key(name, hw=hw)
            arms[key] = {**summarise(timed["ratios"][i]), "rounds": timed["ratios"][i],
                         "ms": 1e3 * statistics.median(timed["seconds"][i])}
            sums[key] = fingerprint(ws, fns[i]())
            ctx.log(arm=name, hw=hw, seed=k, **sums[key])
        del nets, fns
    ctx.save_checkpoint(f"nets-seed{k}", {f"{a}.{q}": torch.tensor([v], dtype=torch.float64)
                                          for a, f in sums.items() for q, v in f.items()},
                        {"what": "checksums of the timed networks' weights and outputs (float64)", "seed_index": str(k)})
    return {"arms": arms, "groups": groups}


def measurements(cfg, ctx, cost: dict, passes: dict[int, dict]) -> dict:
    """{arm: {metric: [per pass]}}: timed ratios and counted costs, each relative to the group's baseline."""
    m = {}
    for group, (hw, variants) in timed_designs(cfg).items():
        names = tuple(n for n, _ in variants)
        grid = Grid(names, tuple(ctx.seeds), {"hw": hw})
        base = cost[grid.key(names[0])]
        per = {q: [] for q in ("ratio", "ratio_q1", "ratio_q3", "flops", "flop_ratio", "mac_ratio",
                               "latency_over_flops", "cpu_threads")}
        for _, name, seed in grid.members():
            key, timed = grid.key(name), passes[seed]["arms"][grid.key(name)]
            flop_ratio = cost[key]["flops"] / base["flops"]
            for q in ("ratio", "ratio_q1", "ratio_q3"):
                per[q].append(timed[q])
            per["flops"].append(cost[key]["flops"])
            per["flop_ratio"].append(flop_ratio)
            per["mac_ratio"].append(cost[key]["memory_access_cost"] / base["memory_access_cost"])
            per["latency_over_flops"].append(timed["ratio"] / flop_ratio)
            per["cpu_threads"].append(passes[seed]["groups"][group]["threads"])
        m.update(grid.measurements(**per))
    return m


def run(cfg, ctx) -> dict:
    if ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # the paper's GPU setting; warm-up settles its algorithm cache
    cost = ctx.unit("counts", ctx.shown("counting FLOPs", lambda: counts(cfg, ctx)))
    units = ctx.map_units({f"pass-seed{k}": ctx.shown(f"timing pass {k + 1}", lambda k=k: timed_pass(cfg, ctx, k))
                           for k in ctx.seeds})
    passes = {k: units[f"pass-seed{k}"] for k in ctx.seeds}
    m = measurements(cfg, ctx, cost, passes)
    report(cfg, ctx, m, cost, passes)
    return m
