"""temporal-shift: the shift, the stacked network, the counted costs, the videos, the verdicts."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import mlbench
from mlbench.core import spec as speclib
from mlbench.core.context import Context
from mlbench.core.errors import MlbenchError, UsageError
from mlbench.core.grid import Grid
from mlbench.core.verdict import INCONCLUSIVE, NOT_REPRODUCED, REPRODUCED
from mlbench.data import videos
from mlbench.exps import temporal_shift as exp
from mlbench.exps.temporal_shift import cost, network, run, verdicts
from mlbench.exps.temporal_shift.network import VARIANTS, StackedNet, init_params
from mlbench.exps.temporal_shift.shift import temporal_shift


def _reference_shift(x, fold_div, bidirectional=True):
    """The reference implementation's naive shift (mit-han-lab README), on (N, T, C, H, W)."""
    out = torch.zeros_like(x)
    fold = x.shape[2] // fold_div
    if bidirectional:
        out[:, :-1, :fold] = x[:, 1:, :fold]  # shift left: frame t takes t+1
        out[:, 1:, fold:2 * fold] = x[:, :-1, fold:2 * fold]  # shift right: frame t takes t-1
        out[:, :, 2 * fold:] = x[:, :, 2 * fold:]
    else:
        out[:, 1:, :fold] = x[:, :-1, :fold]
        out[:, :, fold:] = x[:, :, fold:]
    return out


@pytest.mark.parametrize("fold_div,bidirectional", [(8, True), (4, True), (2, True), (8, False)])
def test_shift_matches_the_reference_implementation(fold_div, bidirectional):
    x = torch.randn(3, 5, 16, 4, 4, generator=torch.Generator().manual_seed(0))  # (N, T, C, H, W)
    got = temporal_shift(x.transpose(1, 2), fold_div, bidirectional).transpose(1, 2)  # ours is (..., C, T, H, W)
    assert torch.equal(got, _reference_shift(x, fold_div, bidirectional))


class _Reference(torch.nn.Module):
    """One model written with nn.Conv2d per frame (k_t = 1) or nn.Conv3d, the naive shift and .mean()."""

    def __init__(self, arm, p, C, blocks, fold_div):
        super().__init__()
        self.v, self.C, self.blocks, self.fold_div = VARIANTS[arm], C, blocks, fold_div
        k = self.v.kernel_t

        def conv(name, c_in, stride=1):
            if k == 1:
                m = torch.nn.Conv2d(c_in, C, 3, stride, 1)
                m.weight.data.copy_(p[f"{name}.w"][:, :, 0])
            else:
                m = torch.nn.Conv3d(c_in, C, 3, (1, stride, stride), 1)
                m.weight.data.copy_(p[f"{name}.w"])
            m.bias.data.copy_(p[f"{name}.b"])
            return m
        self.stem = conv("stem", 1, 2)
        self.convs = torch.nn.ModuleList(conv(f"block{i}.conv{j}", C) for i in range(blocks) for j in (1, 2))
        self.head = torch.nn.Linear(C, p["head.w"].shape[1])
        self.head.weight.data.copy_(p["head.w"].T)
        self.head.bias.data.copy_(p["head.b"])

    def _conv(self, conv, h):  # h (N, T, C, H, W)
        if self.v.kernel_t == 1:
            N, T = h.shape[:2]
            out = conv(h.flatten(0, 1))
            return out.view(N, T, *out.shape[1:])
        return conv(h.transpose(1, 2)).transpose(1, 2)

    def forward(self, video):  # (N, T, H, W)
        shift = lambda h: _reference_shift(h, self.fold_div, self.v.bidirectional)  # noqa: E731
        h = F.relu(self._conv(self.stem, video[:, :, None]))
        for i in range(self.blocks):
            if self.v.shift == "inplace":
                h = shift(h)
            branch = h if self.v.shift != "residual" else shift(h)
            branch = F.relu(self._conv(self.convs[2 * i], branch))
            h = F.relu(h + self._conv(self.convs[2 * i + 1], branch))
        return self.head(h.mean((1, 3, 4)))


