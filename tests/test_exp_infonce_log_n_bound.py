"""infonce-log-n-bound: the Gaussians' mutual information and optimal critic against closed forms
and scipy, the bounds against plain numpy loops, the stacked training against separate training,
and the quick profile's verdicts (the negative control's headline is tested for every experiment
in test_registry.py)."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from mlbench.core import config as cfglib
from mlbench.core import registry
from mlbench.core.context import Context
from mlbench.core.errors import ConfigError, UsageError
from mlbench.exps import infonce_log_n_bound as face
from mlbench.exps.infonce_log_n_bound import bounds, gaussians
from mlbench.exps.infonce_log_n_bound.critic import block_scores, embed, init_critic
from mlbench.exps.infonce_log_n_bound.run import run, slices

from helpers import assert_same_bytes, stopped_then_rerun

NAME = "infonce-log-n-bound"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def profile_config(profile, **sets):
    prof = {k: v for k, v in registry.info(NAME).profiles[profile].items() if k != "seeds"}
    return cfglib.apply(face.Config, cfglib.apply(face.Config, face.Config(), prof, profile), sets, "--set")


# ----------------------------------------------------------------------------- correlated Gaussians
@pytest.mark.parametrize("mi,rho", [(2.0, 0.4258), (6.0, 0.6717), (10.0, 0.7951)])
def test_mi_is_the_gaussian_log_det_formula(mi, rho):
    """I = ½(log|Σx| + log|Σy| − log|Σ|) for the joint covariance [[I, ρI], [ρI, I]] (numpy slogdet)."""
    d = 20
    r = gaussians.rho_for_mi(mi, d)
    assert r == pytest.approx(rho, abs=5e-5)  # the values quoted with the reference's mi_to_rho
    joint = np.block([[np.eye(d), r * np.eye(d)], [r * np.eye(d), np.eye(d)]])
    assert -0.5 * np.linalg.slogdet(joint)[1] == pytest.approx(mi, rel=1e-12)
    assert gaussians.mi_for_rho(r, d) == pytest.approx(mi, rel=1e-12)


def test_samples_carry_the_stated_mi():
    """Monte Carlo E[log p(y|x) − log p(y)] with scipy's densities, and the sample covariance."""
    d, mi = 5, 3.0
    rho = gaussians.rho_for_mi(mi, d)
    x, eps = gaussians.draw([torch.Generator().manual_seed(0)], 200_000, d)
    y = gaussians.pair(x, eps, torch.tensor([rho]))[0].double().numpy()
    x = x[0].double().numpy()
    log_ratio = (stats.norm.logpdf(y, loc=rho * x, scale=math.sqrt(1 - rho**2)).sum(-1)
                 - stats.norm.logpdf(y).sum(-1))
    assert log_ratio.mean() == pytest.approx(mi, abs=4 * log_ratio.std() / math.sqrt(len(log_ratio)))
    cov = np.cov(np.concatenate([x, y], 1).T)
    np.testing.assert_allclose(cov[:d, d:], rho * np.eye(d), atol=0.01)
    np.testing.assert_allclose(np.diag(cov), np.ones(2 * d), atol=0.01)


def test_oracle_is_the_log_density_ratio():
    """oracle_scores[i, j] − scipy's log N(y_i; ρx_j, (1 − ρ²)I) is the same for every j (a per-row
    constant, which InfoNCE cancels); the cubic transform leaves the scores unchanged."""
    d, n, rho = 4, 7, 0.6
    x, eps = gaussians.draw([torch.Generator().manual_seed(1)], n, d)
    r = torch.tensor([rho], dtype=torch.float64)  # the oracle's ρ in float64, as the run passes it
    y = gaussians.pair(x, eps, r)
    s = gaussians.oracle_scores(x, y, r)[0].numpy()
    ref = np.array([[stats.multivariate_normal(rho * x[0, j].double().numpy(), (1 - rho**2) * np.eye(d))
                     .logpdf(y[0, i].double().numpy()) for j in range(n)] for i in range(n)])
    diff = s - ref
    np.testing.assert_allclose(diff, diff[:, :1].repeat(n, 1), atol=1e-9)
    cubed = gaussians.oracle_scores(x, y**3, r, cubic=True)[0].numpy()
    np.testing.assert_allclose(cubed, s, atol=1e-8)


# ----------------------------------------------------------------------------- the bounds
def numpy_bounds(s, tau):
    """The reference's formulas on one N x N batch, written with numpy and scipy."""
    n = len(s)
    off = s[~np.eye(n, dtype=bool)]
    nce = math.log(n) + np.mean([s[i, i] - logsumexp(s[i]) for i in range(n)])
    nwj = 1 + np.mean(np.diag(s) - 1) - np.exp(logsumexp(off - 1) - math.log(n * (n - 1)))
    dv = np.mean(np.diag(s)) - (logsumexp(np.clip(off, -tau, tau)) - math.log(n * (n - 1)))
    return nce, nwj, dv


