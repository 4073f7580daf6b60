"""fp16-mixed: fp16 facts, the emulation against real fp16 arithmetic, the loss scaler against
torch.amp.GradScaler, and the verdicts (quick profile + negative controls)."""

import math

import pytest
import torch

import mlbench
from mlbench.core import runner
from mlbench.core.errors import UsageError
from mlbench.core.verdict import REPRODUCED
from mlbench.exps import fp16_mixed as exp

FP16, BF16 = ((0, 1, "float16"),), ((0, 1, "bfloat16"),)


def to16(x, segs=FP16):
    """Round a 1-D tensor as one model stored in `segs`' format."""
    return exp.round_models(torch.as_tensor(x, dtype=torch.float32)[None], segs)[0]


def test_fp16_limits():
    assert to16(2.0**-25).item() == 0.0  # a tie: rounds to even, i.e. 0
    assert to16(1.5 * 2.0**-25).item() == 2.0**-24  # smallest subnormal
    assert to16(2.0**-14).item() == 2.0**-14  # smallest normal
    assert to16(65504.0).item() == 65504.0 and math.isinf(to16(65520.0).item())
    assert to16(1.0 + 2.0**-11).item() == 1.0  # the lost update: u < 2^-11 |w|
    assert to16(1.0 + 2.0**-10).item() == 1.0 + 2.0**-10
    assert to16(2.0**-30, BF16).item() == 2.0**-30  # bf16 keeps fp32's range ...
    assert to16(1.0 + 2.0**-8, BF16).item() == 1.0  # ... with 7 mantissa bits


def test_segments_merge_and_round_each_model_in_its_format():
    formats = [None, "bfloat16", "float16", "float16"]
    segs = exp.segments(formats, seeds=2)
    assert segs == ((0, 2, None), (2, 4, "bfloat16"), (4, 8, "float16"))
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(0)) * 1e-3
    r = exp.round_models(x, segs)
    assert torch.equal(r[:2], x[:2])
    assert torch.equal(r[2:4], x[2:4].bfloat16().float())
    assert torch.equal(r[4:], x[4:].half().float())


def test_round_op_rounds_the_gradient_too():
    segs = exp.segments([None, "float16"], seeds=1)
    x = torch.ones(2, 3, requires_grad=True)
    (exp._round_op()(x, segs) * 2.0**-26).sum().backward()
    assert torch.all(x.grad[0] == 2.0**-26) and torch.all(x.grad[1] == 0)  # underflow in fp16 only


def test_emulated_layer_matches_real_fp16_matmul():
    """fp16 inputs, exact products, fp32 sums, fp16 output: torch's CPU fp16 bmm agrees to 1 ulp."""
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(3, 64, 128, generator=g), torch.randn(3, 128, 32, generator=g) * 0.1
    real = torch.bmm(x.half(), w.half()).float()
    emulated = exp.round_models(torch.bmm(x.half().float(), w.half().float()), exp.segments(["float16"], 3))
    torch.testing.assert_close(emulated, real, rtol=2.0**-10, atol=2.0**-24)


def test_no_master_update_is_real_fp16_arithmetic_and_master_update_is_torch_sgd():
    g = torch.Generator().manual_seed(2)
    w0, grad, v0 = torch.randn(2, 50, generator=g) * 0.1, torch.randn(2, 50, generator=g) * 1e-3, torch.randn(2, 50, generator=g) * 1e-3
    w16, g16, v16 = w0.half(), grad.half(), v0.half()
    lr, mu, s = 0.1, 0.9, 2.0**10
    params = {"w": torch.stack([w0[0], w16[1].float()]).requires_grad_(True)}
    params["w"].grad = torch.stack([grad[0] * s, g16[1].float()])  # model 0: fp32 master, scaled loss
    velocity = {"w": torch.stack([v0[0], v16[1].float()])}
    upd = exp.segments([None, "float16"], seeds=1)
    found_inf = exp.sgd_step(params, velocity, torch.tensor([s, 1.0]), upd, lr, mu)
    assert not found_inf.any()
    v_real = mu * v16[1] + g16[1]  # every op rounded to fp16 by torch itself
    assert torch.equal(velocity["w"][1], v_real.float())
    assert torch.equal(params["w"][1].detach(), (w16[1] - lr * v_real).float())
    ref = torch.nn.Parameter(w0[0].clone())
    opt = torch.optim.SGD([ref], lr=lr, momentum=mu)
    opt.state[ref]["momentum_buffer"] = v0[0].clone()
    ref.grad = grad[0].clone()
    opt.step()
    torch.testing.assert_close(params["w"][0].detach(), ref.detach(), rtol=0, atol=1e-7)


def test_step_is_skipped_on_inf_for_that_model_only():
    params = {"w": torch.ones(2, 3, requires_grad=True)}
    params["w"].grad = torch.tensor([[1.0, float("inf"), 1.0], [1.0, 1.0, 1.0]])
    velocity = {"w": torch.zeros(2, 3)}
    found_inf = exp.sgd_step(params, velocity, torch.ones(2), exp.segments([None], 2), 0.1, 0.9)
    assert found_inf.tolist() == [True, False]
    assert torch.equal(params["w"][0], torch.ones(3)) and torch.equal(velocity["w"][0], torch.zeros(3))
    assert torch.all(params["w"][1] < 1)


