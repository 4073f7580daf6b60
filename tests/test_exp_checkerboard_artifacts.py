"""checkerboard-artifacts: overlap arithmetic against closed forms and a brute-force numpy sum,
the stacked layers against torch.nn's own modules, exact zeros at init, the two artifact measures
against numpy, the blob images, reruns and resume, and the quick profile's verdicts (the
registry test checks the negative control's headline)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mlbench.core import registry
from mlbench.core.context import Context
from mlbench.core.errors import ConfigError, UsageError
from mlbench.core.spec import resolve
from mlbench.data import blobs
from mlbench.exps import checkerboard_artifacts as face
from mlbench.exps.checkerboard_artifacts import artifacts, run as run_mod
from mlbench.exps.checkerboard_artifacts import upsamplers as up

from helpers import assert_same_bytes, stopped_then_rerun

NAME = "checkerboard-artifacts"
C = 3


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gens(n, base=0):
    return [torch.Generator().manual_seed(base + i) for i in range(n)]


# ----------------------------------------------------------------------------- overlap arithmetic
def brute_force_phase_sums(kernel, stride, size=12):
    """1-D transposed conv of ones with ones, written as scatter-adds in numpy; interior sums per phase."""
    p, _ = artifacts.tconv_padding(kernel, stride)
    out = np.zeros(stride * size + kernel)
    for i in range(size):
        out[i * stride: i * stride + kernel] += 1.0
    inner = out[p: p + stride * size][2 * stride: -2 * stride]  # the interior of the exact 2x output
    assert all(len(set(inner[r::stride])) == 1 for r in range(stride))  # each phase is constant there
    return sorted(float(inner[r]) for r in range(stride))


@pytest.mark.parametrize("k, s", [(k, s) for s in (2, 3) for k in range(s, 9)])
def test_tap_counts_match_a_brute_force_scatter(k, s):
    assert sorted(artifacts.tap_counts(k, s)) == brute_force_phase_sums(k, s)
    assert (len(set(artifacts.tap_counts(k, s))) == 1) == (k % s == 0)


@pytest.mark.parametrize("k, s", face.OVERLAP)
def test_all_ones_phase_sums_and_contrast_closed_form(k, s):
    y = artifacts.uniform_tconv_output(k, s, C, 10)
    measured = artifacts.phase_means(y, s, 2)[0, 0].tolist()
    assert sorted(measured) == sorted(C * v for v in artifacts.uniform_phase_sums(k, s))
    sums = np.array(artifacts.uniform_phase_sums(k, s), dtype=float)
    numpy_p = sums.std(ddof=1) / math.sqrt((sums ** 2).mean())
    assert artifacts.phase_contrast(y, s, 2).item() == pytest.approx(numpy_p, abs=1e-12)
    assert artifacts.uniform_phase_contrast(k, s) == pytest.approx(numpy_p, abs=1e-12)
    assert (artifacts.phase_contrast(y, s, 2).item() == 0.0) == (k % s == 0)


def test_uniform_k3s2_contrast_is_std_4221_over_rms():
    assert artifacts.uniform_phase_sums(3, 2) == [4, 2, 2, 1]
    assert artifacts.uniform_phase_contrast(3, 2) == pytest.approx(0.50332, abs=1e-5)
    alternating = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(6, 6)[None, None]  # phase means sum to 0
    assert artifacts.phase_contrast(alternating, 2, 2).item() == pytest.approx(math.sqrt(4 / 3))


@pytest.mark.parametrize("k", [3, 4])
def test_phase_sums_are_polyphase_subkernel_sums_for_any_kernel(k):
    """Constant input: phase (a, b) sums w[a::2, b::2] over taps and input channels (numpy)."""
    w = torch.randn(C, 1, k, k, generator=torch.Generator().manual_seed(k)).abs()  # (in, out, k, k)
    y = F.conv_transpose2d(torch.ones(1, C, 10, 10), w, stride=2, padding=artifacts.tconv_padding(k, 2)[0],
                           output_padding=artifacts.tconv_padding(k, 2)[1])
    wn = w.double().numpy()[:, 0]
    poly = sorted(wn[:, a::2, b::2].sum() for a in range(2) for b in range(2))
    assert sorted(artifacts.phase_means(y, 2, 2)[0, 0].tolist()) == pytest.approx(poly, rel=1e-6)


# ----------------------------------------------------------------------------- the stacked layers
def reference_module(arm, weight, bias):
    """One model's upsampler as torch.nn modules, with the given weights."""
    spec = up.upsampler(arm)
    if spec.kind == "tconv":
        p, op = artifacts.tconv_padding(spec.kernel, 2)
        conv = torch.nn.ConvTranspose2d(C, C, spec.kernel, stride=2, padding=p, output_padding=op)
    else:
        conv = torch.nn.Conv2d(C, C * (4 if spec.kind == "subpixel" else 1), 3, padding=1)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    if spec.kind == "tconv":
        return conv
    if spec.kind == "resize":
        return torch.nn.Sequential(torch.nn.Upsample(scale_factor=2, mode=spec.resize), conv)
    layers = [conv, torch.nn.PixelShuffle(2)]
    if spec.blur:
        layers += [torch.nn.ReplicationPad2d((1, 0, 1, 0)), torch.nn.AvgPool2d(2, stride=1)]
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("arm", face.UPSAMPLERS + (face.BLUR,))
def test_grouped_models_equal_each_model_alone(arm):
    """Model g's channels of the grouped layer are exactly what torch.nn gives it alone."""
    spec = up.upsampler(arm)
    params = up.init_params(spec, C, gens(2), draws=2)  # G = 4
    x = torch.randn(2, 4 * C, 6, 6, generator=torch.Generator().manual_seed(1))
    y = up.forward(spec, params, x)
    assert y.shape == (2, 4 * C, 12, 12)
    for g in range(4):
        alone = reference_module(arm, params["weight"][g], params["bias"][g])(x[:, g * C:(g + 1) * C])
        torch.testing.assert_close(y[:, g * C:(g + 1) * C], alone, rtol=1e-5, atol=1e-6)


