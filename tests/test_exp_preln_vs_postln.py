"""preln-vs-postln: the layers against nn.TransformerEncoderLayer, the inits against torch's, the
stacking, the derived slopes, the warm-up study's schedule and Adam, the verdicts."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

import mlbench
from mlbench.core import spec as speclib
from mlbench.core.context import Context
from mlbench.core.errors import MlbenchError, UsageError
from mlbench.core.grid import Grid
from mlbench.core.verdict import NOT_REPRODUCED, REPRODUCED
from mlbench.exps import preln_vs_postln as exp
from mlbench.exps.preln_vs_postln import run, transformer, warmup

D, H, D_FF, V, L, B, T = 16, 2, 32, 11, 3, 3, 5


def _stacked(init, seeds=2, embed_std=0.25):
    g = torch.Generator().manual_seed(7)
    draws = transformer.bank([transformer.draw(D, D_FF, V, L, embed_std, g) for _ in range(seeds)])
    b = transformer.bounds(init, D, D_FF, V)
    return transformer.members(draws, torch.arange(seeds), {n: torch.full((seeds,), v) for n, v in b.items()})


def _reference(p, m, tokens, pre):
    """Member m rebuilt from torch's own modules (train mode, dropout 0): the W² gradient of each layer and the loss."""
    layers = nn.ModuleList(nn.TransformerEncoderLayer(D, H, D_FF, dropout=0.0, batch_first=True, norm_first=pre)
                           for _ in range(L)).train()
    head = nn.Linear(D, V)
    with torch.no_grad():
        for l, layer in enumerate(layers):
            layer.self_attn.in_proj_weight.copy_(p["w_in"][l, m].T)
            layer.self_attn.in_proj_bias.zero_()
            layer.self_attn.out_proj.weight.copy_(p["w_out"][l, m].T)
            layer.self_attn.out_proj.bias.zero_()
            layer.linear1.weight.copy_(p["w1"][l, m].T), layer.linear1.bias.copy_(p["b1"][l, m])
            layer.linear2.weight.copy_(p["w2"][l, m].T), layer.linear2.bias.copy_(p["b2"][l, m])
        head.weight.copy_(p["w_head"][m].T), head.bias.copy_(p["b_head"][m])
    h = F.embedding(tokens[:, :-1], p["embed"][m])
    mask = nn.Transformer.generate_square_subsequent_mask(T)
    for layer in layers:
        h = layer(h, src_mask=mask, is_causal=True)
    if pre:
        h = nn.LayerNorm(D)(h)
    loss = F.cross_entropy(head(h).flatten(0, 1), tokens[:, 1:].flatten())
    loss.backward()
    return torch.stack([layer.linear2.weight.grad.norm() for layer in layers]), loss.detach()


@pytest.mark.parametrize("init", exp.INITS)
@pytest.mark.parametrize("placements", [(False, False), (True, True), (False, True)])
def test_stacked_layers_match_torch_transformer_encoder_layer(init, placements):
    p = _stacked(init)
    tokens = torch.randint(V, (2, B, T + 1), generator=torch.Generator().manual_seed(3))
    pre = torch.tensor(placements).view(-1, 1, 1)
    norms, loss = transformer.w2_gradient_norms(p, tokens, pre, H)
    for m in range(2):
        want_norms, want_loss = _reference(p, m, tokens[m], placements[m])
        torch.testing.assert_close(norms[m].float(), want_norms, rtol=2e-5, atol=1e-7)
        torch.testing.assert_close(loss[m], want_loss, rtol=1e-6, atol=1e-6)


def test_default_init_is_torch_default_and_xavier_is_the_closed_form():
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(128, 4, 512)
    mine = transformer.bounds("default", 128, 512, 256)
    for name, tensor in (("w_in", ref.self_attn.in_proj_weight), ("w_out", ref.self_attn.out_proj.weight),
                         ("w1", ref.linear1.weight), ("b1", ref.linear1.bias), ("w2", ref.linear2.weight),
                         ("b2", ref.linear2.bias)):
        top, n = tensor.detach().abs().max().item(), tensor.numel()  # the max of n U(−b, b) draws is b(1 − O(1/n))
        assert mine[name] * (1 - 5 / n) < top <= mine[name] * (1 + 1e-6), name
    assert mine["w2"] ** 2 / 3 == pytest.approx(1 / 1536)  # kaiming_uniform(a=√5): 1 / (3 fan_in)
    xavier = transformer.bounds("xavier", 128, 512, 256)
    assert xavier["w2"] ** 2 / 3 == pytest.approx(1 / 320)  # 2 / (fan_in + fan_out)
    w = nn.init.xavier_uniform_(torch.empty(128, 512))  # torch's (out, in) = linear2
    assert w.abs().max().item() == pytest.approx(xavier["w2"], rel=0.01)
    drawn = transformer.members(transformer.bank([transformer.draw(128, 512, 256, 2, 1.0, torch.Generator().manual_seed(1))]),
                                torch.tensor([0]), {n: torch.tensor([v]) for n, v in xavier.items()})
    assert drawn["w2"].var().item() == pytest.approx(1 / 320, rel=0.03)
    assert xavier["b1"] == xavier["b2"] == 0.0