def test_stacked_network_matches_per_model_references():
    arms, S, C, B, fold_div = exp.VARIANT_NAMES, 2, 8, 2, 4
    cfg = exp.Config(channels=C, blocks=B, fold_div=fold_div)
    gens = lambda base: [torch.Generator().manual_seed(base + k) for k in range(S)]  # noqa: E731
    params = init_params(cfg, arms, gens(0), gens(10))
    for ps in params.values():  # non-zero biases, so the reference checks them too
        for name, p in ps.items():
            if name.endswith(".b"):
                p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
    grid = Grid(arms, tuple(range(S)))
    clips = torch.randn(S, 3, 6, 10, 10, generator=torch.Generator().manual_seed(5))  # (S, N, T, H, W)
    got = StackedNet(arms, S, C, B, fold_div)(params, run.stacked_input(grid, clips))  # (M, N, K)
    for m, arm, seed in grid.members():
        ref = _Reference(arm, {n: p[seed] for n, p in params[arm].items()}, C, B, fold_div)
        with torch.no_grad():
            torch.testing.assert_close(got[m], ref(clips[seed]), rtol=1e-4, atol=1e-5)


def test_2d_net_is_exactly_invariant_to_frame_order_and_the_others_are_not():
    cfg, S = exp.Config(), 2
    arms = ("2d", "tsm", "tsm-online", "3d")
    params = init_params(cfg, arms, [torch.Generator().manual_seed(k) for k in range(S)],
                         [torch.Generator().manual_seed(9 + k) for k in range(S)])
    net, grid = StackedNet(arms, S, cfg.channels, cfg.blocks, cfg.fold_div), Grid(arms, tuple(range(S)))
    clips = torch.randn(S, 16, 8, 16, 16, generator=torch.Generator().manual_seed(1))
    order = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    with torch.no_grad():
        plain = grid.by_arm(net(params, run.stacked_input(grid, clips)))
        backwards = grid.by_arm(net(params, run.stacked_input(grid, videos.reverse_time(clips))))
        permuted = grid.by_arm(net(params, run.stacked_input(grid, clips[:, :, order])))
    assert torch.equal(plain["2d"], backwards["2d"]) and torch.equal(plain["2d"], permuted["2d"])  # bit for bit
    for arm in ("tsm", "tsm-online", "3d"):
        assert (plain[arm] - backwards[arm]).abs().max() > 1e-3, arm


def test_counted_costs_equal_the_closed_form_and_the_paper_numbers():
    quick = exp.Config()
    assert [cost.counted_macs(quick, a) for a in ("2d", "tsm", "3d")] == [4_792_352, 4_792_352, 14_376_992]
    assert [cost.param_count(quick, a) for a in ("2d", "tsm", "3d")] == [9_474, 9_474, 28_194]
    assert cost.shift_flops(quick) == 0
    odd = exp.Config(frames=5, size=11, channels=8, blocks=3, fold_div=4)
    for arm in exp.VARIANT_NAMES:
        assert cost.counted_macs(odd, arm) == cost.macs_formula(odd, arm), arm
        ref = _Reference(arm, {n: p[0] for n, p in init_params(odd, (arm,), [torch.Generator()], [torch.Generator()])[arm].items()},
                         8, 3, 4)
        assert cost.param_count(odd, arm) == sum(p.numel() for p in ref.parameters()), arm


