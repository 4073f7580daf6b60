import math

import pytest

from mlbench.core.verdict import (INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, SMOKE, AllOf, Claim, Equivalent,
                                  Paired, Threshold, Trend, mean_ci, t_cdf, t_quantile)


@pytest.mark.parametrize("df, q975", [(1, 12.7062), (2, 4.3027), (3, 3.1824), (10, 2.2281), (100, 1.9840)])
def test_t_quantiles_match_tables(df, q975):
    assert t_quantile(0.975, df) == pytest.approx(q975, abs=1e-3)
    assert t_cdf(q975, df) == pytest.approx(0.975, abs=1e-4)


def test_extreme_quantiles_are_not_clipped():
    assert t_quantile(0.99995, 1) == pytest.approx(6366.2, rel=1e-4)  # the old bisection stopped at 1000


def test_mean_ci_by_hand():
    iv = mean_ci([1.0, 2.0, 3.0])  # mean 2, sd 1, se 1/sqrt(3), t(0.975, 2) = 4.3027
    half = 4.3027 / math.sqrt(3)
    assert (iv.mean, iv.low, iv.high) == pytest.approx((2.0, 2 - half, 2 + half), abs=1e-3)
    assert mean_ci([5.0]).low == -math.inf


def m(a, b):
    return {"a": {"x": a}, "b": {"x": b}}


def test_paired_has_three_outcomes():
    assert Paired("x", "a", "b")(m([2.0, 2.1, 2.2], [1.0, 1.0, 1.1])).verdict == REPRODUCED
    assert Paired("x", "a", "b")(m([1.0, 1.1, 0.9], [2.0, 2.0, 2.1])).verdict == NOT_REPRODUCED
    assert Paired("x", "a", "b")(m([1.0, 3.0, 0.0], [1.0, 1.0, 1.0])).verdict == INCONCLUSIVE


def test_paired_log_ratio_and_min_effect():
    ev = Paired("x", "a", "b", log_ratio=True, min_effect=math.log(2))(m([4.0, 4.4, 3.6], [1.0, 1.0, 1.0]))
    assert ev.verdict == REPRODUCED and ev.effect == pytest.approx(math.log(4), abs=0.01)
    ev = Paired("x", "a", "b", log_ratio=True, min_effect=math.log(2))(m([1.2, 1.1, 1.3], [1.0, 1.0, 1.0]))
    assert ev.verdict == NOT_REPRODUCED


def test_equivalence_is_tost_not_absence_of_difference():
    assert Equivalent("x", "a", "b", 0.5)(m([1.0, 1.1, 0.9, 1.0], [1.0, 1.0, 1.0, 1.05])).verdict == REPRODUCED
    assert Equivalent("x", "a", "b", 0.5)(m([3.0, 3.1, 2.9], [1.0, 1.0, 1.0])).verdict == NOT_REPRODUCED
    # noisy, no significant difference, yet not shown equivalent either
    assert Equivalent("x", "a", "b", 0.5)(m([0.0, 2.0, 1.0], [1.0, 1.0, 1.0])).verdict == INCONCLUSIVE


def test_nan_cannot_decide_and_says_why():
    ev = Paired("x", "a", "b")(m([math.nan, 2.0, 2.0], [1.0, 1.0, 1.0]))
    assert ev.verdict == INCONCLUSIVE and "NaN" in ev.reason
    ev = Threshold("x", "a", 1.0)(m([math.nan, 0.0], [0.0, 0.0]))
    assert ev.verdict == INCONCLUSIVE and "diverged" in ev.reason
    ev = Threshold("x", "a", 1.0)(m([0.5], [0.0]))
    assert ev.verdict == INCONCLUSIVE and "one seed" in ev.reason


def censored(values, flags):
    return {"x": values, "x.censored": flags}


def test_both_arms_censored_is_inconclusive_with_its_reason():
    meas = {"t5": censored([600.0, 600.0], [1, 1]), "scaled": censored([600.0, 600.0], [1, 1])}
    ev = Paired("x", "t5", "scaled", "less", math.log(1.5), log_ratio=True)(meas)
    assert ev.effect == 0 and ev.ci == (0.0, 0.0)  # "no slower" at face value...
    assert ev.verdict == INCONCLUSIVE and "both arms censored" in ev.reason  # ...but nothing is known


def test_one_sided_censoring_concludes_only_the_direction_it_supports():
    slow = {"unscaled": censored([600.0, 600.0, 600.0], [1, 1, 1]), "scaled": censored([100.0, 110.0, 90.0], [0, 0, 0])}
    # unscaled >= budget > scaled: "slower" is supported...
    assert Paired("x", "unscaled", "scaled", "greater", log_ratio=True)(slow).verdict == REPRODUCED
    # ...but "not 10x slower" is not: the true unscaled values may be far larger
    ev = Paired("x", "unscaled", "scaled", "greater", math.log(10), log_ratio=True)(slow)
    assert ev.verdict == INCONCLUSIVE and "censored" in ev.reason
    # the control censored: an upper bound on the difference cannot show "greater"
    flipped = {"a": censored([700.0, 710.0, 705.0], [0, 0, 0]), "b": censored([600.0, 600.0, 600.0], [1, 1, 1])}
    ev = Paired("x", "a", "b", "greater", log_ratio=True)(flipped)
    assert ev.verdict == INCONCLUSIVE and "censored the other way" in ev.reason
    assert Equivalent("x", "a", "b", 1000.0)(flipped).verdict == INCONCLUSIVE  # censoring cannot show equivalence


def test_allof_headline_effect_is_the_deciding_part():
    meas = {"a": {"x": [2.0, 2.1, 2.2], "y": [0.0, 0.1, -0.1]}, "b": {"x": [1.0, 1.0, 1.1], "y": [1.0, 1.1, 0.9]}}
    ev = AllOf((Paired("x", "a", "b"), Paired("y", "a", "b")))(meas)
    assert ev.verdict == NOT_REPRODUCED and ev.effect == pytest.approx(-1.0) and "y" in ev.effect_name
    assert "part 2 not_reproduced" in ev.reason


def test_smoke_claims_are_labelled_not_decided():
    claim = Claim("c", "a beats b", "x", Paired("x", "a", "b"))
    out = claim.judge(m([2.0, 2.1, 2.2], [1.0, 1.0, 1.1]), decides=False)
    assert out["verdict"] == SMOKE and out["smoke_outcome"] == REPRODUCED and "smoke" in out["reason"]


def test_trend_and_allof():
    meas = {"d1": {"y": [3.0, 3.1]}, "d2": {"y": [2.0, 2.2]}, "d3": {"y": [1.0, 1.0]}}
    down = Trend("y", ("d1", "d2", "d3"), (1.0, 2.0, 3.0), "less", -0.5)
    assert down(meas).verdict == REPRODUCED
    up = Trend("y", ("d1", "d2", "d3"), (1.0, 2.0, 3.0), "greater", 0.0)
    assert up(meas).verdict == NOT_REPRODUCED
    both = AllOf((down, up))(meas)
    assert both.verdict == NOT_REPRODUCED and len(both.parts) == 2
    assert AllOf((down, down))(meas).verdict == REPRODUCED


def test_trend_from_one_x_is_inconclusive():
    assert Trend("y", ("d1",), (1.0,), "less")({"d1": {"y": [1.0, 2.0]}}).verdict == INCONCLUSIVE