def _ctx(tmp_path, seeds=(0, 1)):
    return Context("preln-vs-postln", tmp_path / "run", list(seeds), cache_dir=tmp_path / "cache")


def test_passes_over_members_change_no_number(tmp_path):
    cfg = exp.Config(depths=(2, 3), d_models=(16,), n_heads=2, vocab=32, seq_len=8, batch_size=4)
    ctx = _ctx(tmp_path)
    tokens = run.token_batches(cfg, ctx)
    one = run.gradients_at_init(exp.Config(**{**cfg.__dict__, "layer_models_per_pass": 1}), ctx, 16, 3, tokens)
    all_ = run.gradients_at_init(exp.Config(**{**cfg.__dict__, "layer_models_per_pass": 1000}), ctx, 16, 3, tokens)
    assert one["profile"] == all_["profile"]  # 8 passes of one model vs one pass of all 8
    saved = load_file(tmp_path / "run" / "checkpoints" / "pre@d16,L3,init=xavier-seed1.safetensors")
    assert saved["w2_grad_norm"].tolist() == pytest.approx(all_["profile"][exp.key("pre", 16, 3, "xavier")][1], rel=1e-6)


def test_derived_slopes_match_numpy_polyfit():
    depths = (6, 12, 24)
    cfg = exp.Config(depths=depths, inits=("xavier",))
    rng = np.random.default_rng(0)
    m = {exp.key(p, 128, L, "xavier"): {"log_grad_last": list(rng.normal(size=3)), "log_last_first": list(rng.normal(size=3))}
         for p in exp.PLACEMENTS for L in depths}
    run.derive(cfg, m)
    xs = np.log(depths)
    for k in range(3):
        pre = [m[exp.key("pre", 128, L, "xavier")]["log_grad_last"][k] for L in depths]
        post = [m[exp.key("post", 128, L, "xavier")]["log_grad_last"][k] for L in depths]
        s = m[exp.slopes_key(128, "xavier")]
        assert s["pre_slope"][k] == pytest.approx(np.polyfit(xs, pre, 1)[0])
        assert s["slope_gap"][k] == pytest.approx(np.polyfit(xs, np.subtract(post, pre), 1)[0])
    headline = exp.claims(cfg)[0].test(m)  # the claim's Trend and the tabled slope are one number
    assert headline.parts[0]["effect"] == pytest.approx(np.mean(m[exp.slopes_key(128, "xavier")]["pre_slope"]))


def test_negative_control_makes_the_two_arms_one_model(tmp_path):
    m = mlbench.run("preln-vs-postln", profile="smoke", results=tmp_path, sets=["negative_control=true"]).summary["measurements"]
    for init in exp.INITS:
        for L in (2, 4):
            assert m[exp.gap_key(16, L, init)]["log_grad_ratio"] == [0.0, 0.0]


