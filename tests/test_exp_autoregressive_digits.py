"""autoregressive-digits: exact normalisation by enumeration, the models against direct formulas
and scikit-learn, the Jacobian check catching a broken model, the data, and the verdicts."""

import itertools

import numpy as np
import pytest
import torch

import mlbench
from mlbench.core.errors import ConfigError

from mlbench.exps import autoregressive_digits as exp
from mlbench.exps.autoregressive_digits import binary_digits, fvsbn, made, nade
from mlbench.exps.autoregressive_digits.likelihood import (ancestral_sample, jacobian, logit_average_nll, mixture_nll,
                                                           nll, smoothed_marginals, violations)

D, H, M = 8, 6, 2
ALL_X = torch.tensor(list(itertools.product([0.0, 1.0], repeat=D)))  # (2^D, D): every binary image


def repeat(t):
    return t.repeat(M // t.shape[0], *[1] * (t.dim() - 1))


def random_models(seed=0):
    """FVSBN, NADE and MADE (2 layers, 3 masks) with random nonzero weights everywhere."""
    g = torch.Generator().manual_seed(seed)
    bias = torch.randn(M, D, generator=g)
    fv = {"b": bias, "W": torch.randn(M, D, D, generator=g)}
    na = nade.init_params(bias, H, [torch.Generator().manual_seed(seed + k) for k in range(M)], lambda t: t)
    na["V"], na["c"] = torch.randn(M, D, H, generator=g), torch.randn(M, H, generator=g)
    widths = (16, 16)
    ma = made.init_params(bias, widths, [torch.Generator().manual_seed(seed + k) for k in range(M)], lambda t: t)
    ma["V"] = torch.randn(ma["V"].shape, generator=g)
    ma["W0"], ma["W1"] = ma["W0"] * 4, ma["W1"] * 4  # strong dependencies between pixels
    per_seed = [made.seed_masks(seed + k, D, widths, 3) for k in range(M)]
    masks = [torch.stack([ms[l] for ms, _ in per_seed]) for l in range(len(widths) + 1)]
    degrees = torch.stack([deg for _, deg in per_seed])  # (M, K, D)
    return fv, na, (ma, masks, degrees)


def model_fns(seed=0):
    fv, na, (ma, masks, degrees) = random_models(seed)
    natural = torch.arange(1, D + 1).expand(M, D)
    fns = [(lambda x: fvsbn.logits(fv, x), natural), (lambda x: nade.logits(na, x), natural)]
    for k in range(masks[0].shape[1]):
        fns.append((lambda x, k=k: made.logits(ma, masks, x, torch.full((M,), k)), degrees[:, k]))
    return fns


def test_chain_rule_likelihoods_sum_to_one_over_all_images():
    """Σ_x p(x) over all 2^D binary images is 1 for every model and every MADE ordering."""
    for fn, _ in model_fns():
        total = torch.exp(-nll(fn(ALL_X.expand(M, -1, -1)), ALL_X)).double().sum(1)
        torch.testing.assert_close(total, torch.ones(M, dtype=torch.float64), rtol=1e-5, atol=1e-5)


def test_probability_average_is_normalised_and_logit_average_is_not():
    fns = model_fns()[2:]  # the three MADE masks, different orderings
    logits = [fn(ALL_X.expand(M, -1, -1)) for fn, _ in fns]
    counts = torch.tensor([3, 2])  # member 1 averages only its first two masks
    mix = torch.exp(-mixture_nll(logits, ALL_X, counts)).double().sum(1)
    torch.testing.assert_close(mix, torch.ones(M, dtype=torch.float64), rtol=1e-5, atol=1e-5)
    by_logits = torch.exp(-logit_average_nll(logits, ALL_X, counts)).double().sum(1)
    assert (by_logits - 1).abs().min() > 1e-3


def test_fvsbn_is_one_logistic_regression_per_pixel():
    fv, _, _ = random_models(1)
    x = ALL_X[torch.randperm(len(ALL_X), generator=torch.Generator().manual_seed(0))[:20]]
    ours = fvsbn.logits(fv, x.expand(M, -1, -1))
    b, w, xs = fv["b"].double().numpy(), fv["W"].double().numpy(), x.double().numpy()
    direct = np.array([[[b[m, d] + sum(w[m, d, j] * xs[i, j] for j in range(d)) for d in range(D)]
                        for i in range(len(xs))] for m in range(M)])
    np.testing.assert_allclose(ours.numpy(), direct, rtol=1e-5, atol=1e-5)
    p = 1 / (1 + np.exp(-direct))
    log_lik = (xs * np.log(p) + (1 - xs) * np.log1p(-p)).sum(-1)
    np.testing.assert_allclose(nll(ours, x).numpy(), -log_lik, rtol=1e-5)


def test_nade_cumulative_sum_equals_the_recursion():
    """a_1 = c, a_{d+1} = a_d + W_{:,d} x_d, logit_d = b_d + V_d·σ(a_d), one pixel at a time."""
    _, na, _ = random_models(2)
    x = ALL_X[::17]
    ours = nade.logits(na, x.expand(M, -1, -1))
    for m in range(M):
        a = na["c"][m].expand(len(x), H).clone()
        for d in range(D):
            ref = na["b"][m, d] + torch.sigmoid(a) @ na["V"][m, d]
            torch.testing.assert_close(ours[m, :, d], ref, rtol=1e-5, atol=1e-5)
            a = a + x[:, d:d + 1] * na["W"][m, d]


def test_independent_marginals_match_sklearn_bernoulli_nb():
    from sklearn.naive_bayes import BernoulliNB

    x = (torch.rand(1, 50, D, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    nb = BernoulliNB(alpha=1.0).fit(x[0].numpy(), np.zeros(50))
    np.testing.assert_allclose(smoothed_marginals(x)[0].numpy(), np.exp(nb.feature_log_prob_[0]), rtol=1e-6)


def test_made_masks_connect_only_earlier_pixels():
    """The product of the masks (paths from input j to output d) is nonzero iff m0(j) < m0(d)."""
    masks, degrees = made.seed_masks(5, D, (32, 32), 4)
    for k in range(4):
        paths = masks[2][k] @ masks[1][k] @ masks[0][k]  # (D, D)
        allowed = degrees[k][None, :] < degrees[k][:, None]
        assert not paths[~allowed].any()
        assert paths[allowed].gt(0).float().mean() > 0.9  # wide layers: almost every allowed path exists


def test_every_model_passes_the_jacobian_check_and_a_broken_one_fails():
    x = torch.rand(M, D, generator=torch.Generator().manual_seed(4))
    for fn, degrees in model_fns():
        jac = jacobian(fn, x)
        assert violations(jac, degrees).tolist() == [0] * M
        assert (jac != 0).sum() > 0
    fv, _, (ma, masks, _) = random_models()
    dense = lambda x: torch.baddbmm(fv["b"][:, None], x, fv["W"].transpose(1, 2))  # W not masked
    assert (violations(jacobian(dense, x), torch.arange(1, D + 1).expand(M, D)) > 0).all()
    leaky = [*masks[:-1], torch.ones_like(masks[-1])]  # output mask forgotten
    fn = lambda x: made.logits(ma, leaky, x, torch.zeros(M, dtype=torch.long))
    assert (violations(jacobian(fn, x), torch.arange(1, D + 1).expand(M, D)) > 0).all()


def test_ancestral_samples_follow_the_model():
    """FVSBN with W = 0: samples are independent Bernoulli(σ(b)); frequencies match."""
    p = torch.linspace(0.1, 0.9, D)
    fv = {"b": torch.log(p / (1 - p)).expand(M, D), "W": torch.zeros(M, D, D)}
    u = torch.rand(M, 4000, D, generator=torch.Generator().manual_seed(6))
    xs = ancestral_sample(lambda x: fvsbn.logits(fv, x), torch.arange(1, D + 1).expand(M, D), u)
    torch.testing.assert_close(xs.mean(1), p.expand(M, D), atol=0.03, rtol=0)


def test_pixel_shuffle_keeps_marginals_and_destroys_dependencies():
    x = binary_digits.binarise(torch.rand(500, 1).expand(500, 2) * 16, 8.0)  # two identical columns
    shuffled = binary_digits.permute_columns(x, torch.Generator().manual_seed(7))
    assert torch.equal(shuffled.sum(0), x.sum(0))
    assert (shuffled[:, 0] != shuffled[:, 1]).float().mean() > 0.3


def test_splits_share_nothing_and_cover_the_set(tmp_path):
    images = binary_digits.binarise(binary_digits.intensities(tmp_path, 8), 8.0)
    assert images.shape == (1797, 64) and set(images.unique().tolist()) == {0.0, 1.0}
    data = binary_digits.splits(images, [torch.Generator().manual_seed(0)], 1200, 300, False)
    rows = torch.cat([data[k][0] for k in ("train", "val", "test")])
    assert rows.shape == (1797, 64) and data["test"].shape == (1, 297, 64)
    assert torch.equal(rows.sum(0), images.sum(0))


def test_train_plus_val_must_leave_a_test_set(tmp_path):
    with pytest.raises(ConfigError, match="train_size"):
        mlbench.run("autoregressive-digits", profile="smoke", sets=["train_size=1500", "val_size=297"], results=tmp_path)


def test_batched_seeds_equal_one_at_a_time(tmp_path):
    one = mlbench.run("autoregressive-digits", profile="smoke", seeds=1, results=tmp_path, threads=1).summary
    two = mlbench.run("autoregressive-digits", profile="smoke", seeds=2, results=tmp_path, threads=1).summary
    for arm in exp.trained_arms(exp.Config()):
        if arm in one["measurements"]:
            assert two["measurements"][arm]["test_nll"][0] == pytest.approx(one["measurements"][arm]["test_nll"][0], abs=1e-4)


@pytest.mark.slow
def test_quick_profile_verdicts(run_once):
    summary = run_once("autoregressive-digits").summary
    verdicts = {c["id"]: c for c in summary["claims"]}
    for claim in ("nade-beats-fvsbn", "fvsbn-beats-independent", "autoregressive"):
        assert verdicts[claim]["verdict"] == "reproduced", verdicts[claim]
    assert verdicts["made-beats-fvsbn"]["verdict"] != "not_reproduced" and verdicts["made-beats-fvsbn"]["effect"] > 0
    assert verdicts["made-matches-nade"]["verdict"] != "reproduced" and verdicts["made-matches-nade"]["effect"] > 0
    m = summary["measurements"]
    assert all(c > 0 for c in m[exp.nade_key(exp.Config())]["jacobian_context_nonzero"])


@pytest.mark.slow
def test_negative_control_leaves_every_model_at_independent_pixels(run_once):
    m = run_once("autoregressive-digits", sets=("negative_control=true",)).summary["measurements"]
    base = m["independent"]["test_nll"]
    for arm in ("fvsbn", exp.nade_key(exp.Config()), exp.made_key(exp.Config())):
        assert all(abs(a - b) < 0.3 for a, b in zip(m[arm]["test_nll"], base)), (arm, m[arm]["test_nll"], base)
