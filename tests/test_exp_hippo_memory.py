"""hippo-memory: the HiPPO operators against their closed forms and reference implementations,
the fast recurrences against the plain loop, the signals, per-seed measurements, and the quick
profile's verdicts (the negative control is tested for every experiment in test_registry.py)."""

import math

import numpy as np
import pytest
import torch
from scipy import signal as scipy_signal
from scipy import special

from mlbench.core import config as cfglib
from mlbench.core import registry
from mlbench.core.context import Context
from mlbench.data import signals
from mlbench.exps import hippo_memory as face
from mlbench.exps.hippo_memory import memory as mem
from mlbench.exps.hippo_memory import operators as ops
from mlbench.exps.hippo_memory.run import run

from helpers import assert_same_bytes, stopped_then_rerun

F64 = torch.float64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Batched small LAPACK calls (solve_triangular, pinv) crawl with 2 OpenMP threads on a
    shared, oversubscribed CPU; one thread is fast and bit-reproducible."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_legs_matrix_is_the_papers():
    """LegS: paper A_nk = √(2n+1)√(2k+1) (n > k), n+1 (n = k), 0 (n < k), B_n = √(2n+1); ours is −A."""
    N = 6
    A, B = ops.transition("legs", N)
    for n in range(N):
        assert B[n] == pytest.approx(math.sqrt(2 * n + 1))
        for k in range(N):
            paper = math.sqrt((2 * n + 1) * (2 * k + 1)) if n > k else (n + 1 if n == k else 0.0)
            assert A[n, k].item() == pytest.approx(-paper)


def test_legt_and_lagt_match_the_reference_code():
    """state-spaces/s4 `transition`: legt A = −R[1 if n ≥ k else (−1)^(n−k)]R, B = R; lagt A = I/2 − tril(1), B = 1."""
    N = 7
    q = np.arange(N, dtype=np.float64)
    R = (2 * q + 1) ** 0.5
    j, i = np.meshgrid(q, q)
    legt_ref = -(R[:, None] * np.where(i < j, (-1.0) ** (i - j), 1) * R[None, :])
    A, B = ops.transition("legt", N)
    np.testing.assert_allclose(A.numpy(), legt_ref, rtol=1e-14)
    np.testing.assert_allclose(B.numpy(), R)
    A, B = ops.transition("lagt", N)
    np.testing.assert_allclose(A.numpy(), np.eye(N) / 2 - np.tril(np.ones((N, N))))
    assert torch.equal(B, torch.ones(N, dtype=F64))


@pytest.mark.parametrize("N", [6, 7])
def test_fout_is_rotation_minus_rank_one(N):
    """FouT: A = J − 2ppᵀ with J skew (frequencies 2πk), B = 2p, p the basis at the window's start."""
    A, B = ops.transition("fout", N)
    p = ops.basis("fout", N, torch.zeros(1, dtype=F64))[0]
    torch.testing.assert_close(A + A.T, -4 * torch.outer(p, p))
    torch.testing.assert_close(B, 2 * p)
    assert A[1, 2].item() == pytest.approx(2 * math.pi) and A[3, 4].item() == pytest.approx(4 * math.pi)


