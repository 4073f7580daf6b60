"""Sequential seeds: the error rate stays at the nominal level under optional stopping."""

import numpy as np
import pytest

from mlbench.core.sequential import Looks, schedule
from mlbench.core.verdict import REPRODUCED, Claim, Paired

CLAIM = Claim("c", "a beats b", "test", Paired("x", "a", "b", "greater", 0.0))


def false_positive_rate(looks: list[int], per_look: int, sims: int = 4000) -> float:
    """Under the null (a − b ~ N(0, 1): no effect), the share of sequences that ever call the
    claim reproduced, each look judged at confidence split over `per_look` looks."""
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(sims):
        diffs = rng.standard_normal(looks[-1]).tolist()
        seq = Looks([CLAIM], looks)
        for n in looks:
            verdict = CLAIM.judge({"a": {"x": diffs[:n]}, "b": {"x": [0.0] * n}}, looks=per_look)["verdict"]
            if verdict == REPRODUCED:
                hits += 1
                break
            if verdict != "inconclusive":
                break  # decided the other way: the sequence stops
        del seq
    return hits / sims


def test_schedule_is_fixed_in_advance():
    assert schedule(4, 8) == [4, 6, 8]
    assert schedule(3, 8) == [3, 4, 5, 6, 7, 8]
    assert schedule(5, 6) == [5, 6]


def test_false_positive_rate_under_optional_stopping_stays_nominal():
    looks = schedule(4, 12)  # 4, 6, 8, 10, 12
    naive = false_positive_rate(looks, per_look=1)  # stop as soon as a 95% CI clears: inflated
    spent = false_positive_rate(looks, per_look=len(looks))  # alpha spent over the looks
    nominal = 0.025  # one-sided: the upper tail of a two-sided 95% interval
    assert spent <= nominal
    assert naive > 1.5 * nominal  # the problem the procedure solves is real at this many looks


def test_looks_keep_the_first_decision():
    seq = Looks([CLAIM], [2, 4])
    first = seq.look(2, {"a": {"x": [5.0, 5.1]}, "b": {"x": [0.0, 0.0]}})
    assert first[0]["verdict"] == REPRODUCED and seq.done
    final = seq.final(seq.look(4, {"a": {"x": [5.0, 5.1, -9.0, 9.0]}, "b": {"x": [0.0] * 4}}))
    assert final[0]["verdict"] == REPRODUCED and final[0]["decided_at_seeds"] == 2


@pytest.mark.slow
def test_hippo_memory_auto_seeds_decides_and_says_when(results):
    import mlbench

    res = mlbench.run("hippo-memory", seeds="auto", max_seeds=8, results=results)
    seq = res.summary["sequential"]
    assert seq["stopped"] in ("every claim decided", "seed budget spent") and seq["looks"]
    assert all(c["verdict"] != "inconclusive" for c in res.summary["claims"]), res.summary["claims"]
    assert all(c["decided_at_seeds"] for c in res.summary["claims"])
    assert (res.run_dir / "looks.json").is_file()
    again = mlbench.run("hippo-memory", seeds="auto", max_seeds=8, results=results)
    assert again.already_complete and again.run_dir == res.run_dir
