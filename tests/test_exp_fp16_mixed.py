"""fp16-mixed: fp16 facts, the emulation against real fp16 arithmetic, the loss scaler and the
whole scaled-update recipe against torch.amp.GradScaler + torch.optim.SGD, the census on known
values, and the verdicts (quick profile, and the underflow claim early in training)."""

import math

import pytest
import torch

import mlbench
from mlbench.core import runner
from mlbench.core.errors import ConfigError, UsageError
from mlbench.core.grid import Grid
from mlbench.core.verdict import NOT_REPRODUCED, REPRODUCED
from mlbench.exps import fp16_mixed as exp
from mlbench.exps.fp16_mixed import census, lm
from mlbench.exps.fp16_mixed.loss_scaling import LossScaler, scaled_backward, update_scale
from mlbench.exps.fp16_mixed.master_weights import sgd_step
from mlbench.exps.fp16_mixed.precision import Round, Storage, forward


def storage(*formats, seeds=1):
    """A grid of one arm per format (arms a0, a1, ...) and its Storage."""
    grid = Grid(tuple(f"a{i}" for i in range(len(formats))), tuple(range(seeds)))
    return Storage(grid, {arm: fmt for arm, fmt in zip(grid.arms, formats)})


def to16(x, fmt="float16"):
    """Round a 1-D tensor as one member stored in `fmt`."""
    return storage(fmt).round(torch.as_tensor(x, dtype=torch.float32)[None])[0]


def test_fp16_limits():
    assert to16(2.0**-25).item() == 0.0  # a tie: rounds to even, i.e. 0
    assert to16(1.5 * 2.0**-25).item() == 2.0**-24  # smallest subnormal
    assert to16(2.0**-14).item() == 2.0**-14  # smallest normal
    assert to16(65504.0).item() == 65504.0 and math.isinf(to16(65520.0).item())
    assert to16(1.0 + 2.0**-11).item() == 1.0  # the lost update: u < 2^-11 |w|
    assert to16(1.0 + 2.0**-10).item() == 1.0 + 2.0**-10
    assert to16(2.0**-30, "bfloat16").item() == 2.0**-30  # bf16 keeps fp32's range ...
    assert to16(1.0 + 2.0**-8, "bfloat16").item() == 1.0  # ... with 7 mantissa bits


def test_storage_rounds_each_arm_in_its_format():
    s = storage(None, "bfloat16", "float16", "float16", seeds=2)
    x = torch.randn(8, 5, generator=torch.Generator().manual_seed(0)) * 1e-3
    r = s.round(x)
    assert torch.equal(r[:2], x[:2])
    assert torch.equal(r[2:4], x[2:4].bfloat16().float())
    assert torch.equal(r[4:], x[4:].half().float())
    fp32_only = x[:2]
    assert storage(None, None).round(fp32_only) is fp32_only  # nothing to round: no copy


def test_round_op_rounds_the_gradient_too():
    x = torch.ones(2, 3, requires_grad=True)
    (Round.apply(x, storage(None, "float16")) * 2.0**-26).sum().backward()
    assert torch.all(x.grad[0] == 2.0**-26) and torch.all(x.grad[1] == 0)  # underflow in fp16 only


def test_emulated_layer_matches_real_fp16_matmul():
    """fp16 inputs, exact products, fp32 sums, fp16 output: torch's CPU fp16 bmm agrees to 1 ulp."""
    g = torch.Generator().manual_seed(1)
    x, w = torch.randn(3, 64, 128, generator=g), torch.randn(3, 128, 32, generator=g) * 0.1
    real = torch.bmm(x.half(), w.half()).float()
    emulated = storage("float16", seeds=3).round(torch.bmm(x.half().float(), w.half().float()))
    torch.testing.assert_close(emulated, real, rtol=2.0**-10, atol=2.0**-24)