@pytest.mark.parametrize("interval", [1, 3, 2000])
def test_loss_scaler_matches_torch_gradscaler_step_for_step(interval):
    """Same inf/finite sequence through torch.amp.GradScaler (CPU) and our vectorised rule."""
    gen = torch.Generator().manual_seed(interval)
    models = 4
    bad = torch.rand(60, models, generator=gen) < torch.tensor([0.0, 0.1, 0.3, 0.7])  # (steps, models)
    refs = [torch.nn.Parameter(torch.ones(3)) for _ in range(models)]
    opts = [torch.optim.SGD([p], lr=0.1) for p in refs]
    scalers = [torch.amp.GradScaler("cpu", init_scale=2.0**16, growth_interval=interval) for _ in range(models)]
    scale, tracker = torch.full((models,), 2.0**16), torch.zeros(models, dtype=torch.long)
    for row in bad:
        stepped = []
        for m, (p, opt, scaler) in enumerate(zip(refs, opts, scalers)):
            before = p.detach().clone()
            scaler.scale(p.sum())  # GradScaler needs scale() once per iteration
            p.grad = torch.full((3,), float("inf") if row[m] else scaler.get_scale())  # unscales to 1
            scaler.step(opt)
            scaler.update()
            stepped.append(not torch.equal(before, p.detach()))
        assert stepped == (~row).tolist()  # GradScaler skipped exactly the inf steps, as sgd_step does
        scale, tracker = exp.update_scale(scale, tracker, row, interval)
        assert scale.tolist() == [s.get_scale() for s in scalers]


def test_config_validation_and_claims():
    with pytest.raises(ValueError):
        exp.Config(steps=10, census_steps=(10,)).validate()
    ids = [c.id for c in exp.claims(exp.Config())]
    assert ids[0] == "mixed-precision" and "amp-speed" not in ids
    assert "amp-speed" in [c.id for c in exp.claims(exp.Config(amp_benchmark=True))]
    specs = exp.arm_specs(exp.Config(negative_control=True))
    assert not specs["fp16-dynamic"][1] and not specs["fp16-static"][1] and specs["fp16-noscale"][1]


def test_gpu_lm_pieces_run_on_cpu():
    """The full profile's LM (tokens, forward, loss) at toy size: near-uniform loss at init, gradients flow."""
    cfg = exp.Config(amp_d_model=64, amp_layers=1, amp_seq_len=16, amp_batch=2, amp_vocab=32)
    gen = torch.Generator().manual_seed(0)
    tokens = exp.lm_tokens(cfg, gen, n_batches=3)
    assert tokens.shape == (3, 2, 17) and int(tokens.max()) < 32
    shapes = {"emb": (32, 64), "pos": (16, 64), "qkv0": (192, 64), "proj0": (64, 64), "fc0": (256, 64), "out0": (64, 256)}
    p = {n: (torch.randn(*s, generator=gen) * 0.02).requires_grad_(True) for n, s in shapes.items()}
    loss = exp.lm_loss(p, tokens[0].long(), layers=1)
    assert loss.item() == pytest.approx(math.log(32), rel=0.05)
    loss.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in p.values())


def test_full_profile_on_cpu_is_a_clear_usage_error(tmp_path):
    with pytest.raises(UsageError, match="--device cuda"):  # refused in resolve: nothing written
        runner.resolve("fp16-mixed", profile="full", device="cpu", results=tmp_path)
    assert not any(tmp_path.iterdir())


def test_batched_seeds_equal_one_at_a_time(tmp_path):
    one = mlbench.run("fp16-mixed", profile="smoke", seeds=1, results=tmp_path, threads=1).summary["measurements"]
    two = mlbench.run("fp16-mixed", profile="smoke", seeds=2, results=tmp_path, threads=1).summary["measurements"]
    for arm in exp.ARMS:
        for key in ("test_acc", "train_loss", "final_scale"):
            assert one[arm][key][0] == two[arm][key][0], (arm, key)


# ----------------------------------------------------------------------------- science (quick profile)
@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return mlbench.run("fp16-mixed", profile="quick", results=tmp_path_factory.mktemp("quick"), threads=1)


@pytest.mark.slow
def test_quick_profile_verdicts(quick):
    verdicts = {c["id"]: c["verdict"] for c in quick.summary["claims"]}
    assert quick.summary["verdict"] == REPRODUCED
    for claim in ("mixed-precision", "underflow", "master-weights", "bf16"):
        assert verdicts[claim] == REPRODUCED, claim
    assert verdicts["unscaled-hurts"] != REPRODUCED  # at digits scale, underflow costs no accuracy


@pytest.mark.slow
def test_quick_profile_artefacts(quick):
    from safetensors import safe_open

    run_dir = quick.run_dir
    assert (run_dir / "table.csv").read_text().count("\n") == 1 + len(exp.ARMS)
    assert {"underflow.png", "training.png"} <= {p.name for p in (run_dir / "plots").iterdir()}
    with safe_open(str(run_dir / "checkpoints" / "fp16-pure-seed0.safetensors"), "pt") as f:
        assert f.get_tensor("w0").dtype == torch.float16  # no master copy: the weights are fp16
    m = quick.summary["measurements"]
    assert min(m["scale-1"]["zeroed_frac"]) > 0.2 > max(m["scale-dynamic"]["zeroed_frac"])


@pytest.mark.slow
def test_negative_control_without_master_weights_is_not_reproduced(tmp_path):
    res = mlbench.run("fp16-mixed", profile="quick", results=tmp_path, threads=1, sets=["negative_control=true"])
    assert res.summary["verdict"] != REPRODUCED


@pytest.mark.slow
def test_underflow_claim_fails_at_initialisation(tmp_path):
    """Gradients at step 0 are large: the underflow claim must not reproduce there."""
    res = mlbench.run("fp16-mixed", profile="smoke", results=tmp_path, threads=1, sets=["census_steps=0"])
    underflow = next(c for c in res.summary["claims"] if c["id"] == "underflow")
    assert underflow["verdict"] != REPRODUCED
