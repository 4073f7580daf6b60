"""flops-vs-latency: counted FLOPs against torch's FlopCounterMode and the closed forms, the networks
against independent computations, the every-pass rule and its noise gate, the timer on work of
known ratio, reruns, resume, and the quick-profile verdicts."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import InterruptAt
from scipy.stats import spearmanr
from torch.utils.flop_counter import FlopCounterMode

import mlbench
from mlbench.core.errors import UsageError
from mlbench.core.verdict import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from mlbench.core.verify import compare
from mlbench.exps import flops_vs_latency as exp
from mlbench.exps.flops_vs_latency import nets, timing
from mlbench.exps.flops_vs_latency.report import spearman
from mlbench.exps.flops_vs_latency.rules import Both, EveryPass
from mlbench.exps.flops_vs_latency.run import build

NAME = "flops-vs-latency"
CFG = exp.Config()


def _b(name, hw=56):
    """Multiply-adds B of a variant at batch 1."""
    return nets.closed_form(nets.catalogue(CFG)[name], 1, hw)["flops"] // 2


@pytest.mark.parametrize("batch,hw", [(1, 56), (2, 9)])
def test_flop_counter_matches_the_closed_form_for_every_network(batch, hw):
    for name, design in nets.catalogue(CFG).items():
        assert nets.counted_flops(design, batch, hw) == nets.closed_form(design, batch, hw)["flops"], name


def test_flop_counter_on_real_modules_counts_2b():
    """Independently of our networks: torch's nn.Conv2d (plain, grouped, depthwise) under FlopCounterMode."""
    for c_in, c_out, k, g in [(128, 128, 1, 1), (360, 360, 1, 8), (128, 128, 3, 128), (36, 432, 1, 1)]:
        conv = torch.nn.Conv2d(c_in, c_out, k, padding=k // 2, groups=g, bias=False)
        with FlopCounterMode(display=False) as counter:
            conv(torch.randn(1, c_in, 20, 20))
        assert counter.get_total_flops() == 2 * 20 * 20 * c_in * c_out * k * k // g
        assert counter.get_total_flops() == 2 * nets.Conv(c_in, c_out, k, g).multiply_adds(400)


def test_equal_flops_at_the_paper_widths():
    base = _b("g1-128:128")
    ratios = [round(_b(exp.g1_name(*w)) / base, 3) for w in exp.G1_PAPER]
    assert ratios == [1.0, 0.989, 0.99, 0.949]  # the paper's widths are equal FLOPs only roughly
    assert all(_b(exp.g1_name(*w)) == base for w in exp.G1_ALIGNED)
    assert all(abs(_b(f"g2-groups{g}") / _b("g2-groups1") - 1) < 0.012 for g, _ in exp.G2_GROUPS)
    assert all(_b(n) == _b("g3-1") for n in ("g3-series4", "g3-series16", "g3-parallel2", "g3-parallel4"))
    assert Fraction(_b("dw-separable"), _b("dw-dense")) == Fraction(9 + 128, 9 * 128)
    assert len({_b(f"g4-{n}") for n, _, _ in exp.G4_VARIANTS}) == 1


def test_memory_access_cost_lower_bound_is_met_at_equal_widths():
    """1×1 conv: MAC ≥ 2√(hw·B) + B/hw, equality iff c_in = c_out; at equal B, MAC grows with c2/c1."""
    hw = 56 * 56
    macs = []
    for c1, c2 in exp.G1_PAPER:
        conv = nets.Conv(c1, c2)
        B, mac = conv.multiply_adds(hw), conv.memory_access_cost(hw)
        bound = 2 * math.sqrt(hw * B) + B / hw
        assert mac >= bound - 1e-6 and (math.isclose(mac, bound) == (c1 == c2))
        macs.append(mac / B)
    assert macs == sorted(macs) and macs[0] < macs[-1]


def _randn(*shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_parallel_branches_are_one_dense_conv_with_stacked_weights():
    x, ws = _randn(1, 128, 7, 7), [_randn(32, 128, 1, 1, seed=i + 1) for i in range(4)]
    design = nets.Design(128, (nets.Parallel(4, nets.Conv(128, 32)),))
    torch.testing.assert_close(nets.forward(design, [ws], x), F.conv2d(x, torch.cat(ws)), rtol=0, atol=1e-12)


def test_depthwise_conv_is_a_per_channel_loop():
    x, w = _randn(1, 6, 5, 5), _randn(6, 1, 3, 3, seed=1)
    design = nets.Design(6, (nets.Chain((nets.Conv(6, 6, 3, 6),)),))
    xp = np.pad(x[0].numpy(), ((0, 0), (1, 1), (1, 1)))
    ref = np.array([[[np.sum(xp[c, i:i + 3, j:j + 3] * w[c, 0].numpy()) for j in range(5)] for i in range(5)]
                    for c in range(6)])
    np.testing.assert_allclose(nets.forward(design, [[w]], x)[0].numpy(), ref, rtol=0, atol=1e-12)


def test_bottleneck_variants_compute_what_they_say():
    x, ws = _randn(1, 16, 6, 6), [_randn(4, 16, 1, 1, seed=1), _randn(4, 4, 3, 3, seed=2), _randn(16, 4, 1, 1, seed=3)]
    f = lambda relu, sc, inplace=False: nets.forward(nets.Design(16, (nets.Bottleneck(16, 4, relu, sc, inplace),)),  # noqa: E731
                                                     [ws], x.clone())
    conv = lambda h, i: F.conv2d(h, ws[i], padding=1 if i == 1 else 0)  # noqa: E731
    torch.testing.assert_close(f(False, False), conv(conv(conv(x, 0), 1), 2), rtol=0, atol=1e-12)
    full = F.relu(conv(F.relu(conv(F.relu(conv(x, 0)), 1)), 2) + x)
    torch.testing.assert_close(f(True, True), full, rtol=0, atol=1e-12)
    torch.testing.assert_close(f(True, True, inplace=True), full, rtol=0, atol=1e-12)


def test_every_network_keeps_activations_of_order_one():
    """No overflow and no slow subnormal numbers: the output's std stays within [0.05, 50]."""
    gen = torch.Generator().manual_seed(0)
    for name, design in nets.catalogue(CFG).items():
        ws, x = build(design, 28, CFG, gen, torch.device("cpu"), torch.float32)
        std = float(nets.forward(design, ws, x).std())
        assert 0.05 < std < 50, (name, std)


def test_negative_control_times_copies_of_each_baseline():
    control = nets.timed_designs(exp.Config(negative_control=True))
    normal = nets.timed_designs(CFG)
    assert control.keys() == normal.keys()
    for group, (hw, variants) in control.items():
        assert [n for n, _ in variants] == [n for n, _ in normal[group][1]]
        assert all(d == variants[0][1] for _, d in variants), group
    assert exp.arms(exp.Config(negative_control=True)) == exp.arms(CFG)


def _m(arm_ratios: dict, null=(1.0, 1.0, 1.0)) -> dict:
    """Measurements: arm -> per-pass (median, q1, q3)."""
    m = {"null": {"ratio": list(null), "ratio_q1": list(null), "ratio_q3": list(null)}}
    for arm, rows in arm_ratios.items():
        m[arm] = {"ratio": [r[0] for r in rows], "ratio_q1": [r[1] for r in rows], "ratio_q3": [r[2] for r in rows]}
    return m


def test_every_pass_rule_and_its_noise_gate():
    slower = EveryPass("v", "null", **exp.SLOWER)
    ok = [(1.3, 1.2, 1.4)] * 3
    assert slower(_m({"v": ok})).verdict == REPRODUCED
    assert slower(_m({"v": [(1.3, 1.2, 1.4), (1.3, 1.04, 1.4), (1.3, 1.2, 1.4)]})).verdict == INCONCLUSIVE  # IQR
    assert slower(_m({"v": [(1.3, 1.2, 1.4), (1.02, 1.0, 1.1), (1.3, 1.2, 1.4)]})).verdict == INCONCLUSIVE
    assert slower(_m({"v": [(1.02, 0.9, 1.1), (1.03, 1.0, 1.1), (0.95, 0.9, 1.0)]})).verdict == NOT_REPRODUCED
    noisy = slower(_m({"v": ok}, null=(1.0, 1.041, 0.99)))
    assert noisy.verdict == INCONCLUSIVE and noisy.reason.startswith("timing too noisy: null ratio 1.041 in pass 2")
    two = _m({"v": ok})
    two["null"]["cpu_threads"] = [2, 2, 2]
    assert slower(two).verdict == INCONCLUSIVE and "2 CPU threads" in slower(two).reason
    faster = EveryPass("v", "null", **exp.FASTER)
    assert faster(_m({"v": [(0.85, 0.8, 0.9)] * 3})).verdict == REPRODUCED
    assert faster(_m({"v": [(0.85, 0.8, 0.96)] * 3})).verdict == INCONCLUSIVE  # upper IQR end above 1/1.05
    assert faster(_m({"v": [(0.98, 0.9, 1.0)] * 3})).verdict == NOT_REPRODUCED
    down = [(1.0, 1.0, 1.0)] * 3
    assert Both(slower, EveryPass("w", "null", **exp.SLOWER))(_m({"v": ok, "w": ok})).verdict == REPRODUCED
    assert Both(slower, EveryPass("w", "null", **exp.SLOWER))(_m({"v": ok, "w": down})).verdict == INCONCLUSIVE
    assert Both(slower, EveryPass("w", "null", **exp.SLOWER))(_m({"v": down, "w": down})).verdict == NOT_REPRODUCED


def test_spearman_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(20):
        x, y = rng.integers(0, 5, 8).tolist(), rng.normal(size=8).tolist()  # ties in x
        assert math.isclose(spearman(x, y), spearmanr(x, y).statistic, abs_tol=1e-12)


def test_round_robin_timer_measures_known_work_ratios():
    """Two calls of the same work time as one; twice the work times about twice as long."""
    torch.set_num_threads(1)
    a, b = torch.randn(192, 192), torch.randn(192, 192)
    once = lambda: a @ b  # noqa: E731
    twice = lambda: (a @ b, a @ b)  # noqa: E731
    clock = timing.cpu_clock()
    inner = timing.warm_and_calibrate([once, once, twice], 3, 2e-3, clock)
    out = timing.time_group([once, once, twice], rounds=9, inner=inner, clock=clock,
                            order=torch.Generator().manual_seed(0))
    assert out["ratios"][0] == [1.0] * 9
    assert 0.85 < timing.summarise(out["ratios"][1])["ratio"] < 1.15
    assert 1.6 < timing.summarise(out["ratios"][2])["ratio"] < 2.4


def test_every_round_times_the_group_in_a_fresh_shuffled_order():
    calls = []
    fns = [lambda i=i: calls.append(i) for i in range(5)]
    clock = timing.Clock("calls", lambda fn, inner: [fn() for _ in range(inner)] and 1.0)
    timing.time_group(fns, rounds=6, inner=1, clock=clock, order=torch.Generator().manual_seed(0))
    assert calls[0::2] == calls[1::2]  # every sample follows an untimed call of its own network
    rounds = [tuple(calls[10 * j:10 * j + 10:2]) for j in range(6)]
    assert all(sorted(r) == list(range(5)) for r in rounds) and len(set(rounds)) > 3


def test_float16_is_refused_on_a_cpu_and_the_full_profile_resolves():
    from mlbench.core.spec import resolve

    with pytest.raises(UsageError, match="float16"):
        resolve(NAME, profile="full", device="cpu", sets=["timing_dtype=float16"])
    spec = resolve(NAME, profile="full", device="cpu")
    assert spec.cfg.batch == 8 and spec.seeds == 5


BYTE_IDENTICAL = ("metrics.jsonl", "table.csv", "table-machine.csv")


def _identical_files(run_dir):
    names = [*BYTE_IDENTICAL, *sorted(f"checkpoints/{p.name}" for p in (run_dir / "checkpoints").iterdir())]
    return {n: (run_dir / n).read_bytes() for n in names}


def test_rerun_is_byte_identical_except_timings_and_resumes(tmp_path):
    first = mlbench.run(NAME, profile="smoke", results=tmp_path / "a", threads=1)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C as the 3rd unit (timing pass 2) starts
        mlbench.run(NAME, profile="smoke", results=tmp_path / "b", threads=1, progress=InterruptAt(3))
    resumed = mlbench.run(NAME, profile="smoke", results=tmp_path / "b", threads=1)
    manifest = json.loads((resumed.run_dir / "manifest.json").read_text())
    assert manifest["resumed_units"] == ["counts", "pass-seed0"]
    assert _identical_files(first.run_dir) == _identical_files(resumed.run_dir)
    assert len(list((first.run_dir / "checkpoints").iterdir())) == 3  # counts + one checksum file per pass
    check = compare(first.run_dir, resumed.run_dir, 1e-6, timed_files=exp.TIMED_FILES, timed_metrics=exp.TIMED_METRICS)
    assert check.outcome == "bitwise", check.differences
    timed = json.loads((first.run_dir / "units" / "pass-seed0.json").read_text())["result"]
    assert all(r["ratio"] > 0 and len(r["rounds"]) == 3 for r in timed["arms"].values())


def _judged(summary):
    return {c["id"]: c for c in summary["claims"]}


@pytest.mark.slow
def test_quick_profile_verdicts(run_once):
    """Either the null arm was quiet and the robust effects show (g = 8 ≈ 1.4×, 4-parallel ≈ 1.2×,
    separable ≈ 2.7× its FLOP ratio), or every claim is inconclusive for noise, saying so."""
    summary = run_once(NAME).summary
    claims, m = _judged(summary), summary["measurements"]
    null = m["null@hw56"]["ratio"]
    if all(0.97 <= r <= 1.03 for r in null):
        assert claims["equal-flops"]["verdict"] == REPRODUCED
        assert claims["separable"]["verdict"] == REPRODUCED
        assert claims["g1"]["verdict"] != NOT_REPRODUCED or max(m["g1-36:432@hw56"]["ratio"]) <= 1.03
        assert min(m["g1-32:512@hw56"]["ratio"]) > 1.0 and max(m["g4-neither@hw56"]["ratio"]) < 1.0
    else:
        assert all(c["verdict"] == INCONCLUSIVE and c["reason"].startswith("timing too noisy") for c in claims.values())
    assert m["g3-parallel4@hw56"]["flop_ratio"] == [1.0] * 3  # equal FLOPs, counted


@pytest.mark.slow
def test_negative_control_ratios_sit_at_one(run_once):
    summary = run_once(NAME, sets=("negative_control=true",)).summary
    claims = _judged(summary)
    assert all(claims[c]["verdict"] != REPRODUCED for c in exp.NEGATIVE_CONTROL_CLAIMS)
    ratios = [r for arm in summary["measurements"].values() for r in arm["ratio"]]
    assert all(0.9 < r < 1.1 for r in ratios)
    if all(0.97 <= r <= 1.03 for r in summary["measurements"]["null@hw56"]["ratio"]):
        assert all(claims[c]["verdict"] == NOT_REPRODUCED for c in exp.NEGATIVE_CONTROL_CLAIMS)