def test_no_master_update_is_real_fp16_arithmetic_and_master_update_is_torch_sgd():
    g = torch.Generator().manual_seed(2)
    w0, grad, v0 = (torch.randn(2, 50, generator=g) * s for s in (0.1, 1e-3, 1e-3))
    w16, g16, v16 = w0.half(), grad.half(), v0.half()
    lr, mu, s = 0.1, 0.9, 2.0**10
    params = {"w": torch.stack([w0[0], w16[1].float()]).requires_grad_(True)}
    params["w"].grad = torch.stack([grad[0] * s, g16[1].float()])  # member 0: fp32 master, scaled loss
    velocity = {"w": torch.stack([v0[0], v16[1].float()])}
    found_inf = sgd_step(params, velocity, torch.tensor([s, 1.0]), storage(None, "float16"), lr, mu)
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


def test_step_is_skipped_on_inf_for_that_member_only():
    params = {"w": torch.ones(2, 3, requires_grad=True)}
    params["w"].grad = torch.tensor([[1.0, float("inf"), 1.0], [1.0, 1.0, 1.0]])
    velocity = {"w": torch.zeros(2, 3)}
    found_inf = sgd_step(params, velocity, torch.ones(2), storage(None, seeds=2), 0.1, 0.9)
    assert found_inf.tolist() == [True, False]
    assert torch.equal(params["w"][0], torch.ones(3)) and torch.equal(velocity["w"][0], torch.zeros(3))
    assert torch.all(params["w"][1] < 1)


@pytest.mark.parametrize("interval", [1, 3, 2000])
def test_update_scale_matches_torch_gradscaler_step_for_step(interval):
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
        scale, tracker = update_scale(scale, tracker, row, interval)
        assert scale.tolist() == [s.get_scale() for s in scalers]


def test_dynamic_recipe_matches_gradscaler_and_torch_sgd_on_an_fp16_model():
    """The whole fp16 + master-weights + dynamic-scale step (scaled_backward, sgd_step, LossScaler)
    against torch.amp.GradScaler + torch.optim.SGD on the same emulated fp16 forward: an initial
    scale of 2^24 overflows fp16 gradients, so steps are skipped and the scale backs off and grows."""
    cfg = exp.Config(hidden=(16,))
    fp16, fp32 = storage("float16"), storage(None)
    gen = torch.Generator().manual_seed(3)
    w = {"w0": torch.randn(1, 64, 16, generator=gen) * 0.25, "b0": torch.zeros(1, 1, 16),
         "w1": torch.randn(1, 16, 10, generator=gen) * 0.35, "b1": torch.zeros(1, 1, 10)}
    batches = [(torch.rand(1, 8, 64, generator=gen), torch.randint(10, (1, 8), generator=gen)) for _ in range(40)]
    ours = {k: v.clone().requires_grad_(True) for k, v in w.items()}
    velocity = {k: torch.zeros_like(v) for k, v in w.items()}
    scaler = LossScaler(fp16.grid, {"a0": "dynamic"}, cfg.static_scale, 2.0**24, 3, "cpu")
    refs = {k: torch.nn.Parameter(v.clone()) for k, v in w.items()}
    opt = torch.optim.SGD(refs.values(), lr=cfg.lr, momentum=cfg.momentum)
    ref_scaler = torch.amp.GradScaler("cpu", init_scale=2.0**24, growth_interval=3)
    skipped, scales = [], set()
    for x, y in batches:
        scaled_backward(ours, x, y, fp16, scaler.scale)
        found_inf = sgd_step(ours, velocity, scaler.scale, fp32, cfg.lr, cfg.momentum)
        scaler.update(found_inf)
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(forward(refs, x, fp16).transpose(1, 2), y)
        ref_scaler.scale(loss).backward()
        ref_scaler.step(opt)
        ref_scaler.update()
        assert scaler.scale.item() == ref_scaler.get_scale()
        skipped.append(bool(found_inf))
        scales.add(scaler.scale.item())
    assert 3 <= sum(skipped) < len(skipped) - 10 and len(scales) > 3  # the test exercised skip and growth
    for k in w:
        torch.testing.assert_close(ours[k].detach(), refs[k].detach(), rtol=1e-5, atol=1e-7)


