"""diou-box-regression: the losses against closed forms on hand-made boxes, exact gradients against
closed-form derivatives, the MATLAB port against hand-computed MATLAB values and a line-by-line
scalar transliteration of the .m files, the port with every fix against autograd, the cases
against test_1715k.m, the centred control, units of centres, and the quick verdicts."""

import math
import random

import pytest
import torch

import mlbench
from mlbench.core.errors import ConfigError
from mlbench.exps import diou_box_regression as exp
from mlbench.exps.diou_box_regression import boxes, simulation
from mlbench.exps.diou_box_regression.paper_gradients import paper_ascent

ALL = {q: torch.tensor(True) for q in exp.QUIRKS}
NONE = {q: torch.tensor(False) for q in exp.QUIRKS}


def box(*xywh):
    return torch.tensor(xywh, dtype=torch.float64)


def fixes(*quirks):
    return {q: torch.tensor(q in quirks) for q in exp.QUIRKS}


def grad_of(name, pred, gt):
    leaves = [c.clone().requires_grad_(True) for c in pred]
    return -torch.stack(torch.autograd.grad(boxes.LOSSES[name](leaves, gt).sum(), leaves))


def test_losses_match_closed_forms_on_hand_made_boxes():
    unit = box(0, 0, 1, 1)
    shifted, far, big, wide = box(0.5, 0, 1, 1), box(3, 0, 1, 1), box(0.25, 0, 2, 2), box(0, 0, 2, 1)
    assert boxes.iou(shifted, unit).item() == pytest.approx(0.5 / 1.5)       # I = 0.5, U = 1.5
    assert boxes.giou_penalty(shifted, unit).item() == pytest.approx(0.0)    # C = B ∪ B_gt
    assert boxes.diou_penalty(shifted, unit).item() == pytest.approx(0.25 / (1.5 ** 2 + 1))
    assert boxes.iou(far, unit).item() == 0.0
    assert boxes.giou_loss(far, unit).item() == pytest.approx(1 + (4 - 2) / 4)  # C = 4 x 1, U = 2
    assert boxes.diou_loss(far, unit).item() == pytest.approx(1 + 9 / 17)       # ρ² = 9, c² = 4² + 1²
    assert boxes.iou(big, unit).item() == pytest.approx(0.25)                # nested: I = 1, U = 4
    assert boxes.giou_penalty(big, unit).item() == pytest.approx(0.0)
    assert boxes.diou_penalty(big, unit).item() == pytest.approx(0.0625 / 8)
    v = 4 / math.pi ** 2 * (math.atan(1.0) - math.atan(2.0)) ** 2             # w:h 2:1 vs 1:1, IoU 1/2
    assert boxes.aspect_v(wide, unit).item() == pytest.approx(v)
    assert boxes.ciou_loss(wide, unit).item() == pytest.approx(1 - 0.5 + v * v / (0.5 + v + 1e-7))


def test_exact_gradients_match_closed_form_derivatives():
    unit = box(0, 0, 1, 1)
    for d in (0.2, 0.5, 0.8):  # IoU = (1 − d)/(1 + d) for a unit box shifted by d
        assert grad_of("iou", box(d, 0, 1, 1), unit)[0].item() == pytest.approx(-2 / (1 + d) ** 2)
    for d in (1.5, 3.0):  # disjoint along x: IoU and its gradient are 0, ρ²/c² = d² / ((d + 1)² + 1)
        c2 = (d + 1) ** 2 + 1
        dpen = (2 * d * c2 - d * d * 2 * (d + 1)) / c2 ** 2
        assert grad_of("iou", box(d, 0, 1, 1), unit).abs().max().item() == 0.0
        assert grad_of("diou", box(d, 0, 1, 1), unit)[0].item() == pytest.approx(-dpen)
    w, h = 2.0, 1.0  # CIoU, concentric: −α ∂v/∂w = α (8/π²) Δ h / (w² + h²), α detached
    delta, inter = math.atan(1.0) - math.atan(w / h), 1 / 2
    v = 4 / math.pi ** 2 * delta ** 2
    alpha = v / (1 - inter + v + 1e-7)
    g = grad_of("ciou", box(0, 0, w, h), unit)
    g_iou = grad_of("iou", box(0, 0, w, h), unit)
    assert (g - g_iou)[2].item() == pytest.approx(alpha * 8 / math.pi ** 2 * delta * h / (w * w + h * h))