def test_rendered_videos_move_on_a_torus_and_reverse_into_the_other_class():
    script = {"label": torch.tensor([0, 1]), "sprite": torch.tensor([0, 1]), "direction": torch.tensor([-1, 1]),
              "speed": torch.tensor([2, 1]), "x0": torch.tensor([1, 14]), "y0": torch.tensor([0, 7])}
    clip = videos.render(script, 6, 16, 0.0, torch.Generator())  # (2, T, H, W), no noise
    for t in range(6):
        ys, xs = torch.nonzero(clip[0, t], as_tuple=True)
        assert set(xs.tolist()) == {(1 - 2 * t + d) % 16 for d in (-1, 0, 1)} and set(ys.tolist()) == {15, 0, 1}
        assert clip[0, t].sum() == 9 and clip[1, t].sum() == 5  # square, cross
    assert clip[1, 0, 7, 15] == 1 and clip[1, 1, 7, 0] == 1  # the cross's centre wraps around
    back = {**script, "direction": -script["direction"],
            "x0": (script["x0"] + script["direction"] * script["speed"] * 5) % 16}
    assert torch.equal(videos.reverse_time(clip), videos.render(back, 6, 16, 0.0, torch.Generator()))


def test_scripts_are_cached_balanced_and_seeded(tmp_path):
    a = videos.load(tmp_path, "direction", 2000, [1, 2], 16, (1, 2))
    b = videos.load(tmp_path, "direction", 2000, [1, 2], 16, (1, 2))
    assert all(torch.equal(a[f], b[f]) for f in videos.FIELDS) and a["label"].shape == (2, 2000)
    assert not torch.equal(a["x0"][0], a["x0"][1])
    assert torch.equal(a["label"], (a["direction"] + 1) // 2) and (a["sprite"] == 0).all()
    assert abs(a["label"].double().mean() - 0.5) < 0.03 and set(a["x0"].unique().tolist()) == set(range(16))
    shape = videos.load(tmp_path, "shape", 2000, [1], 16, (1, 2))
    assert torch.equal(shape["label"], shape["sprite"]) and abs(shape["direction"].double().mean()) < 0.06
    with pytest.raises(ValueError, match="unknown video task"):
        videos.load(tmp_path, "colour", 10, [1], 16, (1,))


def test_negative_control_permutes_each_videos_frames(tmp_path):
    ctx = Context("temporal-shift", tmp_path / "run", [0], cache_dir=tmp_path / "cache")
    script = videos.load(tmp_path, "direction", 64, [3], 16, (1, 2))
    batch = lambda cfg: run.video_batch(cfg, script, 0, 64, ctx.generators("noise"), ctx.generators("order"))[0][0]  # noqa: E731
    plain, shuffled = batch(exp.Config()), batch(exp.Config(negative_control=True))
    assert not torch.equal(plain, shuffled)
    for v in range(64):  # same frames, another order
        assert sorted(plain[v].flatten(1).sum(1).tolist()) == sorted(shuffled[v].flatten(1).sum(1).tolist())


def test_every_seed_and_same_count_tests():
    m = {"a": {"x": [0.5, 0.45, 0.55], "c": [3.0, 3.0, 3.0]}, "b": {"x": [0.9, 0.7, 0.95], "c": [3.0, 3.0, 4.0]},
         "z": {"x": [0.0, 0.0, 1e-7]}}
    assert verdicts.EverySeed("x", "a", 0.4, 0.6)(m).verdict == REPRODUCED
    assert verdicts.EverySeed("x", "b", low=0.8)(m).verdict == INCONCLUSIVE  # one seed short, the mean is not
    assert verdicts.EverySeed("x", "a", low=0.8)(m).verdict == NOT_REPRODUCED
    assert verdicts.EverySeed("x", "z", high=0.0)(m).verdict == INCONCLUSIVE  # not exactly zero on seed 2
    assert verdicts.EverySeed("x", "a", high=0.0)(m).verdict == NOT_REPRODUCED
    assert verdicts.SameCount("c", "a", "a")(m).verdict == REPRODUCED
    assert verdicts.SameCount("c", "a", "b")(m).verdict == NOT_REPRODUCED
    assert verdicts.EverySeed("x", "a", low=0.3).scaled(3).confidence == pytest.approx(1 - 0.05 / 3)


def test_stacking_changes_nothing(tmp_path):
    """Seed 0 of 2d/tsm trained alone, and beside seed 1 and the 3D arm: the same accuracies."""
    base = ["shape_task=false", "test_size=64", "curve_size=32"]
    alone = mlbench.run("temporal-shift", profile="smoke", seeds=1, results=tmp_path, threads=1,
                        sets=base + ["arms=2d,tsm"]).summary["measurements"]
    stacked = mlbench.run("temporal-shift", profile="smoke", seeds=2, results=tmp_path, threads=1,
                          sets=base + ["arms=2d,tsm,3d"]).summary["measurements"]
    for arm in ("2d", "tsm"):
        assert stacked[exp.key(arm)]["acc"][0] == alone[exp.key(arm)]["acc"][0]


def test_full_profile_is_refused_on_cpu_and_its_arms_run_small(tmp_path):
    with pytest.raises(UsageError, match="GPU-sized"):
        speclib.resolve("temporal-shift", profile="full", device="cpu")
    res = mlbench.run("temporal-shift", profile="full", seeds=2, results=tmp_path, threads=1,
                      sets=["steps=2", "batch_size=2", "test_size=8", "curve_size=4", "eval_every=1", "blocks=1",
                            "channels=8"])
    ids = [c["id"] for c in res.summary["claims"]]
    assert ids == ["zero-cost-temporal", "2d-time-blind", "3d-at-3x-cost", "appearance-control", "residual-vs-inplace"]
    m = res.summary["measurements"]
    assert m[exp.key("tsm-online")]["macs"] == m[exp.key("2d")]["macs"] and m[exp.key("2d")]["reversal_max_abs"] == [0.0, 0.0]


def test_bad_configs_are_refused_before_anything_runs(tmp_path):
    for bad in (["arms=2d,3d"], ["arms=2d,tsm,slowfast"], ["arms=2d,tsm,tsm"], ["channels=4", "fold_div=8"],
                ["curve_size=100", "test_size=64"], ["lr=0"], ["fold_div=1"], ["speeds=1,8"]):
        with pytest.raises(MlbenchError):
            mlbench.run("temporal-shift", profile="smoke", results=tmp_path, sets=bad)
    assert not (tmp_path / "temporal-shift").exists()


def test_face_names_every_variant():
    assert set(exp.VARIANT_NAMES) == set(network.VARIANTS) and set(exp.SHAPE_ARMS) <= set(exp.VARIANT_NAMES)
    assert exp.training_tmacs(exp.Config()) < exp.CPU_MAX_TMACS


@pytest.mark.slow
def test_quick_profile_verdicts(run_once):
    summary = run_once("temporal-shift").summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts == {"zero-cost-temporal": REPRODUCED, "2d-time-blind": REPRODUCED, "3d-at-3x-cost": REPRODUCED,
                        "appearance-control": REPRODUCED}


@pytest.mark.slow
def test_negative_control_puts_tsm_at_chance(run_once):
    """Frames shuffled: the shift has no order to read; TSM falls into the chance band with the 2D net."""
    m = run_once("temporal-shift", sets=("negative_control=true",)).summary["measurements"]
    lo, hi = exp.CHANCE_BAND
    assert all(lo <= a <= hi for a in m[exp.key("tsm")]["acc"]), m[exp.key("tsm")]["acc"]
    assert all(abs(g) < 0.1 for g in m[exp.key("tsm-vs-2d")]["gain"])
    assert min(m[exp.key("tsm", "shape")]["acc"]) >= exp.SHAPE_FLOOR  # appearance needs no order


def test_module_docstring_and_files_stay_small():
    pkg = Path(exp.__file__).parent
    for f in [*pkg.glob("*.py"), Path(videos.__file__)]:
        assert len(f.read_text().splitlines()) <= 250, f.name
    assert "Seed documents: 001" in exp.__doc__