def test_warmup_schedule():
    W = 4
    assert [warmup.schedule(t, W, True) for t in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert [warmup.schedule(t, W, False) for t in range(4)] == [1.0] * 4
    for t in (4, 9, 99):  # after the warm-up both arms decay alike, lr·√(W / t)
        assert warmup.schedule(t, W, True) == warmup.schedule(t, W, False) == pytest.approx(math.sqrt(W / (t + 1)))


def test_stacked_adam_matches_torch_adam_per_member():
    g = torch.Generator().manual_seed(5)
    start = {"w2": torch.randn(3, 2, 4, 5, generator=g), "embed": torch.randn(2, 6, 4, generator=g)}  # (L, M, ..), (M, ..)
    lrs = torch.tensor([1e-2, 3e-3])
    mine = {n: t.clone().requires_grad_() for n, t in start.items()}
    theirs = [{n: (t[:, m] if n == "w2" else t[m]).clone().requires_grad_() for n, t in start.items()} for m in range(2)]
    opts = [torch.optim.Adam(list(theirs[m].values()), lr=lrs[m].item(), betas=(0.9, 0.98), eps=1e-8) for m in range(2)]
    state = {}
    for t in range(1, 4):
        target = torch.randn(3, 2, 4, 5, generator=g)
        for p in mine.values():
            p.grad = None
        ((mine["w2"] - target) ** 2).sum().add(mine["embed"].pow(3).sum()).backward()
        warmup.adam_step(mine, state, lrs, t, 0.98)
        for m in range(2):
            opts[m].zero_grad()
            ((theirs[m]["w2"] - target[:, m]) ** 2).sum().add(theirs[m]["embed"].pow(3).sum()).backward()
            opts[m].step()
    for m in range(2):
        torch.testing.assert_close(mine["w2"][:, m].detach(), theirs[m]["w2"].detach(), rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(mine["embed"][m].detach(), theirs[m]["embed"].detach(), rtol=1e-6, atol=1e-7)


def test_a_diverged_model_counts_as_a_failure():
    grid = Grid(("a", "b"), (0, 1))
    grid.watch([1.0, float("nan"), 1.0, 1.0], step=3)
    m = warmup._measurements(grid, [2.0, float("nan"), 2.5, 2.4], vocab=50)
    assert m["a"]["final_loss"] == [2.0, math.log(50)] and m["a"]["final_loss.censored"] == [0.0, 1.0]
    assert m["b"]["log_final_loss"] == pytest.approx([math.log(2.5), math.log(2.4)])


TINY_TRAINING = ["train_steps=12", "train_d_model=16", "train_layers=2", "train_context=16", "train_batch=8",
                 "corpus_chars=20000", "eval_every=4", "eval_windows=16", "warmup_steps=4"]


def test_warmup_study_trains_on_cpu_and_the_full_profile_is_refused_there(tmp_path):
    res = mlbench.run("preln-vs-postln", profile="smoke", results=tmp_path, threads=1, sets=TINY_TRAINING)
    m = res.summary["measurements"]
    keys = [exp.train_key(p, w, lr) for lr in exp.Config().train_lrs for w in (0, 4) for p in exp.PLACEMENTS]
    assert all(0 < x < 4.5 for k in keys for x in m[k]["final_loss"])  # learned something: below ln(alphabet)
    assert {"postln-needs-warmup", "preln-without-warmup"} <= {c["id"] for c in res.summary["claims"]}
    assert (res.run_dir / "table-warmup.csv").is_file() and (res.run_dir / "plots" / "warmup.png").is_file()
    with pytest.raises(UsageError, match="GPU-sized"):
        speclib.resolve("preln-vs-postln", profile="full", device="cpu")
    with pytest.raises(UsageError, match="warm-up study is GPU-sized"):
        speclib.resolve("preln-vs-postln", profile="full", device="cpu", sets=["depths=6,12", "d_models=128"])


def test_bad_configs_are_refused_before_anything_runs(tmp_path):
    for bad in (["inits=default"], ["inits=xavier,xavier"], ["depths=6"], ["depths=6,6"], ["n_heads=3"],
                ["depths=1,2"], ["batch_size=0"]):
        with pytest.raises(MlbenchError):
            mlbench.run("preln-vs-postln", profile="smoke", results=tmp_path, sets=bad)
    assert not (tmp_path / "preln-vs-postln").exists()


@pytest.mark.slow
def test_quick_profile_verdicts(run_once):
    summary = run_once("preln-vs-postln").summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts["depth-scaling"] == REPRODUCED and verdicts["post-grows-to-output"] == REPRODUCED
    assert verdicts["depth-scaling-default-init"] == REPRODUCED
    # the finding: with PyTorch's default init the growth toward the output is gone (ratio ~0.9)
    assert verdicts["post-grows-to-output-default-init"] != REPRODUCED
    s = summary["measurements"][exp.slopes_key(128, "xavier")]
    assert -0.75 < np.mean(s["pre_slope"]) < -0.25 and np.mean(s["post_slope"]) > -0.1


@pytest.mark.slow
def test_negative_control_gap_is_exactly_zero(run_once):
    summary = run_once("preln-vs-postln", sets=("negative_control=true",)).summary
    assert summary["measurements"][exp.slopes_key(128, "xavier")]["slope_gap"] == [0.0] * 5
    assert {c["id"]: c["verdict"] for c in summary["claims"]}["depth-scaling"] == NOT_REPRODUCED