def test_paper_port_matches_hand_computed_matlab_values():
    """Worked by hand from the .m files: an overlapping, a disjoint and a nested pair."""
    unit = box(0, 0, 1, 1)
    cases = [  # (loss, pred, fixed, D by hand)
        ("iou", box(0.5, 0, 1, 1), NONE, (-8 / 9, 0, 4 / 9, -4 / 9)),     # to_xywh without ½: 2x ∂/∂w, ∂/∂h
        ("iou", box(0.5, 0, 1, 1), ALL, (-8 / 9, 0, 2 / 9, -2 / 9)),
        ("giou", box(3, 0, 1, 1), NONE, (0, 0, 0, 0.5)),                   # I = −2, U = 4: x does not move
        ("giou", box(3, 0, 1, 1), ALL, (-0.125, 0, 0.1875, 0.25)),
        ("diou", box(0.25, 0, 2, 2), NONE, (-0.0625, 0, -0.25, -0.25)),    # spans: ∂C_w/∂w := −1, ∂c² = 0
        ("diou", box(0.25, 0, 2, 2), ALL, (-0.0625, 0, -0.125 + 1 / 256, -0.125 + 1 / 256)),
    ]
    for name, pred, fixed, want in cases:
        got = paper_ascent(name, pred, unit, fixed)
        torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12,
                                   msg=f"{name} {pred.tolist()} {fixed}")


# --- a line-by-line scalar transliteration of the .m files (structs as dicts), quirks as switches ---

def m_tblr(X):
    return {"t": X[1] - X[3] / 2, "b": X[1] + X[3] / 2, "l": X[0] - X[2] / 2, "r": X[0] + X[2] / 2}


def m_in(A, B):
    s = {"t": max(A["t"], B["t"]), "b": min(A["b"], B["b"]), "l": max(A["l"], B["l"]), "r": min(A["r"], B["r"])}
    return s


def m_overlap(A, B):
    s = m_in(A, B)
    return s["t"] < s["b"] and s["l"] < s["r"]


def m_dibox(p, g, fix3):
    I = m_in(p, g)
    s = {"dt": -(I["r"] - I["l"]) if p["t"] > g["t"] else 0, "db": I["r"] - I["l"] if p["b"] < g["b"] else 0,
         "dl": -(I["b"] - I["t"]) if p["l"] > g["l"] else 0, "dr": I["b"] - I["t"] if p["r"] < g["r"] else 0}
    return {k: 0 for k in s} if fix3 and not m_overlap(p, g) else s


def m_iu(p, g, fix3):
    I = m_in(p, g)
    inter = (I["b"] - I["t"]) * (I["r"] - I["l"])
    if fix3 and not m_overlap(p, g):
        inter = 0
    return inter, (p["b"] - p["t"]) * (p["r"] - p["l"]) + (g["b"] - g["t"]) * (g["r"] - g["l"]) - inter


def m_du(p, g, fix3):
    dX = {"dt": -(p["r"] - p["l"]), "db": p["r"] - p["l"], "dl": -(p["b"] - p["t"]), "dr": p["b"] - p["t"]}
    dI = m_dibox(p, g, fix3)
    return {k: dX[k] - dI[k] for k in dX}


def m_diou(p, g):
    inter, U = m_iu(p, g, False)
    dI, dU = m_dibox(p, g, False), m_du(p, g, False)
    if m_overlap(p, g) and U > 0:
        return {k: (U * dI[k] - inter * dU[k]) / U ** 2 for k in dI}
    return {k: 0 for k in dI}


def m_dgiou(p, g, fix3):
    inter, U = m_iu(p, g, fix3)
    dU = m_du(p, g, fix3)
    C = {"t": min(p["t"], g["t"]), "b": max(p["b"], g["b"]), "l": min(p["l"], g["l"]), "r": max(p["r"], g["r"])}
    dC = {"dt": -(C["r"] - C["l"]) if p["t"] < g["t"] else 0, "db": C["r"] - C["l"] if p["b"] > g["b"] else 0,
          "dl": -(C["b"] - C["t"]) if p["l"] < g["l"] else 0, "dr": C["b"] - C["t"] if p["r"] > g["r"] else 0}
    area = (C["b"] - C["t"]) * (C["r"] - C["l"])
    base = m_diou(p, g) if m_overlap(p, g) else {k: 0 for k in dU}
    return {k: base[k] + (area * dU[k] - U * dC[k]) / area ** 2 for k in dU}