def test_default_init_bound_is_pytorchs():
    for module, k in ((torch.nn.Conv2d(C, C, 3), 3), (torch.nn.ConvTranspose2d(C, C, 4), 4)):
        fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(module.weight)
        assert fan_in == C * k * k
    params = up.init_params(up.upsampler("tconv_k4s2"), C, gens(1), draws=50)
    assert params["weight"].abs().max() <= 1 / math.sqrt(C * 16) < params["weight"].abs().max() * 1.05


def test_icnr_is_conv_then_nearest_resize_and_the_wrong_tying_is_not():
    spec = up.upsampler("pixelshuffle_icnr")
    params = up.init_params(spec, C, gens(1))
    x = torch.randn(1, C, 6, 6, generator=torch.Generator().manual_seed(2))
    sub_w, sub_b = params["weight"][0, ::4], params["bias"][0, ::4]
    expected = F.interpolate(F.conv2d(x, sub_w, sub_b, padding=1), scale_factor=2, mode="nearest")
    y = up.forward(spec, params, x)
    torch.testing.assert_close(y, expected, rtol=1e-6, atol=1e-7)  # a C-channel conv rounds a little differently
    for a, b in ((0, 1), (1, 0), (1, 1)):  # but the four copies of each pixel are bit-identical
        assert torch.equal(y[..., a::2, b::2], y[..., 0::2, 0::2])
    wrong = {"weight": sub_w.repeat(4, 1, 1, 1)[None], "bias": sub_b.repeat(4)[None]}  # ties c, c + C, ...
    y = up.forward(spec, wrong, torch.ones(1, C, 8, 8))
    assert artifacts.phase_contrast(y, 2, 2).item() > 0.05


