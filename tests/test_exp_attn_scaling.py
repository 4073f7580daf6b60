"""attn-scaling: the math at init, the batching, and the verdicts (quick profile + negative control)."""

import math

import pytest
import torch

import mlbench
from mlbench.core.grid import Grid
from mlbench.exps import attn_scaling as exp
from mlbench.exps.attn_scaling import attention


def test_logit_variance_is_d_unscaled_and_1_scaled():
    g = torch.Generator().manual_seed(0)
    cfg = exp.Config(stats_queries=512)
    for d in (16, 256):
        stats = attention.init_statistics(d, cfg.stats_queries, cfg.stats_keys, g)
        assert stats["unscaled"]["logit_var"] == pytest.approx(d, rel=0.1)
        assert stats["scaled"]["logit_var"] == pytest.approx(1.0, rel=0.1)
    assert stats["unscaled"]["entropy"] < 0.5 < 3.0 < stats["scaled"]["entropy"] < math.log(64)


def test_t5_init_gives_the_scaled_logits_at_step_0():
    cfg, d, grid = exp.Config(), 32, Grid(exp.ARMS, (0, 1))
    gens = [torch.Generator().manual_seed(k) for k in grid.seeds]
    params = attention.init_params(cfg, d, grid, gens)
    pairs, query, _ = attention.recall_batches(cfg, grid, [torch.Generator().manual_seed(9 + k) for k in grid.seeds], 8, "cpu")
    scale = attention.logit_scales(cfg, grid, d, "cpu")
    _, attn = attention.forward(params, pairs, query, scale)
    by_arm = grid.by_arm(attn)
    torch.testing.assert_close(by_arm["t5-init"], by_arm["scaled"], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(by_arm["unscaled"], by_arm["scaled"])


def test_batched_seeds_equal_one_at_a_time(tmp_path):
    """Seed 0 trained alone and trained next to seed 1 gives the same measurements."""
    one = mlbench.run("attn-scaling", profile="smoke", seeds=1, results=tmp_path, threads=1).summary["measurements"]
    two = mlbench.run("attn-scaling", profile="smoke", seeds=2, results=tmp_path, threads=1).summary["measurements"]
    trained = [arm for arm, metrics in one.items() if "steps_to_threshold" in metrics]
    assert len(trained) == len(exp.ARMS) * 2
    for arm in trained:
        metrics = one[arm]
        assert two[arm]["steps_to_threshold"][0] == metrics["steps_to_threshold"][0]
        assert two[arm]["H0"][0] == pytest.approx(metrics["H0"][0], abs=1e-5)


@pytest.mark.slow
def test_quick_profile_reproduces_every_claim(run_once):
    summary = run_once("attn-scaling").summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {"training": "reproduced", "init-saturation": "reproduced", "t5-init": "reproduced"}
    m = summary["measurements"]
    slowdown = [u / s for u, s in zip(m["unscaled@d256"]["steps_to_threshold"], m["scaled@d256"]["steps_to_threshold"])]
    assert min(slowdown) > 1.5  # the science doc's pilot: 3.5x-5.5x at d=256


def test_divergence_is_recorded_not_crashed(tmp_path):
    """SGD with an absurd learning rate: NaN losses are logged with their step, the arm's
    measurements become NaN, and the verdict cannot be decided from them (and says why)."""
    res = mlbench.run("attn-scaling", profile="smoke", results=tmp_path,
                      sets=["optimizer=sgd", "lr=1e9", "head_dims=8"])
    m = res.summary["measurements"]["unscaled@d8"]
    assert all(math.isnan(x) for x in m["steps_to_threshold"]) and all(x > 0 for x in m["diverged_at"])
    lines = (res.run_dir / "metrics.jsonl").read_text().splitlines()
    assert any('"diverged":true' in line for line in lines)
    head = res.summary["claims"][0]
    assert head["smoke_outcome"] == "inconclusive" and "NaN" in head["reason"]


def test_smoke_t5_init_is_not_a_decided_verdict(run_once):
    """Smoke: every model is stopped at the budget before 90 %: censored steps compare as
    nothing at all (not as 'learns like scaled', effect 0, CI [0, 0])."""
    claims = {c["id"]: c for c in run_once("attn-scaling", profile="smoke").summary["claims"]}
    t5 = claims["t5-init"]
    assert t5["verdict"] == "smoke" and t5["smoke_outcome"] == "inconclusive"
    assert "both arms censored" in t5["reason"]