def m_xywh(s, fix1):
    k = 0.5 if fix1 else 1.0
    return [s["dl"] + s["dr"], s["dt"] + s["db"], k * (s["dr"] - s["dl"]), k * (s["db"] - s["dt"])]


def m_ddiou(A, B, fx, ciou=False):
    p, g = m_tblr(A), m_tblr(B)
    C = {"t": min(p["t"], g["t"]), "b": max(p["b"], g["b"]), "l": min(p["l"], g["l"]), "r": max(p["r"], g["r"])}
    c2 = (C["b"] - C["t"]) ** 2 + (C["r"] - C["l"]) ** 2
    CCw, CCh = C["r"] - C["l"], C["b"] - C["t"]
    Ct = (0, 1, 0, -0.5) if p["t"] < g["t"] else (0, 0, 0, 0)
    Cb = (0, 1, 0, 0.5) if p["b"] > g["b"] else (0, 0, 0, 0)
    Cl = (1, 0, -0.5, 0) if p["l"] < g["l"] else (0, 0, 0, 0)
    Cr = (1, 0, 0.5, 0) if p["r"] > g["r"] else (0, 0, 0, 0)
    if fx["ii"]:  # exact: C_w = C_r − C_l depends on x, w; C_h = C_b − C_t on y, h
        Cw = [Cr[0] - Cl[0], 0, Cr[2] - Cl[2], 0]
        Ch = [0, Cb[1] - Ct[1], 0, Cb[3] - Ct[3]]
    else:  # the MATLAB: both structs get every field, and −1 where B spans B_gt
        Cw = [Cr[0] - Cl[0], Cb[1] - Ct[1], Cr[2] - Cl[2], Cb[3] - Ct[3]]
        Ch = list(Cw)
        if p["l"] < g["l"] and p["r"] > g["r"]:
            Cw[2] = -1
        if p["t"] < g["t"] and p["b"] > g["b"]:
            Ch[3] = -1
    d = (A[0] - B[0]) ** 2 + (A[1] - B[1]) ** 2
    sign = 1 if fx["v"] else -1
    s = [(2 * (B[j] - A[j]) * c2 + sign * (2 * CCw * Cw[j] + 2 * CCh * Ch[j]) * d) / c2 ** 2 for j in (0, 1)]
    s += [(2 * CCw * Cw[j] + 2 * CCh * Ch[j]) * d / c2 ** 2 for j in (2, 3)]
    if ciou:
        inter, U = m_iu(p, g, False)
        iou = inter / U if m_overlap(p, g) else 0
        delta = math.atan(B[2] / B[3]) - math.atan(A[2] / A[3])
        v = 4 / math.pi ** 2 * delta ** 2
        scale = 1 / (A[2] ** 2 + A[3] ** 2) if fx["iv"] else 1
        alpha = v / (1 - iou + v + 1e-7)
        s[2] += alpha * 8 / math.pi ** 2 * delta * A[3] * scale
        s[3] += alpha * -8 / math.pi ** 2 * delta * A[2] * scale
    return [a + b for a, b in zip(m_xywh(m_diou(p, g), fx["i"]), s)]


def matlab(name, A, B, fx):
    if name == "iou":
        return m_xywh(m_diou(m_tblr(A), m_tblr(B)), fx["i"])
    if name == "giou":
        return m_xywh(m_dgiou(m_tblr(A), m_tblr(B), fx["iii"]), fx["i"])
    return m_ddiou(A, B, fx, ciou=name == "ciou")


def random_pairs(n, seed, spread=2.0):
    rng = random.Random(seed)
    return [([rng.uniform(-spread, spread), rng.uniform(-spread, spread), rng.uniform(0.3, 2.5), rng.uniform(0.3, 2.5)],
             [rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.3, 2.5), rng.uniform(0.3, 2.5)])
            for _ in range(n)]