def test_census_on_known_gradients():
    row = {}
    g = torch.tensor([2.0**-26, 2.0**-20, 1.0, 0.0])
    census._gradients(row, "act", g, (1.0, 2.0**10, 2.0**17))
    assert row["act_zeroed@1"] == pytest.approx(1 / 3) and row["act_zeroed@static"] == 0.0
    assert row["act_mass_lost@1"] == pytest.approx(2.0**-26 / (1 + 2.0**-20 + 2.0**-26))
    assert row["act_overflow@dynamic"] == pytest.approx(1 / 3) and row["act_overflow@1"] == 0.0


def test_a_nonfinite_batch_loss_marks_that_member_diverged_at_its_step(tmp_path):
    from mlbench.core.context import Context
    from mlbench.exps.fp16_mixed.run import watch_losses

    ctx = Context("fp16-mixed", tmp_path, [0, 1])
    grid = ctx.grid(("fp32", "fp16-pure"))
    losses = [torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([1.0, 1.0, float("inf"), 1.0])]
    mean = watch_losses(ctx, grid, 2, losses)  # the evaluation at step 2 sees the losses of steps 0 and 1
    assert grid.diverged_at == [None, None, 2, None] and math.isinf(mean[2]) and mean[0] == 1.0
    assert [r["diverged"] for r in ctx.records] == [True]
    assert math.isnan(grid.measurements(acc=[1.0] * 4)["fp16-pure"]["acc"][0])  # the verdict will see NaN


def test_config_bounds_and_claims(tmp_path):
    with pytest.raises(ValueError):
        exp.Config(steps=10, census_steps=(10,)).validate()
    with pytest.raises(ConfigError, match="steps"):
        runner.resolve("fp16-mixed", sets=["steps=0"], results=tmp_path)
    with pytest.raises(ConfigError, match="positive"):
        runner.resolve("fp16-mixed", sets=["static_scale=0"], results=tmp_path)
    ids = [c.id for c in exp.claims(exp.Config())]
    assert ids[0] == "mixed-precision" and "amp-speed" not in ids
    assert "amp-speed" in [c.id for c in exp.claims(exp.Config(amp_benchmark=True))]
    specs = exp.arm_specs(exp.Config(negative_control=True))
    assert not specs["fp16-dynamic"][1] and not specs["fp16-static"][1] and specs["fp16-noscale"][1]


def test_gpu_lm_pieces_run_on_cpu():
    """The full profile's LM (tokens, forward, loss) at toy size: near-uniform loss at init, gradients flow."""
    cfg = exp.Config(amp_d_model=64, amp_layers=1, amp_seq_len=16, amp_batch=2, amp_vocab=32)
    gen = torch.Generator().manual_seed(0)
    tokens = lm.lm_tokens(cfg, gen, n_batches=3)
    assert tokens.shape == (3, 2, 17) and int(tokens.max()) < 32
    shapes = {"emb": (32, 64), "pos": (16, 64), "qkv0": (192, 64), "proj0": (64, 64), "fc0": (256, 64), "out0": (64, 256)}
    p = {n: (torch.randn(*s, generator=gen) * 0.02).requires_grad_(True) for n, s in shapes.items()}
    loss = lm.lm_loss(p, tokens[0].long(), layers=1)
    assert loss.item() == pytest.approx(math.log(32), rel=0.05)
    loss.backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for t in p.values())