def test_polynomials_match_scipy():
    x = torch.linspace(-1, 1, 101, dtype=F64)
    P = ops.legendre(12, x)
    for n in range(12):
        np.testing.assert_allclose(P[:, n].numpy(), special.eval_legendre(n, x.numpy()), atol=1e-12)
    t = torch.linspace(0, 30, 101, dtype=F64)
    Lg = ops.laguerre(12, t)
    for n in range(12):
        np.testing.assert_allclose(Lg[:, n].numpy(), special.eval_laguerre(n, t.numpy()), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("measure", ["legs", "legt", "fout"])
def test_bases_are_orthonormal_on_the_window(measure):
    N, L = 9, 20000
    g = ops.basis(measure, N, ops.positions(L))  # midpoint rule on [0, 1]
    gram = g.T @ g / L
    torch.testing.assert_close(gram, torch.eye(N, dtype=F64), atol=1e-6, rtol=0)


def test_lagt_basis_is_orthonormal_on_the_half_line():
    N, span, L = 8, 200.0, 200000
    g = ops.basis("lagt", N, ops.positions(L), span)  # τ ∈ [0, 200]: e^{−τ/2} is negligible beyond
    torch.testing.assert_close(g.T @ g * span / L, torch.eye(N, dtype=F64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["forward", "backward", "bilinear", "zoh"])
def test_discretize_matches_scipy_cont2discrete(method):
    scipy_name = {"forward": "euler", "backward": "backward_diff", "bilinear": "bilinear", "zoh": "zoh"}[method]
    for measure in ("legt", "lagt", "fout"):  # fout with even N has a singular A: ZOH must still work
        A, B = ops.transition(measure, 8)
        Ad, Bd = ops.discretize(A, B, 0.01, method)
        ref = scipy_signal.cont2discrete((A.numpy(), B.numpy()[:, None], np.eye(8), np.zeros((8, 1))), 0.01,
                                         method=scipy_name)
        np.testing.assert_allclose(Ad.numpy(), ref[0], rtol=1e-10, atol=1e-12)
        # scipy's backward_diff B̄ is (I − ΔA)⁻¹ΔB as ours; its bilinear B̄ is scaled differently
        if method != "bilinear":
            np.testing.assert_allclose(Bd.numpy(), ref[1][:, 0], rtol=1e-10, atol=1e-12)
        else:
            M = torch.eye(8, dtype=F64) - 0.005 * A
            torch.testing.assert_close(Bd, torch.linalg.solve(M, 0.01 * B))


def test_legs_steps():
    """Step k: (A/k, B/k) with Δ = 1; ZOH in log-time: exp(A log((k+1)/k)), A⁻¹(Ā − I)B."""
    A, B = ops.transition("legs", 6)
    ks = torch.tensor([1, 7, 100])
    Ad, Bd = ops.legs_steps(A, B, ks, "bilinear")
    for i, k in enumerate(ks.tolist()):
        ref = ops.discretize(A / k, B / k, 1.0, "bilinear")
        torch.testing.assert_close(Ad[i], ref[0])
        torch.testing.assert_close(Bd[i], ref[1])
    Ad, Bd = ops.legs_steps(A, B, ks, "zoh")
    from scipy.linalg import expm

    E = expm(A.numpy() * math.log(8 / 7))
    np.testing.assert_allclose(Ad[1].numpy(), E, rtol=1e-12)
    np.testing.assert_allclose(Bd[1].numpy(), np.linalg.solve(A.numpy(), E @ B.numpy() - B.numpy()), rtol=1e-10)


def naive_lti(f, Ad, Bd):
    c = torch.zeros(*f.shape[:-1], Ad.shape[-1], dtype=F64)
    for k in range(f.shape[-1]):
        c = c @ Ad.T + f[..., k, None] * Bd
    return c


def naive_legs(f, A, B, method):
    c = torch.zeros(*f.shape[:-1], A.shape[-1], dtype=F64)
    for k in range(1, f.shape[-1] + 1):
        Ad, Bd = (t[0] for t in ops.legs_steps(A, B, torch.tensor([k]), method))
        c = c @ Ad.T + f[..., k - 1, None] * Bd
    return c


def test_kernel_and_tree_scan_equal_the_plain_recurrence():
    f = torch.randn(2, 3, 151, generator=torch.Generator().manual_seed(0), dtype=F64)
    A, B = ops.transition("legt", 10)
    Ad, Bd = ops.discretize(A, B, 1 / 151, "bilinear")
    torch.testing.assert_close(f @ mem.kernel(Ad, Bd, 151).T, naive_lti(f, Ad, Bd), rtol=1e-10, atol=1e-12)
    A, B = ops.transition("legs", 10)
    for method in ("bilinear", "zoh"):
        want = naive_legs(f, A, B, method)
        torch.testing.assert_close(mem.scan_legs(f, A, B, method), want, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(mem.scan_legs(f, A, B, method, budget=300), want, rtol=1e-10, atol=1e-12)


def test_legs_keeps_a_constant_exactly_and_reconstructs_polynomials():
    """c = e_0 (f ≡ 1) is a fixed point of every LegS step (A e_0 = −B); a cubic is held to
    discretisation error by LegS and LegT."""
    A, B = ops.transition("legs", 8)
    e0 = torch.eye(8, dtype=F64)[0]
    for method in ("backward", "bilinear", "zoh"):
        Ad, Bd = ops.legs_steps(A, B, torch.arange(1, 50), method)
        torch.testing.assert_close(Ad @ e0 + Bd, e0.expand(49, 8), atol=1e-12, rtol=0)
    x = ops.positions(2000)
    f = (x ** 3 - 0.7 * x)[None, None]
    # LegT also approximates the input leaving its window, f(t − θ), by its own reconstruction: the
    # kink of the zero-padded input at s = 0 leaves a small error that more samples do not remove
    for m, tol in (("legs", 1e-6), ("legt", 1e-3)):
        state, _ = mem.hippo_state(m, 8, f, "bilinear", face.Config(), 2000)
        assert mem.relative_mse(state @ ops.basis(m, 8, x).T, f).item() < tol


def test_legs_is_timescale_invariant():
    """The same function sampled at L and 4L: nearly the same LegS state (the gap shrinks as 1/L);
    LegT with its window fixed to L steps holds a different quarter of it."""
    spec = {"freq": torch.tensor([[[1.5, 3.0]]], dtype=F64), "sin_coef": torch.tensor([[[1.0, -0.5]]], dtype=F64),
            "cos_coef": torch.tensor([[[0.3, 0.2]]], dtype=F64)}
    f1, f4 = signals.sample(spec, 1000), signals.sample(spec, 4000)
    A, B = ops.transition("legs", 16)
    c1, c4 = mem.scan_legs(f1, A, B, "bilinear"), mem.scan_legs(f4, A, B, "bilinear")
    assert (c1 - c4).norm() / c4.norm() < 1e-2
    Ad, Bd = ops.discretize(*ops.transition("legt", 16), 1 / 1000, "bilinear")
    t1, t4 = f1 @ mem.kernel(Ad, Bd, 1000).T, f4 @ mem.kernel(Ad, Bd, 4000).T
    assert (t1 - t4).norm() / t4.norm() > 0.5


def test_baselines_lastn_and_ema():
    Ad, Bd = mem.baseline("lastn", 5, 50, 1, [], "cpu")
    K = mem.kernel(Ad, Bd, 50)[0]  # (N, L): the last 5 samples, newest first
    torch.testing.assert_close(K[:, -5:], torch.eye(5, dtype=F64).flip(-1))
    assert K[:, :-5].abs().max() == 0
    Ad, Bd = mem.baseline("ema", 4, 100, 2, [], "cpu")
    assert torch.allclose(mem.kernel(Ad, Bd, 2000)[0].sum(-1), torch.ones(4, dtype=F64), atol=1e-9)  # unit DC gain
    gens = [torch.Generator().manual_seed(k) for k in range(2)]
    Ad, _ = mem.baseline("random", 16, 100, 2, gens, "cpu")
    assert torch.linalg.eigvals(Ad).abs().max() < 1  # stable


def test_signals_are_continuous_functions(tmp_path):
    spec = signals.load(tmp_path, [11, 12], ("bandlimited", "randomwalk", "sines"), 3, 5.0, 100)
    again = signals.load(tmp_path, [11, 12], ("bandlimited", "randomwalk", "sines"), 3, 5.0, 100)
    assert all(torch.equal(spec[k], again[k]) for k in spec)
    f1, f3 = signals.sample(spec, 200), signals.sample(spec, 600, chunk=128)
    assert f1.shape == (2, 9, 200)
    torch.testing.assert_close(f3[..., 2::3], f1, rtol=1e-10, atol=1e-10)  # the same function, 3x denser
    assert not torch.allclose(f1[0], f1[1])  # seeds differ


def smoke_config():
    profile = {k: v for k, v in registry.info("hippo-memory").profiles["smoke"].items() if k != "seeds"}
    return cfglib.apply(face.Config, face.Config(), profile, "smoke")


def test_measurements_are_per_seed(tmp_path):
    """A seed's measurements do not depend on the seeds run beside it: seeds 0..7 at once and
    seeds 6, 7 alone (as sequential seeding adds them) agree on seeds 6 and 7, and every log
    line carries its seed index."""
    cfg = smoke_config()

    def measure(seeds):
        ctx = Context("hippo-memory", tmp_path / "-".join(map(str, seeds)), seeds, cache_dir=tmp_path / "cache")
        return run(cfg, ctx), ctx

    eight, _ = measure(list(range(8)))
    two, ctx = measure([6, 7])
    assert set(two) == set(eight) == set(face.arms(cfg))
    for key, metrics in two.items():
        # the baselines' least-squares read-out (pinv of an ill-conditioned K) amplifies the rounding
        # of a differently sized batch to ~1e-8; the HiPPO memories agree to rounding
        rtol = 1e-6 if any(b in key for b in face.BASELINES) else 1e-12
        for metric, values in metrics.items():
            assert len(eight[key][metric]) == 8
            np.testing.assert_allclose(values, eight[key][metric][6:], rtol=rtol, atol=0, err_msg=f"{key} {metric}")
    assert {r["seed"] for r in ctx.records} == {6, 7}


# ----------------------------------------------------------------------------- science (quick profile)
@pytest.mark.slow
def test_quick_profile_reproduces_every_claim(run_once):
    summary = run_once("hippo-memory").summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {"memory": "reproduced", "baselines": "reproduced", "timescale": "reproduced",
                        "discretisation": "reproduced"}
    m = summary["measurements"]
    legs = [np.mean(m[f"legs@N{n}"]["relmse"]) for n in (4, 16, 64)]
    assert legs[0] > legs[1] > legs[2]
    assert np.mean(m["legs@N64"]["relmse"]) < 1e-2  # LegS N=64: 3.7e-3 measured at quick scale


def test_same_command_same_bytes_and_resume(tmp_path):
    """Two runs give the same bytes; so does a run stopped by Ctrl-C after its memorise units and
    rerun (finishing only the units it lacked)."""
    runs, manifest = stopped_then_rerun("hippo-memory", tmp_path, 2)  # the 2nd progress task: timescale units
    assert manifest["status"] == "complete" and "memorise-N4" in manifest["resumed_units"]
    assert "discretisation" not in manifest["resumed_units"]
    assert_same_bytes(runs, ("metrics.jsonl", "table.csv", "table-timescale.csv", "summary.json"))