def stacked(pairs):
    return (torch.tensor([p for p, _ in pairs], dtype=torch.float64).T,
            torch.tensor([g for _, g in pairs], dtype=torch.float64).T)


def test_paper_port_matches_a_line_by_line_transliteration_of_the_matlab():
    """Random boxes (overlapping, disjoint, nested), every loss, every subset of its quirks fixed."""
    pairs = random_pairs(400, 0)
    pred, gt = stacked(pairs)
    for name in exp.LOSSES:
        own = exp.QUIRKS_OF[name]
        for k in range(2 ** len(own)):
            chosen = [q for j, q in enumerate(own) if k >> j & 1]
            fx = {q: q in chosen for q in exp.QUIRKS}
            ours = paper_ascent(name, pred, gt, fixes(*chosen))
            ref = torch.tensor([matlab(name, p, g, fx) for p, g in pairs], dtype=torch.float64).T
            torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12, msg=f"{name} fixed {chosen}")


def test_paper_port_with_every_fix_equals_autograd_and_every_quirk_matters():
    pred, gt = stacked(random_pairs(500, 1))
    for name in exp.LOSSES:
        exact = grad_of(name, pred, gt)
        torch.testing.assert_close(paper_ascent(name, pred, gt, ALL), exact, rtol=1e-10, atol=1e-12)
        for q in exp.QUIRKS_OF[name]:  # each quirk, kept alone, changes the direction of some boxes
            kept = {k: torch.tensor(k != q) for k in exp.QUIRKS}
            assert (paper_ascent(name, pred, gt, kept) - exact).abs().max() > 1e-3, (name, q)


def test_cases_follow_test_1715k():
    g = torch.Generator().manual_seed(0)
    centres = simulation.anchor_centres(2000, 3.0, g)
    r = (centres - torch.tensor(simulation.CENTRE, dtype=torch.float64)).norm(dim=1)
    assert r.max() <= 3.0 and abs((r ** 2 / 9).mean().item() - 0.5) < 0.03  # uniform in the disc: r² ~ U(0, 9)
    anchors, targets = simulation.regression_cases(centres[:2])
    assert anchors.shape == targets.shape == (4, 2 * 343)
    assert torch.equal(anchors[:2, :343], centres[0][:, None].expand(2, 343))
    torch.testing.assert_close(targets[2] * targets[3], torch.ones(686, dtype=torch.float64))  # target area 1
    ratio = anchors[2, :343].view(7, 7, 7) / anchors[3, :343].view(7, 7, 7)  # (target ratio, scale, anchor ratio)
    want = torch.tensor([w / h for w, h in simulation.ASPECT_RATIOS], dtype=torch.float64)
    torch.testing.assert_close(ratio, want.expand(7, 7, 7))
    scale = (anchors[2] * anchors[3])[:343].view(7, 7, 7)
    torch.testing.assert_close(scale, torch.tensor(simulation.ANCHOR_SCALES, dtype=torch.float64)[None, :, None].expand(7, 7, 7))
    assert simulation.learning_rates((160, 20, 20), (0.1, 0.01, 0.001))[159:161] == [0.1, 0.01]


def test_one_step_is_the_papers_update():
    """B ← B + η (2 − IoU) D: a unit box shifted by ½ has IoU 1/3 and D_IoU = (−8/9, 0, 2/9, −2/9)."""
    pred, gt = box(0.5, 0, 1, 1)[:, None, None], box(0, 0, 1, 1)[:, None, None]
    blk = [simulation.Block("iou", 0, 1, {q: torch.tensor([[True]]) for q in exp.QUIRKS})]
    for ascent in (simulation.exact_ascent, simulation.hand_ascent):
        step = simulation.descend(pred, gt, ascent(pred, gt, blk), 0.1)[:, 0, 0]
        want = torch.tensor([0.5, 0, 1, 1], dtype=torch.float64) + 0.1 * (5 / 3) * torch.tensor(
            [-8 / 9, 0, 2 / 9, -2 / 9], dtype=torch.float64)
        torch.testing.assert_close(step, want, rtol=1e-12, atol=1e-12)


