import math

import pytest

from mlbench.core.verdict import (INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED, AllOf, Equivalent, Paired,
                                  Threshold, Trend, mean_ci, t_cdf, t_quantile)


@pytest.mark.parametrize("df, q975", [(1, 12.7062), (2, 4.3027), (3, 3.1824), (10, 2.2281), (100, 1.9840)])
def test_t_quantiles_match_tables(df, q975):
    assert t_quantile(0.975, df) == pytest.approx(q975, abs=1e-3)
    assert t_cdf(q975, df) == pytest.approx(0.975, abs=1e-4)


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


def test_nan_means_diverged_not_reproduced():
    assert Paired("x", "a", "b")(m([math.nan, 2.0, 2.0], [1.0, 1.0, 1.0])).verdict == NOT_REPRODUCED
    assert Threshold("x", "a", 1.0)(m([math.nan], [0.0])).verdict == NOT_REPRODUCED


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
