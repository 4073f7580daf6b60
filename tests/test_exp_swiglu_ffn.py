"""swiglu-ffn: the FFN formulas, the parameter match, the corpus, the stacking, the verdicts."""

import math
import random

import pytest
import torch
import torch.nn.functional as F

import mlbench
from mlbench.core import spec as speclib
from mlbench.core.context import Context
from mlbench.core.errors import MlbenchError, UsageError
from mlbench.core.grid import Grid
from mlbench.core.verdict import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from mlbench.data import code_corpus
from mlbench.exps import swiglu_ffn as exp
from mlbench.exps.swiglu_ffn import ffn, lm, run, transformer


def _reference(arm, x, w, v, w2):
    """Each variant written with nn.Linear (bias-free) and its textbook activation, not ffn.ACTIVATIONS."""
    lin = lambda t: torch.nn.Linear(t.shape[0], t.shape[1], bias=False).requires_grad_(False)
    W, V, W2 = lin(w), lin(v), lin(w2)
    W.weight.copy_(w.T), V.weight.copy_(v.T), W2.weight.copy_(w2.T)
    erf_gelu = lambda z: 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))
    if arm == "glu":  # torch's own GLU: first half ⊗ σ(second half)
        return W2(F.glu(torch.cat([V(x), W(x)], -1), dim=-1))
    hidden = {"relu": lambda: W(x).clamp_min(0), "gelu": lambda: erf_gelu(W(x)),
              "swish": lambda: W(x) * torch.sigmoid(W(x)), "bilinear": lambda: W(x) * V(x),
              "reglu": lambda: W(x).clamp_min(0) * V(x), "geglu": lambda: erf_gelu(W(x)) * V(x),
              "swiglu": lambda: W(x) * torch.sigmoid(W(x)) * V(x)}[arm]()
    return W2(hidden)


@pytest.mark.parametrize("arm", exp.VARIANTS)
def test_ffn_matches_an_independent_computation(arm):
    g = torch.Generator().manual_seed(1)
    d, d_ff, S, L, B = 8, 12, 2, 2, 5
    z = {"w1": torch.randn(S, L, d, d_ff, generator=g), "v": torch.randn(S, L, d, d_ff, generator=g),
         "w2": torch.randn(S, L, d_ff, d, generator=g)}
    p = ffn.init_ffn(arm, z, d_ff, L)
    x = torch.randn(S, B, d, generator=g)
    got = ffn.ffn(arm, x, p, layer=1)
    for s in range(S):
        w = p["w"][s, 1] if arm in ffn.GATED else p["w1"][s, 1]
        v = p["v"][s, 1] if arm in ffn.GATED else torch.zeros_like(w)
        torch.testing.assert_close(got[s], _reference(arm, x[s], w, v, p["w2"][s, 1]), rtol=1e-5, atol=1e-6)


def test_two_thirds_rule_keeps_parameters_equal():
    assert ffn.gated_width(3072) == 2048 and ffn.gated_width(512) == 341 and ffn.gated_width(384) == 256
    assert ffn.ffn_params("relu", 128, 512) == 131_072 and ffn.ffn_params("swiglu", 128, 512) == 130_944
    cfg, vocab = exp.Config(), 49
    counts = {arm: lm.param_count(cfg, arm, vocab) for arm in exp.VARIANTS}
    assert len(set(counts.values())) == 1  # d_ff 384 -> 256: exactly equal
    for model, c in ((lm, cfg), (transformer, exp.Config(model="transformer", d_ff=512, d_model=64, context=16))):
        grid = Grid(exp.VARIANTS, (0,))
        shared, ffns = model.init_params(c, grid, vocab, [torch.Generator().manual_seed(0)])
        for arm in exp.VARIANTS:  # the closed form against the tensors actually built
            numel = sum(p[0].numel() for p in shared.values()) + sum(p[0].numel() for p in ffns[arm].values())
            assert model.param_count(c, arm, vocab) == numel, (model.__name__, arm)
            assert abs(numel / model.param_count(c, "relu", vocab) - 1) < 0.005


class _OnlyRandom:
    """A random.Random that offers `random()` alone: any other draw raises AttributeError."""
    _real = random.Random

    def __init__(self, seed):
        self._rng = self._real(seed)

    def random(self):
        return self._rng.random()


def test_corpus_draws_only_the_version_stable_method(monkeypatch):
    monkeypatch.setattr(code_corpus.random, "Random", _OnlyRandom)
    text = "".join(r["text"] for r in code_corpus._procedural_rows(seed=3, n_chars=50_000))
    assert len(text) >= 50_000


def test_procedural_corpus_is_pinned_and_well_formed():
    """The text of seed 0 is fixed forever (a changed generator must bump VERSION and this hash)."""
    import hashlib

    text = "".join(r["text"] for r in code_corpus._procedural_rows(seed=0, n_chars=200_000))[:200_000]
    assert hashlib.sha256(text.encode()).hexdigest() == \
        "b10f7169cce8706fff0486fadd834ae77b14566e5cde0212c2b2d1b91e228f32"
    for line in text.splitlines():
        assert (len(line) - len(line.lstrip(" "))) % 4 == 0, line
        assert line.count("(") == line.count(")"), line
    assert text != "".join(r["text"] for r in code_corpus._procedural_rows(seed=1, n_chars=200_000))[:200_000]