def test_bounds_match_plain_numpy():
    s = torch.randn(3, 2, 9, 9, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 3
    got = {o: bounds.bound(s, o, 5.0) for o in ("infonce", "nwj", "smile")}
    for a in range(3):
        for b in range(2):
            nce, nwj, dv = numpy_bounds(s[a, b].numpy(), 5.0)
            assert got["infonce"][a, b].item() == pytest.approx(nce, rel=1e-12)
            assert got["nwj"][a, b].item() == pytest.approx(nwj, rel=1e-12)
            assert got["smile"][a, b].item() == pytest.approx(dv, rel=1e-12)


def test_infonce_never_exceeds_log_n_and_reaches_it():
    """Any critic, however confident: Î <= log N; a critic certain of the positives reaches log N."""
    g = torch.Generator().manual_seed(3)
    for scale in (0.1, 10.0, 1e4):
        s = torch.randn(100, 32, 32, generator=g, dtype=torch.float64) * scale
        assert (bounds.infonce(s) <= math.log(32) + 1e-12).all()
    assert bounds.infonce(50.0 * torch.eye(32, dtype=torch.float64)).item() == pytest.approx(math.log(32), abs=1e-12)


def test_smile_trains_through_js():
    """SMILE's value is DV with clipping, its gradient that of the JS bound."""
    s = torch.randn(6, 6, generator=torch.Generator().manual_seed(4), dtype=torch.float64, requires_grad=True)
    (g_smile,) = torch.autograd.grad(bounds.smile(s, 1.0), s)
    (g_js,) = torch.autograd.grad(bounds.js_fgan(s), s)
    torch.testing.assert_close(g_smile, g_js)


def test_block_scores_are_independent_batches():
    g = torch.Generator().manual_seed(5)
    hy, gx = torch.randn(2, 12, 3, generator=g), torch.randn(2, 12, 3, generator=g)
    blocks = block_scores(hy, gx, 4)  # (2, 3, 4, 4)
    for m in range(2):
        for b in range(3):
            torch.testing.assert_close(blocks[m, b], hy[m, 4 * b:4 * b + 4] @ gx[m, 4 * b:4 * b + 4].T)


def test_oracle_infonce_tracks_low_mi_and_saturates_high_mi():
    """The optimal critic: nearly unbiased when I << log N; within 0.15 of log N when I >> log N."""
    def oracle_estimate(mi, n, batches, seed):
        rho = gaussians.rho_for_mi(mi, 20)
        x, eps = gaussians.draw([torch.Generator().manual_seed(seed)], n * batches, 20)
        y = gaussians.pair(x, eps, torch.tensor([rho]))
        xb, yb = x.view(1, batches, n, 20), y.view(1, batches, n, 20)
        return bounds.infonce(gaussians.oracle_scores(xb, yb, torch.tensor([rho]))).mean().item()

    assert oracle_estimate(0.5, 512, 40, 6) == pytest.approx(0.5, abs=0.02)
    assert math.log(64) - 0.15 < oracle_estimate(10.0, 64, 200, 7) < math.log(64)


# ----------------------------------------------------------------------------- the stacked critics
def test_slices_cover_every_member_once_in_order():
    cfg = profile_config("smoke", objectives=("infonce", "smile"))
    specs = face.trained_specs(cfg)
    grid = Context(NAME, None, [0, 1]).grid([face.key(*s) for s in specs])
    parts = slices(grid, specs)
    covered = [m for *_, sl, _ in parts for m in range(sl.start, sl.stop)]
    assert covered == list(range(len(grid)))
    for o, n, sl, sub in parts:
        assert all(grid.arm_of(m).startswith(f"{o}@N{n},") for m in range(sl.start, sl.stop))
        assert sub.arms == tuple(grid.arm_of(m) for m in range(sl.start, sl.stop, len(grid.seeds)))


def test_init_matches_nn_linear_bounds():
    cfg = profile_config("smoke")
    p = init_critic(cfg, [torch.Generator().manual_seed(0)])
    assert p["g.0.weight"].shape == (1, cfg.dim, cfg.hidden) and p["h.2.weight"].shape == (1, cfg.hidden, cfg.embed)
    assert p["g.0.weight"].abs().max() <= 1 / math.sqrt(cfg.dim) and p["g.1.bias"].abs().max() <= 1 / math.sqrt(cfg.hidden)
    out = embed(p, "h", torch.randn(1, 5, cfg.dim))
    lin = torch.nn.Sequential(torch.nn.Linear(cfg.dim, cfg.hidden), torch.nn.ReLU(), torch.nn.Linear(cfg.hidden, cfg.hidden),
                              torch.nn.ReLU(), torch.nn.Linear(cfg.hidden, cfg.embed))
    with torch.no_grad():
        for k in range(3):
            lin[2 * k].weight.copy_(p[f"h.{k}.weight"][0].T)
            lin[2 * k].bias.copy_(p[f"h.{k}.bias"][0, 0])
    v = torch.randn(1, 5, cfg.dim, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(embed(p, "h", v)[0], lin(v[0]))
    assert out.shape == (1, 5, cfg.embed)


def measure(tmp_path, cfg, seeds, tag):
    ctx = Context(NAME, tmp_path / tag, seeds, cache_dir=tmp_path / "cache")
    return run(cfg, ctx), ctx


def test_members_train_as_if_alone(tmp_path):
    """One Adam over the stack equals separate Adams: an arm's per-seed results are the same whether
    it trains beside other arms and seeds or alone (seed 1, one level, one objective)."""
    big = profile_config("smoke", objectives=("infonce", "nwj"))
    alone = profile_config("smoke", mi_levels=(8.0,), oracle_levels=(8.0,))
    m_big, _ = measure(tmp_path, big, [0, 1], "big")
    m_one, ctx = measure(tmp_path, alone, [1], "one")
    for arm in ("infonce@N16,I8", "infonce@N32,I8", "oracle@N32,I8"):
        for metric in ("estimate", "batch_max", "batch_std"):
            np.testing.assert_allclose(m_one[arm][metric], m_big[arm][metric][1:], rtol=1e-5, err_msg=f"{arm} {metric}")
    assert {r["seed"] for r in ctx.records} == {1}


def test_config_errors_and_the_gpu_profile():
    with pytest.raises(ConfigError, match="divide the largest"):
        cfglib.apply(face.Config, face.Config(), {"batch_sizes": "64,100"}, "--set")
    with pytest.raises(ConfigError, match="largest oracle level"):
        cfglib.apply(face.Config, face.Config(), {"oracle_levels": "2,4"}, "--set")
    with pytest.raises(ConfigError, match="nothing can saturate"):
        cfglib.apply(face.Config, face.Config(), {"batch_sizes": "512,1024"}, "--set")
    with pytest.raises(ConfigError, match="unknown objectives"):
        cfglib.apply(face.Config, face.Config(), {"objectives": "infonce,mine"}, "--set")
    full = profile_config("full")
    with pytest.raises(UsageError, match="use --device cuda"):
        face.check(full, "cpu")
    face.check(full, "cuda")
    face.check(face.Config(), "cpu")
    assert len(face.trained_specs(full)) == 3 * 5 * 5
    headline, ceiling = face.claims(full)[:2]  # saturation where log N <= 10 − 4; the slope over every N
    assert headline.arm_keys()[::3] == ("infonce@N64,I10", "infonce@N128,I10", "infonce@N256,I10")
    assert ceiling.arm_keys()[:5] == tuple(f"infonce@N{n},I10" for n in (64, 128, 256, 512, 1024))


# ----------------------------------------------------------------------------- science (quick profile)
@pytest.mark.slow
def test_quick_profile_reproduces_every_claim(run_once):
    summary = run_once(NAME).summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {"saturates": "reproduced", "ceiling-moves": "reproduced", "tight-below": "reproduced",
                        "oracle-calibration": "reproduced"}
    m = summary["measurements"]
    for arm, r in m.items():  # the identity: no InfoNCE batch above log N
        if arm.startswith(("infonce", "oracle")):
            assert max(r["batch_max"]) <= r["log_n"][0] + 1e-9, arm
    assert np.mean(m["infonce@N256,I10"]["estimate"]) <= 10 - 4  # pinned to log N, far from the truth


@pytest.mark.slow
def test_negative_control_tracks_the_truth(run_once):
    """Under the control every estimate follows I (<= 1 nat), far below log N."""
    m = run_once(NAME, sets=("negative_control=true",)).summary["measurements"]
    for arm, r in m.items():
        assert r["true_mi"][0] in face.CONTROL_LEVELS
        assert abs(np.mean(r["estimate"]) - r["true_mi"][0]) < 0.15, arm
        assert np.mean(r["estimate"]) < r["log_n"][0] - 3, arm


def test_same_command_same_bytes_and_resume(tmp_path):
    """Two runs give the same bytes; so does a run stopped by Ctrl-C after the optimal-critic unit
    and rerun (finishing only the training unit)."""
    runs, manifest = stopped_then_rerun(NAME, tmp_path, 2)  # the second progress task is the training loop
    assert manifest["status"] == "complete" and manifest["resumed_units"] == ["oracle"]
    cks = list((runs[0] / "checkpoints").iterdir())
    assert len(cks) == 2 * 2 * 2 + 1  # 2 batch sizes x 2 levels x 2 seeds, and the oracle's batches
    assert_same_bytes(runs, ("metrics.jsonl", "table.csv", "summary.json"))