def test_constant_input_is_exactly_flat_only_for_resize_and_icnr():
    cfg = face.Config(channels=4, init_draws=6, blur_arm=True)
    ctx = Context(NAME, None, [0, 1])
    stats = run_mod.init_statistics(cfg, ctx)["per_arm"]
    for arm in face.FLAT_AT_INIT + (face.BLUR,):
        assert stats[arm]["phase_contrast_max"] == [0.0, 0.0], arm
    for arm in face.UNEVEN_AT_INIT:
        assert min(stats[arm]["phase_contrast_min"]) > 0.1, arm
    control = run_mod.init_statistics(face.Config(channels=4, init_draws=6, negative_control=True), ctx)["per_arm"]
    for arm in ("tconv_k3s2", "tconv_k4s2"):  # stride 1 after a nearest resize: flat
        assert control[arm]["phase_contrast_max"] == [0.0, 0.0] and control[arm]["phase_contrast_abs_max"] == [0.0, 0.0]


def test_tconv_padding_gives_exactly_twice_the_size():
    for k in range(2, 8):
        p, op = artifacts.tconv_padding(k, 2)
        assert torch.nn.ConvTranspose2d(1, 1, k, 2, p, op)(torch.zeros(1, 1, 9, 9)).shape[-1] == 18


# ----------------------------------------------------------------------------- artifact energy
def numpy_energy(img, crop, band):
    x = img[crop:-crop, crop:-crop].astype(np.float64)
    x = x - x.mean()
    x = x * np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1]))
    power = np.abs(np.fft.fft2(x)) ** 2
    f = np.abs(np.fft.fftfreq(x.shape[0]))
    return power[np.maximum(f[:, None], f[None, :]) >= band].sum() / power.sum()


def test_artifact_energy_matches_numpy_and_the_profile():
    imgs = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(3))
    e = artifacts.artifact_energy(imgs, 2, 0.4)
    for i in range(3):
        assert e[i].item() == pytest.approx(numpy_energy(imgs[i].numpy(), 2, 0.4), rel=1e-10)
    freqs, share = artifacts.power_profile(imgs, 2)
    assert share.sum(-1).tolist() == pytest.approx([1.0] * 3)
    assert share[:, freqs >= 0.4].sum(-1).tolist() == pytest.approx(e.tolist(), rel=1e-10)


def test_checkerboard_is_all_artifact_and_a_blob_almost_none():
    u = torch.arange(32)
    board = (-1.0) ** (u[:, None] + u[None, :]).double()
    assert artifacts.artifact_energy(board).item() > 0.99
    blob = blobs.render(torch.tensor([[[16.0, 16.0, 3.0, 1.0]]], dtype=torch.float64), 32)[0]
    assert artifacts.artifact_energy(blob).item() < 1e-6


def test_blob_images_render_the_formula_and_are_seeded(tmp_path):
    p = blobs.load(5, 7, tmp_path, blobs=2, size=16)
    assert torch.equal(p, blobs.load(5, 7, tmp_path, blobs=2, size=16)) and not torch.equal(p, blobs.load(5, 8, tmp_path, blobs=2, size=16))
    img = blobs.render(p, 16, torch.float64)[1].numpy()
    u = np.arange(16.0)
    want = sum(a * np.exp(-((u[:, None] - cy) ** 2 + (u[None, :] - cx) ** 2) / (2 * s ** 2))
               for cy, cx, s, a in p[1].tolist())
    np.testing.assert_allclose(img, want, rtol=1e-12, atol=1e-14)
    assert ((p[..., 2] >= 2) & (p[..., 2] <= 5)).all() and ((p[..., :2] >= 0) & (p[..., :2] < 16)).all()


def test_seeds_are_independent_members_of_the_stack(tmp_path):
    """Seeds 2, 3 alone measure what they measure beside seeds 0, 1 (no seed leaks into another)."""
    cfg = face.Config(channels=4, init_draws=3, train_images=32, test_images=8, steps=4, batch_size=4, eval_every=2)

    def measure(seeds):
        ctx = Context(NAME, tmp_path / "-".join(map(str, seeds)), seeds, cache_dir=tmp_path / "cache")
        return run_mod.train(cfg, ctx)["measurements"]

    four, two = measure([0, 1, 2, 3]), measure([2, 3])
    for arm, metrics in two.items():
        for metric, values in metrics.items():
            assert values == pytest.approx(four[arm][metric][2:], rel=1e-4), (arm, metric)


