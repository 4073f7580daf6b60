"""flash-attention-tiling, full profile: the timed speed table and figure (these hold timings:
compared by verdict only, never byte for byte)."""

from __future__ import annotations

from mlbench.core.grid import arm_key
from mlbench.core.plotting import by_x, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.flash_attention_tiling import SPEED_FORMS

README_SAVINGS = {2048: 10.0, 4096: 20.0}
MIB = 2 ** 20
LABELS = {"standard": "standard attention (S, P materialised)", "flash": "torch's flash kernel"}


def speed_report(cfg, ctx, m: dict) -> None:
    ns = sorted(set(cfg.speed_lengths))
    rows = []
    for n in ns:
        std, flash = (m[arm_key(f, n=n)] for f in SPEED_FORMS)
        rows.append({"n": n, **mean_ci_cells("standard_ms", std["ms"], lower=0),
                     **mean_ci_cells("flash_ms", flash["ms"], lower=0),
                     **mean_ci_cells("speedup", m[arm_key("speedup", n=n)]["speedup"], lower=0),
                     "standard_mib": mean(std["peak_bytes"]) / MIB, "flash_mib": mean(flash["peak_bytes"]) / MIB,
                     "memory_savings": mean(std["peak_bytes"]) / mean(flash["peak_bytes"]),
                     "readme_savings": README_SAVINGS.get(n, ""), "flash_rule": max(flash["rule_ratio"])})
    ctx.table(rows, name="speed", title=f"Forward + backward, {cfg.speed_dtype}, B={cfg.speed_batch}, "
              f"H={cfg.speed_heads}, d={cfg.head_dim}: ms per call (median of {cfg.speed_calls} alternating calls per "
              "repeat, mean and 95% CI over repeats), speedup = standard / flash, peak extra MiB from the allocator, "
              "memory_savings = standard / flash beside the README's; flash_rule: worst err / (2·err_standard + floor) "
              "over O, dQ, dK, dV against fp32 (≤ 1 passes); NaN: out of memory")
    fig, ax = figure(1, 2)
    by_x(ax[0][0], ns, {LABELS[f]: [m[arm_key(f, n=n)]["ms"] for n in ns] for f in SPEED_FORMS},
         xlabel="sequence length n", ylabel="forward + backward, ms", title="time per call")
    by_x(ax[0][1], ns, {LABELS[f]: [[b / MIB for b in m[arm_key(f, n=n)]["peak_bytes"]] for n in ns] for f in SPEED_FORMS},
         xlabel="sequence length n", ylabel="peak extra memory, MiB", title="memory per call")
    for a in ax[0]:
        a.set_xscale("log", base=2)
        a.set_yscale("log")
    ctx.plot("speed", fig)
