"""rectified-flow: the flow, VP and metric math against closed forms and libraries, the stacked
network and optimiser, the runs (bytes, resume, batching), and the verdicts (quick profile +
negative control)."""

import json
import math

import pytest
import torch
from scipy import stats
from scipy.integrate import quad

import mlbench
from helpers import InterruptAt
from mlbench.core.errors import ConfigError
from mlbench.exps import rectified_flow as exp
from mlbench.exps.rectified_flow import criteria, flow, sliced, velocity_net, vp

CFG = exp.Config()


# ----------------------------------------------------------------------------- a Gaussian target
def gaussian_flow(m, s):
    """Exact rectified-flow velocity for x₀ ~ N(m, s²I), ε ~ N(0, I) (SD3 time: x_t = (1 − t)x₀ + tε):
    v = E[ε − x₀ | x_t] = (t − (1 − t)s²)(x_t − (1 − t)m)/c² − m, c² = (1 − t)²s² + t². Its ODE
    moves x_t = (1 − t)m + c(t)·z, so Euler from z at t = 1 lands on m + s·z."""
    def velocity(x, t):
        c2 = (1 - t) ** 2 * s**2 + t**2
        return (t - (1 - t) * s**2) * (x - (1 - t) * m) / c2 - m
    return velocity


def test_euler_with_the_exact_velocity_lands_on_the_data():
    """The time-convention pitfall: 256 Euler steps from noise must end on the data, not on −data."""
    z = torch.randn(1, 4000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    m, s = torch.tensor([1.5, -0.5], dtype=torch.float64), 0.3
    x = flow.euler(gaussian_flow(m, s), z, 256)
    torch.testing.assert_close(x, m + s * z, atol=2e-2, rtol=0)  # Euler: O(1/N); a flipped sign is off by ~3


def test_interpolation_and_target_follow_sd3s_convention():
    x0, eps = torch.randn(1, 5, 2), torch.randn(1, 5, 2)
    for t_val, expect in ((0.0, x0), (1.0, eps)):
        x_t, v = flow.interpolate(x0, eps, torch.full((1, 5), t_val))
        torch.testing.assert_close(x_t, expect)
        torch.testing.assert_close(v, eps - x0)  # dx_t/dt


@pytest.mark.parametrize("s", [0.0, 0.3, 1.0, 2.0])
def test_straightness_matches_the_closed_form(s):
    """Along x_t = (1 − t)m + c(t)z: (z − x₀) − v = (1 − s − c'(t))z, so
    S = D∫(1 − s − c')²dt / ((1 − s)²D + ‖m‖²); 0 only for s = 0 (a point mass: c = t, straight
    paths), not for s = 1 (the independent coupling contracts to c(½) = 1/√2 on the way)."""
    m = torch.tensor([0.8, 0.0], dtype=torch.float64)
    z = torch.randn(1, 20000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x, velocities, _ = flow.euler(gaussian_flow(m, s), z, 256, keep=True)
    measured = flow.straightness(z, x, velocities).item()

    def dc(t):
        return (t - (1 - t) * s**2) / math.sqrt((1 - t) ** 2 * s**2 + t**2)

    expected = 2 * quad(lambda t: (1 - s - dc(t)) ** 2, 0, 1)[0] / ((1 - s) ** 2 * 2 + m.square().sum().item())
    assert measured == pytest.approx(expected, rel=0.03, abs=1e-6)
    assert (measured < 1e-6) == (s == 0.0)


def test_logit_normal_timesteps_have_the_sd3_density():
    u = torch.rand(20000, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    t = flow.logit_normal_t(u, 0.5, 1.2).numpy()
    cdf = lambda x: stats.norm.cdf((stats.logistic.ppf(x) - 0.5) / 1.2)  # noqa: E731 (P(logit t < logit x))
    assert stats.kstest(t, cdf).pvalue > 0.01
    assert stats.kstest(t, "uniform").pvalue < 1e-6  # the test can tell them apart
    density = lambda x: math.exp(-(math.log(x / (1 - x)) - 0.5) ** 2 / (2 * 1.2**2)) / (  # noqa: E731
        1.2 * math.sqrt(2 * math.pi) * x * (1 - x))
    assert quad(density, 0, 0.3)[0] == pytest.approx(cdf(0.3), rel=1e-6)


# ----------------------------------------------------------------------------- the VP baseline
@pytest.mark.parametrize("t", [1e-3, 0.2, 0.7, 1.0])
def test_vp_alpha_is_exp_of_half_the_integrated_beta(t):
    integral = quad(lambda r: vp.beta(r, CFG.beta_min, CFG.beta_max), 0, t)[0]
    alpha, sigma = vp.alpha_sigma(t, CFG.beta_min, CFG.beta_max)
    assert alpha == pytest.approx(math.exp(-0.5 * integral), rel=1e-12)
    assert alpha**2 + sigma**2 == pytest.approx(1.0, rel=1e-12)
    a_t, s_t = vp.alpha_sigma(torch.tensor([t], dtype=torch.float64), CFG.beta_min, CFG.beta_max)
    assert (a_t.item(), s_t.item()) == pytest.approx((alpha, sigma), rel=1e-12)


@pytest.mark.parametrize("sampler, nfe", [(vp.pf_ode_euler, 1000), (vp.ddim, 256)])
def test_vp_samplers_with_the_exact_eps_reach_the_data(sampler, nfe):
    """x₀ ~ N(m, s²): ε*(x, t) = σ(x − αm)/(α²s² + σ²), and the PF-ODE moves x_t = αm + √(α²s² + σ²)·z."""
    m, s, b0, b1, t_min = 1.0, 0.3, CFG.beta_min, CFG.beta_max, CFG.t_min

    def eps(x, t):
        a, sig = vp.alpha_sigma(t, b0, b1)
        return sig * (x - a * m) / (a * a * s * s + sig * sig)

    z = torch.randn(1, 4000, 1, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = sampler(eps, z, nfe, b0, b1, t_min)
    a, sig = vp.alpha_sigma(t_min, b0, b1)
    torch.testing.assert_close(x, a * m + math.sqrt(a * a * s * s + sig * sig) * z, atol=2e-2, rtol=0)


# ----------------------------------------------------------------------------- metrics
def test_sliced_w1_is_the_mean_of_scipys_1d_w1_over_directions():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(2, 300, 2, generator=g), torch.randn(2, 300, 2, generator=g) * 1.5 + 0.3
    dirs = sliced.directions(16, [g, g])
    ours = sliced.sw1(a, sliced.sorted_projections(b, dirs), dirs)
    for k in range(2):
        pa, pb = (a[k] @ dirs[k]).T.double().numpy(), (b[k] @ dirs[k]).T.double().numpy()
        ref = sum(stats.wasserstein_distance(x, y) for x, y in zip(pa, pb)) / 16
        assert ours[k].item() == pytest.approx(ref, rel=1e-5)
    assert torch.allclose(dirs.norm(dim=1), torch.ones(2, 16))
    broken = a.clone()
    broken[1, 0, 0] = math.nan
    out = sliced.sw1(broken, sliced.sorted_projections(b, dirs), dirs)
    assert out[0] == ours[0] and math.isnan(out[1])  # a diverged model is NaN, the others untouched


def test_every_seed_and_material_gap_decide_as_documented():
    m = {"a": {"x": [0.05, 0.07, 0.06]}, "b": {"x": [0.01, 0.02, 0.0]}}
    assert criteria.EverySeed("x", "a", 0.1)(m).verdict == "reproduced"
    assert criteria.EverySeed("x", "a", 0.065)(m).verdict == "inconclusive"
    assert criteria.EverySeed("x", "a", 0.01)(m).verdict == "not_reproduced"
    assert criteria.EverySeed("x", "a", 0.0, "greater", control="b")(m).verdict == "reproduced"
    gap = {"t": {"x": [0.10, 0.12, 0.11, 0.13, 0.09]}, "c": {"x": [0.05, 0.06, 0.07, 0.06, 0.05]}}
    assert criteria.MaterialGap("x", "t", "c", 0.03, 5)(gap).verdict == "reproduced"
    assert criteria.MaterialGap("x", "t", "c", 0.03, 6)(gap).verdict == "inconclusive"  # too few seeds
    assert criteria.MaterialGap("x", "t", "c", 0.08, 5)(gap).verdict == "inconclusive"  # not material
    assert criteria.MaterialGap("x", "c", "t", 0.03, 5)(gap).verdict == "not_reproduced"  # the other way round


# ----------------------------------------------------------------------------- network and optimiser
def test_stacked_network_equals_each_model_alone():
    gens = [torch.Generator().manual_seed(k) for k in range(3)]
    params = velocity_net.init_params(2, 16, 3, gens)
    x, t = torch.randn(3, 7, 2), torch.rand(3, 7)
    out = velocity_net.forward(params, x, t, 3)
    for k in range(3):
        h = torch.cat([x[k], velocity_net.time_features(t[k], 3)], -1)
        for layer in range(3):
            h = torch.nn.functional.silu(torch.nn.functional.linear(h, params[f"w{layer}"][k].T, params[f"b{layer}"][k, 0]))
        torch.testing.assert_close(out[k], torch.nn.functional.linear(h, params["w3"][k].T, params["b3"][k, 0]))


def test_adam_matches_torch_optim():
    p0 = {"w": torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(5))}
    ours, ref = {"w": p0["w"].clone()}, p0["w"].clone().requires_grad_(True)
    opt, torch_opt = velocity_net.Adam(ours), torch.optim.Adam([ref], lr=1e-2)
    for step in range(5):
        grad = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(10 + step))
        opt.step({"w": grad}, 1e-2)
        ref.grad = grad.clone()
        torch_opt.step()
    torch.testing.assert_close(ours["w"], ref.detach())


def test_shuffled_pairs_keep_the_marginal_and_lose_the_coupling():
    g = torch.Generator().manual_seed(6)
    z = torch.randn(2, 5000, 2, generator=g)
    x = z * 0.5 + 0.1  # perfectly coupled
    shuffled = flow.shuffle_pairs(x, [torch.Generator().manual_seed(k) for k in range(2)])
    torch.testing.assert_close(shuffled.sort(1).values, x.sort(1).values)
    corr = lambda a, b: torch.corrcoef(torch.stack([a[..., 0].flatten(), b[..., 0].flatten()]))[0, 1]  # noqa: E731
    assert corr(z, x) > 0.99 and abs(corr(z, shuffled)) < 0.05


# ----------------------------------------------------------------------------- runs
def outputs(run_dir):
    ckpts = sorted(f"checkpoints/{p.name}" for p in (run_dir / "checkpoints").iterdir())
    files = ["metrics.jsonl", "table.csv", "table-paired.csv", "summary.json", *ckpts]
    return {f: (run_dir / f).read_bytes() for f in files}


def test_same_bytes_twice_and_after_a_resume(tmp_path):
    a = mlbench.run("rectified-flow", profile="smoke", results=tmp_path / "a", threads=1)
    assert len(list((a.run_dir / "checkpoints").iterdir())) == 2 * (len(exp.OBJECTIVES) + len(exp.REFLOWS))
    b = mlbench.run("rectified-flow", profile="smoke", results=tmp_path / "a", threads=1, force=True)
    assert outputs(a.run_dir) == outputs(b.run_dir)
    with pytest.raises(KeyboardInterrupt):  # 3rd progress task: the first evaluation, after both trainings
        mlbench.run("rectified-flow", profile="smoke", results=tmp_path / "r", threads=1, progress=InterruptAt(3))
    c = mlbench.run("rectified-flow", profile="smoke", results=tmp_path / "r", threads=1)
    assert json.loads((c.run_dir / "manifest.json").read_text())["resumed_units"] == ["train-objectives", "train-reflow"]
    assert outputs(c.run_dir) == outputs(a.run_dir)  # reflow and evaluation read the weights back from disk


def test_a_seed_alone_measures_what_it_measures_in_the_stack(tmp_path):
    one = mlbench.run("rectified-flow", profile="smoke", seeds=1, results=tmp_path, threads=1).summary["measurements"]
    two = mlbench.run("rectified-flow", profile="smoke", seeds=2, results=tmp_path, threads=1).summary["measurements"]
    for arm, metrics in one.items():
        for name, values in metrics.items():
            assert two[arm][name][0] == pytest.approx(values[0], rel=1e-4, abs=1e-6), (arm, name)


def test_bad_config_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="nfe_grid must contain 1, 2 and 4"):
        mlbench.run("rectified-flow", profile="smoke", results=tmp_path, sets=["nfe_grid=1,2,8"])
    with pytest.raises(ConfigError, match="t_min"):
        mlbench.run("rectified-flow", profile="smoke", results=tmp_path, sets=["t_min=0"])
    assert not tmp_path.exists() or not any(tmp_path.rglob("*.json"))


def test_divergence_is_recorded_not_crashed(tmp_path):
    res = mlbench.run("rectified-flow", profile="smoke", results=tmp_path, sets=["lr=1e9", "reflow_lr=1e9"])
    m = res.summary["measurements"]
    assert all(math.isnan(v) for v in m["rf2@nfe1"]["sw1"])
    assert '"diverged":true' in (res.run_dir / "metrics.jsonl").read_text()
    assert res.summary["verdict"] == "smoke"  # a smoke run never shows a decision ...
    outcomes = {c["id"]: c["smoke_outcome"] for c in res.summary["claims"]}
    assert "reproduced" not in outcomes.values(), outcomes  # ... and NaN seeds decide nothing in favour


# ----------------------------------------------------------------------------- verdicts
@pytest.mark.slow
def test_quick_profile_verdicts(run_once):
    summary = run_once("rectified-flow").summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {"reflow-one-step": "reproduced", "fewer-steps-than-ddim": "reproduced",
                        "vs-pf-ode": "inconclusive", "logit-normal": "reproduced",
                        "shuffled-stays-curved": "reproduced"}
    m = summary["measurements"]
    assert all(s > 1.0 for s in m["rf-uniform"]["straightness"])  # 1-RF is curved...
    assert all(s < 0.1 for s in m["rf2"]["straightness"])  # ...2-RF nearly straight
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(m["rf-uniform@nfe256"]["sw1"]) < 2 * mean(m["data-floor"]["sw1"])  # 1-RF converges near the data


@pytest.mark.slow
def test_negative_control_leaves_the_reflow_curved(run_once):
    """Shuffled pairs: 2-RF is plain 1-RF training again, curved, and one step collapses to the mean."""
    summary = run_once("rectified-flow", sets=("negative_control=true",)).summary
    m = summary["measurements"]
    assert summary["verdict"] == "not_reproduced"
    assert all(s > 1.0 for s in m["rf2"]["straightness"])
    assert all(a > 0.5 * b for a, b in zip(m["rf2@nfe1"]["sw1"], m["rf-uniform@nfe1"]["sw1"]))