def test_negative_control_keeps_unigram_counts(tmp_path):
    ctx = Context("swiglu-ffn", tmp_path / "run", [0], cache_dir=tmp_path / "cache")
    cfg = exp.Config(corpus_chars=20_000)
    plain, shuffled = (run.load_corpus(cfg, ctx), run.load_corpus(exp.Config(corpus_chars=20_000, negative_control=True), ctx))
    both = lambda d: torch.cat([d["train"], d["heldout"]])
    assert torch.equal(torch.bincount(both(plain)), torch.bincount(both(shuffled)))
    assert not torch.equal(both(plain), both(shuffled))
    assert plain["unigram_entropy"] == pytest.approx(shuffled["unigram_entropy"]) and 0 < plain["unigram_entropy"] < math.log(49)


def test_every_seed_and_spearman():
    m = {"a": {"x": [2.0, 3.0, 1.0]}, "b": {"x": [1.0, 1.0, 1.5]}, "c": {"x": [3.0, 3.0, 3.0]}}
    assert exp.EverySeed("x", "a", "b")(m).verdict == INCONCLUSIVE  # 2/3 seeds
    assert exp.EverySeed("x", "c", "b")(m).verdict == REPRODUCED
    assert exp.EverySeed("x", "b", "c")(m).verdict == NOT_REPRODUCED
    from scipy.stats import spearmanr

    xs, ys = [0.3, 0.1, 0.7, 0.5, 0.2], [1.0, 3.0, 2.0, 5.0, 4.0]
    assert run.spearman(xs, ys) == pytest.approx(spearmanr(xs, ys).statistic)


def test_transformer_attention_is_causal_softmax():
    g = torch.Generator().manual_seed(2)
    M, B, T, d, H = 2, 3, 5, 8, 2
    x, w_qkv, w_o = torch.randn(M, B, T, d, generator=g), torch.randn(M, d, 3 * d, generator=g), torch.randn(M, d, d, generator=g)
    got = transformer.attention(x, w_qkv, w_o, H)
    q, k, v = (x @ w_qkv[:, None]).split(d, -1)  # (M, B, T, d) each
    heads = lambda t: t.view(M, B, T, H, d // H).transpose(2, 3)  # (M, B, H, T, dh)
    scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(d // H)
    scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), -math.inf)
    want = (scores.softmax(-1) @ heads(v)).transpose(2, 3).reshape(M, B, T, d) @ w_o[:, None]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_stacking_changes_nothing(tmp_path):
    """Seed 0 of relu/swiglu trained alone, and beside seed 1 and two more arms: the same losses."""
    base = ["corpus_chars=50000", "d_model=16", "d_ff=48", "steps=10", "batch_size=32", "eval_positions=256"]
    alone = mlbench.run("swiglu-ffn", profile="smoke", seeds=1, results=tmp_path, threads=1,
                        sets=base + ["arms=relu,swiglu"]).summary["measurements"]
    stacked = mlbench.run("swiglu-ffn", profile="smoke", seeds=2, results=tmp_path, threads=1,
                          sets=base + ["arms=relu,gelu,swiglu,bilinear"]).summary["measurements"]
    for arm in ("relu", "swiglu"):
        assert stacked[arm]["loss"][0] == pytest.approx(alone[arm]["loss"][0], abs=1e-5)


def test_transformer_trains_on_cpu_and_full_profile_is_refused_there(tmp_path):
    res = mlbench.run("swiglu-ffn", profile="smoke", results=tmp_path, threads=1,
                      sets=["model=transformer", "context=16", "arms=relu,geglu,swiglu"])
    m = res.summary["measurements"]
    assert all(math.isfinite(x) and x < math.log(49) for arm in ("relu", "geglu", "swiglu") for x in m[arm]["loss"])
    assert "geglu-equals-swiglu" in {c["id"] for c in res.summary["claims"]}
    with pytest.raises(UsageError, match="GPU-sized"):
        speclib.resolve("swiglu-ffn", profile="full", device="cpu")


def test_bad_arms_are_refused_before_anything_runs(tmp_path):
    for bad in (["arms=relu,gelu"], ["arms=relu,swiglu,tanh"], ["arms=relu,swiglu,swiglu"], ["d_model=2"],
                ["corpus_chars=20000", "context=2048"]):  # held-out tail 2000 chars < one window
        with pytest.raises(MlbenchError):
            mlbench.run("swiglu-ffn", profile="smoke", results=tmp_path, sets=bad)
    assert not (tmp_path / "swiglu-ffn").exists()


@pytest.mark.slow
def test_quick_profile_verdicts(run_once):
    summary = run_once("swiglu-ffn").summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {"swiglu-beats-relu": REPRODUCED, "gate-carries-gain": REPRODUCED,
                        "gelu-small-step": REPRODUCED}


@pytest.mark.slow
def test_negative_control_reaches_the_unigram_entropy(run_once):
    """Shuffled characters: every arm's loss sits at the unigram entropy and the gain is gone."""
    res = run_once("swiglu-ffn", sets=("negative_control=true",))
    m = res.summary["measurements"]
    import csv

    with open(res.run_dir / "table-corpus.csv", newline="") as fh:
        entropy = float(next(csv.DictReader(fh))["unigram_entropy"])
    for arm in exp.Config().arms:  # each seed's own held-out positions: its loss scatters ~0.01-0.03
        assert all(abs(x - entropy) < 0.05 for x in m[arm]["loss"]), (arm, m[arm]["loss"], entropy)
        assert all(abs(g) < 0.5 for g in m[arm]["rel_gain_pct"]), (arm, m[arm]["rel_gain_pct"])