def test_every_seed_tests_decide_as_stated():
    from mlbench.exps.checkerboard_artifacts.every_seed import EverySeed, SignOnEverySeed

    m = {"a": {"p": [0.0, 0.0, 0.0], "e": [1.0, 2.0, 3.0]}, "b": {"p": [0.0, 1e-9, 0.0], "e": [0.5, 2.5, 2.0]},
         "c": {"e": [2.0, 3.0, 4.0]}, "d": {"e": [0.0, float("nan"), 1.0]}}
    assert EverySeed("p", "a", "==", 0.0)(m).verdict == "reproduced"
    assert EverySeed("p", "b", "==", 0.0)(m).verdict == "not_reproduced"  # one seed off by 1e-9 refutes it
    assert SignOnEverySeed("e", "c", "a")(m).verdict == "reproduced"
    assert SignOnEverySeed("e", "a", "c")(m).verdict == "not_reproduced"
    assert SignOnEverySeed("e", "a", "b")(m).verdict == "inconclusive"  # a seed flipped
    assert SignOnEverySeed("e", "d", "a", "less")(m).verdict == "inconclusive"  # NaN


# ----------------------------------------------------------------------------- configs, reruns
def test_bad_configs_are_refused_before_running():
    with pytest.raises(ConfigError, match="divisible"):
        resolve(NAME, sets=["image_size=34", "stages=2"])
    with pytest.raises(ConfigError, match="sigma_max"):
        resolve(NAME, sets=["sigma_min=6"])
    with pytest.raises(ConfigError, match="band"):
        resolve(NAME, sets=["band=0.6"])
    with pytest.raises(ConfigError, match="shrink_from"):
        resolve(NAME, sets=["shrink_from=200"])
    with pytest.raises(UsageError, match="use --device cuda"):
        resolve(NAME, profile="full", device="cpu")


def test_full_profile_resolves_on_cpu_once_scaled_down():
    assert set(registry.info(NAME).profiles) == {"smoke", "quick", "full"}
    full = resolve(NAME, profile="full", device="cpu", sets=["steps=500", "image_size=32", "channels=8"])
    assert full.cfg.stages == 2 and full.cfg.blur_arm and full.seeds == 5
    assert [c.id for c in face.claims(full.cfg)][-1] == "gap-shrinks"


def test_same_command_same_bytes_and_resume(tmp_path):
    """Two runs give the same bytes; so does a run stopped by Ctrl-C as training starts, and rerun."""
    runs, manifest = stopped_then_rerun(NAME, tmp_path, 1)
    assert manifest["status"] == "complete" and manifest["resumed_units"] == ["init-statistics"]
    assert_same_bytes(runs, ("metrics.jsonl", "table.csv", "table-gap.csv", "summary.json", "plots/init_patterns.png"))
    assert len(list((runs[0] / "checkpoints").iterdir())) == 2 * len(face.UPSAMPLERS)


# ----------------------------------------------------------------------------- science (quick profile)
@pytest.mark.slow
def test_quick_profile_reproduces_every_claim(run_once):
    summary = run_once(NAME).summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {c.id: "reproduced" for c in face.claims(face.Config())}
    m = summary["measurements"]
    # signed random kernels: k4s2 is as uneven as k3s2 (the rule needs same-sign kernels)
    assert np.mean(m["tconv_k4s2"]["phase_contrast"]) > 0.8 * np.mean(m["tconv_k3s2"]["phase_contrast"])


@pytest.mark.slow
def test_negative_control_flattens_the_transposed_convs(run_once):
    summary = run_once(NAME, sets=("negative_control=true",)).summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts["init-flat-output"] == "not_reproduced"
    assert verdicts["trained-nyquist-energy"] != "reproduced"
    assert summary["measurements"]["tconv_k3s2"]["phase_contrast_max"] == [0.0] * 5