def regress(name, mode, anchors, targets, steps=200):
    """One loss, one mode, the paper's schedule: final boxes (4, 1, N)."""
    b = anchors[:, None].clone()
    blk = [simulation.Block(name, 0, 1, {q: torch.tensor([[mode == "autograd"]]) for q in exp.QUIRKS})]
    ascent = simulation.exact_ascent if mode == "autograd" else simulation.hand_ascent
    for lr in simulation.learning_rates((160, 20, 20), (0.1, 0.01, 0.001))[:steps]:
        b = simulation.descend(b, targets[:, None], ascent(b, targets[:, None], blk), lr)
    return b


def test_centred_anchors_make_diou_equal_iou_and_iou_stalls_on_disjoint_boxes():
    centred, targets = simulation.regression_cases(simulation.anchor_centres(1, 0.0, torch.Generator().manual_seed(0)))
    for mode in ("autograd", "paper"):  # ρ = 0: the DIoU penalty and its gradient vanish
        torch.testing.assert_close(regress("diou", mode, centred, targets), regress("iou", mode, centred, targets),
                                   rtol=0, atol=1e-12)
    anchors, targets = simulation.regression_cases(simulation.anchor_centres(3, 3.0, torch.Generator().manual_seed(1)))
    disjoint = boxes.iou(anchors, targets) == 0
    assert disjoint.any()
    for name in ("iou", "giou"):
        moved = (regress(name, "autograd", anchors, targets, steps=20)[:, 0] - anchors).abs().sum(0)
        assert (moved[disjoint] == 0).all() if name == "iou" else (moved[disjoint] > 0).all()


def test_units_of_centres_combine_to_the_whole(tmp_path):
    sets = ["centres=3", "fix_variants=giou:iii"]
    whole = mlbench.run("diou-box-regression", profile="smoke", sets=sets, results=tmp_path).summary["measurements"]
    parts = mlbench.run("diou-box-regression", profile="smoke", sets=[*sets, "chunk_centres=1"],
                        results=tmp_path).summary["measurements"]
    assert whole.keys() == parts.keys()
    for arm in whole:
        for metric, values in whole[arm].items():
            assert values == pytest.approx(parts[arm][metric], rel=1e-12, abs=1e-14, nan_ok=True), (arm, metric)


@pytest.mark.parametrize("bad", ["paper_fixes=vi", "fix_variants=iou:iii", "fix_variants=box:i",
                                 "stage_lrs=0.1,0.01", "early_step=500"])
def test_bad_config_is_refused_before_anything_runs(bad, tmp_path):
    with pytest.raises(ConfigError):
        mlbench.run("diou-box-regression", profile="smoke", sets=[bad], results=tmp_path)
    assert not (tmp_path / "diou-box-regression").exists()


@pytest.mark.slow
def test_quick_verdicts(run_once):
    claims = {c["id"]: c for c in run_once("diou-box-regression").summary["claims"]}
    assert claims["diou-faster"]["verdict"] == "not_reproduced"  # exact gradients: GIoU ahead of DIoU
    assert claims["diou-faster-paper-gradients"]["verdict"] == "reproduced"  # the hand-written ones: DIoU ahead
    for cid in ("ciou-best", "iou-stalls", "diou-beats-giou-overlapping"):
        assert claims[cid]["verdict"] == "reproduced", (cid, claims[cid]["reason"])
    # the port redraws Fig. 3(b) for IoU, DIoU, CIoU; GIoU's 40-centre samples spread too much between seeds
    parts = [p["verdict"] for p in claims["port-matches-figure"]["parts"]]
    assert parts == ["reproduced", "inconclusive", "reproduced", "reproduced"], parts


@pytest.mark.slow
def test_negative_control_has_no_disjoint_cases_and_diou_equals_iou(run_once):
    summary = run_once("diou-box-regression", sets=("negative_control=true",)).summary
    verdicts = {c["id"]: c["verdict"] for c in summary["claims"]}
    assert verdicts["iou-stalls"] == "inconclusive"
    m = summary["measurements"]
    for mode in exp.MODES:
        iou, diou = m[f"iou@mode={mode}"], m[f"diou@mode={mode}"]
        assert iou["disjoint_share"] == [0.0] * len(iou["disjoint_share"])
        assert diou["final_error"] == pytest.approx(iou["final_error"], abs=1e-12)