def test_gpu_timing_arms_and_accelerate_recipe_run_on_cpu(tmp_path):
    """The full profile's LM arms at toy size on a CPU (calling lm.measure directly: the face's
    check asks for CUDA). Every arm is measured and logged; the accelerate arms get an Accelerator
    with their mixed precision; accelerate's bf16 recipe gives the hand-built bf16's losses on the
    same weights and tokens. Not run here: fp16 through accelerate (on a CPU it trains in fp32)."""
    from mlbench.core.context import Context

    cfg = exp.Config(amp_benchmark=True, amp_d_model=64, amp_layers=1, amp_seq_len=16, amp_batch=2,
                     amp_vocab=32, amp_steps=4, amp_warmup=1)
    ctx = Context("fp16-mixed", tmp_path, [0])
    made, accelerator = [], ctx.accelerator

    def spy(**kwargs):
        acc = accelerator(**kwargs)
        made.append((acc.mixed_precision, acc.native_amp))  # as made: accelerate's state is shared
        return acc

    ctx.accelerator = spy
    m = lm.measure(cfg, ctx)
    assert sorted(m) == sorted(f"amp-{a}" for a in exp.AMP_ARMS) == sorted(exp.arms(cfg)[-len(exp.AMP_ARMS):])
    assert made == [("bf16", True), ("fp16", False)]  # bf16 autocast is real on a CPU, fp16 is not
    assert all(math.isfinite(v) for r in m.values() for v in r["step_ms"] + r["final_loss"])
    assert m["amp-accelerate-bf16"]["final_loss"] == m["amp-bf16"]["final_loss"] != m["amp-fp32"]["final_loss"]
    assert {r["arm"] for r in ctx.records} == set(m)


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
@pytest.mark.slow
def test_quick_profile_verdicts(run_once):
    summary = run_once("fp16-mixed").summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert summary["verdict"] == REPRODUCED
    for claim in ("mixed-precision", "underflow", "master-weights", "bf16"):
        assert verdicts[claim] == REPRODUCED, claim
    assert verdicts["unscaled-hurts"] != REPRODUCED  # at digits scale, underflow costs no accuracy


@pytest.mark.slow
def test_quick_profile_artefacts(run_once):
    from safetensors import safe_open

    res = run_once("fp16-mixed")
    assert (res.run_dir / "table.csv").read_text().count("\n") == 1 + len(exp.ARMS)
    assert {"underflow.png", "training.png"} <= {p.name for p in (res.run_dir / "plots").iterdir()}
    with safe_open(str(res.run_dir / "checkpoints" / "fp16-pure-seed0.safetensors"), "pt") as f:
        assert f.get_tensor("w0").dtype == torch.float16  # no master copy: the weights are fp16
    m = res.summary["measurements"]
    assert min(m["scale-1"]["zeroed_frac"]) > 0.2 > max(m["scale-dynamic"]["zeroed_frac"])
    header, *rows = [line.split(",") for line in (res.run_dir / "table.csv").read_text().splitlines()]
    assert {"test_acc_ci_low", "train_loss_ci_high", "skipped_steps_ci_low"} <= set(header)
    assert all(r[header.index("skipped_steps")].isdigit() for r in rows)  # a count prints as an integer


def test_training_plot_shows_every_point(tmp_path):
    """No axis limit hides data: accuracies from chance to 1 all fall inside the test-error panel."""
    from mlbench.exps.fp16_mixed import report

    class Capture:
        def plot(self, name, fig):
            self.fig = fig

    steps, arms = [0, 25, 50], list(exp.ARMS)
    curves = {"step": steps, "train_loss": {a: [[math.nan, 0.5, 0.01]] for a in arms},
              "test_acc": {a: [[0.08, 0.85, 0.999]] for a in arms}, "scale": {a: [[1.0, 2.0, 4.0]] for a in arms}}
    ctx = Capture()
    report._plot_training(ctx, curves)
    for ax in ctx.fig.axes:
        low, high = ax.get_ylim()
        for line in ax.get_lines():
            ys = [y for y in line.get_ydata() if math.isfinite(y)]
            assert all(low <= y <= high for y in ys), (ax.get_title(), ys, (low, high))


@pytest.mark.slow
def test_underflow_claim_fails_early_in_training(run_once):
    """A second control: gradients are large at the start, so a census at step 0 (of a 50-step
    run) finds almost nothing zeroed and the underflow claim comes out not reproduced."""
    summary = run_once("fp16-mixed", sets=("steps=50", "census_steps=0")).summary
    underflow = next(c for c in summary["claims"] if c["id"] == "underflow")
    assert underflow["verdict"] == NOT_REPRODUCED, underflow
