"""swiglu-ffn: the Table 1 comparison, the claim ratios, the corpus, and their figures."""

from __future__ import annotations

from mlbench.core.plotting import curves, figure
from mlbench.core.tables import mean_ci_cells
from mlbench.core.verdict import mean
from mlbench.exps.swiglu_ffn import GATE_SHARE, GELU_RATIO, TABLE1
from mlbench.exps.swiglu_ffn.ffn import GATED, width


def paper_rel_gain_pct(arm: str, column: int = 0) -> float:
    """Table 1's relative gain over ReLU, in % of ReLU's log-perplexity (column 0: 65k steps)."""
    relu = TABLE1["relu"][column]
    return 100 * (relu - TABLE1[arm][column]) / relu


def report(cfg, ctx, m: dict, trained: dict, data: dict) -> None:
    rows = []
    for arm in cfg.arms:
        r = m[arm]
        rows.append({"arm": arm, "gated": arm in GATED, "d_ff": width(arm, cfg.d_ff), "params": int(r["params"][0]),
                     **mean_ci_cells("loss", r["loss"]), "gain": mean(r["gain"]),
                     **mean_ci_cells("rel_gain_pct", r["rel_gain_pct"]),
                     "paper_logppl_65k": TABLE1[arm][0], "paper_rel_gain_pct_65k": paper_rel_gain_pct(arm),
                     "paper_logppl_524k": TABLE1[arm][1]})
    ctx.table(rows, title=f"Held-out next-character loss (nats, mean and 95% CI over {len(ctx.seeds)} seeds) of "
              f"each FFN variant at equal parameters, gain = ReLU loss − arm loss (nats, mean of the "
              f"per-seed differences), rel_gain_pct = gain / ReLU loss in %; beside them the paper's Table 1 (T5-base log-perplexity "
              f"at 65,536 and 524,288 steps). {cfg.model} model, {cfg.steps} steps, {cfg.corpus} corpus"
              + (", characters shuffled (negative control)" if cfg.negative_control else ""))
    _ratio_table(cfg, ctx, m)
    ctx.table([{"corpus": cfg.corpus, "source": data["source"], "characters": len(data["train"]) + len(data["heldout"]),
                "heldout": len(data["heldout"]), "alphabet": len(data["alphabet"]), "shuffled": cfg.negative_control,
                "unigram_entropy": data["unigram_entropy"], "sha256": data["sha256"]}], name="corpus",
              title="Corpus: the unigram entropy (nats/char) is the best loss once the characters are shuffled")
    _plot_curves(cfg, ctx, trained, data)
    _plot_gains(cfg, ctx, m)


def _ratio_table(cfg, ctx, m: dict) -> None:
    """The claim ratios per seed against the paper's (65k-step column)."""
    rows = [{"quantity": "relative gain of SwiGLU over ReLU (%)", **mean_ci_cells("ours", m["swiglu"]["rel_gain_pct"]),
             "paper": paper_rel_gain_pct("swiglu"), "paper_524k": paper_rel_gain_pct("swiglu", 1), "rule": "≥ 1"}]
    p = {a: TABLE1["relu"][0] - TABLE1[a][0] for a in TABLE1}
    if "bilinear-vs-swiglu" in m:
        rows.append({"quantity": "gain(Bilinear) / gain(SwiGLU)", **mean_ci_cells("ours", m["bilinear-vs-swiglu"]["share"]),
                     "paper": p["bilinear"] / p["swiglu"], "rule": f"≥ {GATE_SHARE:g}"})
    if "swiglu-vs-gelu" in m:
        rows.append({"quantity": "gain(SwiGLU) / gain(GELU)", **mean_ci_cells("ours", m["swiglu-vs-gelu"]["ratio"]),
                     "paper": p["swiglu"] / p["gelu"], "rule": f"≥ {GELU_RATIO:g}"})
    if "ranking" in m:
        rows.append({"quantity": "Spearman rho with Table 1", **mean_ci_cells("ours", m["ranking"]["spearman"]),
                     "paper": 1.0, "rule": "≥ 0.6"})
    ctx.table(rows, name="ratios", title="The claims' ratios (mean and 95% CI over seeds) beside the paper's "
              "(Table 1, 65,536 steps; the rule is the claim's threshold; claims 2 and 3 are judged on the "
              "paired differences, not on these ratios)")


def _plot_curves(cfg, ctx, trained: dict, data: dict) -> None:
    from matplotlib.ticker import ScalarFormatter

    fig, ax = figure(1, 1, width=6.0, height=4.0)
    a = ax[0][0]
    curves(a, trained["curve_steps"], trained["curve"], xlabel="training step",
           ylabel="held-out loss (nats per character)",
           title=f"{cfg.model} LM, {cfg.corpus} corpus, first {cfg.curve_positions} held-out positions (thin: seeds)")
    a.axhline(data["unigram_entropy"], color="grey", lw=0.8, ls=":", label="unigram entropy")
    a.set_yscale("log")
    a.yaxis.set_major_formatter(ScalarFormatter())
    a.yaxis.set_minor_formatter(ScalarFormatter())
    a.legend(fontsize="small")
    ctx.plot("heldout_loss", fig)


def _plot_gains(cfg, ctx, m: dict) -> None:
    """Relative gain over ReLU per arm: ours (bar = mean, dots = seeds) beside Table 1's."""
    others = [arm for arm in cfg.arms if arm != "relu"]
    fig, ax = figure(1, 1, width=max(5.0, 1.1 * len(others) + 2), height=4.0)
    a, xs = ax[0][0], list(range(len(others)))
    ours = [mean(m[arm]["rel_gain_pct"]) for arm in others]
    a.bar([x - 0.2 for x in xs], ours, width=0.4, label=f"ours ({cfg.model}, {cfg.steps} steps)")
    for x, arm in zip(xs, others):
        vals = m[arm]["rel_gain_pct"]
        a.scatter([x - 0.2] * len(vals), vals, s=12, color="black", zorder=3)
    a.bar([x + 0.2 for x in xs], [paper_rel_gain_pct(arm) for arm in others], width=0.4,
          label="paper, Table 1 (T5-base, 65,536 steps)")
    a.axhline(0.0, color="grey", lw=0.8)
    a.set_xticks(xs, others)
    a.set(xlabel="feed-forward variant", ylabel="loss below ReLU (% of ReLU's)",
          title="Gain over ReLU at equal parameters (dots: seeds)")
    a.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)  # below: never on the dots
    ctx.plot("gain_over_relu", fig)
