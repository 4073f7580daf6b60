"""flash-attention-tiling: the tiled forms against numpy's closed form, the allocator-level memory
counter against closed-form byte counts, the allocator's own running total and an independent
storage tracker, the every-value rule, reruns, resume, the GPU-only refusals, and the verdicts."""

import json
import math
import weakref

import numpy as np
import pytest
import torch
from helpers import InterruptAt
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

import mlbench
from mlbench.core.errors import UsageError
from mlbench.core.verdict import NOT_REPRODUCED, REPRODUCED
from mlbench.exps import flash_attention_tiling as exp
from mlbench.exps.flash_attention_tiling import attention as att
from mlbench.exps.flash_attention_tiling import memory, speed
from mlbench.exps.flash_attention_tiling.rules import Every

NAME = "flash-attention-tiling"
CPU = torch.device("cpu")


def qkv(n, d, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(n, d, generator=g, dtype=dtype) for _ in range(3))


def numpy_attention(q, k, v, tau):
    """softmax(τ·QKᵀ)V and logsumexp(τ·QKᵀ), row by row in numpy float64."""
    s = tau * q.numpy() @ k.numpy().T
    top = s.max(-1, keepdims=True)
    e = np.exp(s - top)
    return (e / e.sum(-1, keepdims=True)) @ v.numpy(), (top + np.log(e.sum(-1, keepdims=True)))[:, 0]


@pytest.mark.parametrize("blocks", [(64, 64), (7, 13), (100, 100), (1, 100)])
def test_tiled_attention_equals_the_closed_form(blocks):
    q, k, v = qkv(100, 16)  # 100 is no multiple of 7 or 13: the last tiles are short
    ref_out, ref_lse = numpy_attention(q, k, v, 0.25)
    out, lse = att.tiled_attention(q, k, v, 0.25, *blocks)
    np.testing.assert_allclose(out.numpy(), ref_out, rtol=0, atol=1e-13)
    np.testing.assert_allclose(lse.numpy(), ref_lse, rtol=0, atol=1e-13)
    for form in (att.naive_attention(q, k, v, 0.25), att.reference_attention(q, k, v, 0.25)[0],
                 att.fused_attention(q[None, None], k[None, None], v[None, None], 0.25)[0, 0]):
        np.testing.assert_allclose(form.numpy(), ref_out, rtol=0, atol=1e-13)


def test_the_ablations_fail_where_the_math_says():
    q, k, v = qkv(256, 16, seed=1)
    ref, _ = numpy_attention(q, k, v, 0.25)
    one_block = att.tiled_attention(q, k, v, 0.25, 64, 256, rescale=False)[0]  # one key block: nothing to rescale
    np.testing.assert_allclose(one_block.numpy(), ref, rtol=0, atol=1e-13)
    assert np.abs(att.tiled_attention(q, k, v, 0.25, 64, 64, rescale=False)[0].numpy() - ref).max() > 0.01
    q32, k32, v32 = (x.float() for x in (q, k, v))
    tame = att.tiled_attention(q32, k32, v32, 0.25, 64, 64, subtract_max=False)[0]  # logits ~ N(0, 1)
    assert np.abs(tame.double().numpy() - ref).max() < 1e-5
    k32[0] = 100.0 * q32[0] / q32[0].norm() ** 2 * 4  # the logit of row 0 against key 0 is 100 > ln(FLT_MAX)
    assert not torch.isfinite(att.tiled_attention(q32, k32, v32, 0.25, 64, 64, subtract_max=False)[0][0]).all()
    assert torch.isfinite(att.tiled_attention(q32, k32, v32, 0.25, 64, 64)[0]).all()


def test_max_error_and_rounding_floor():
    ref = torch.tensor([1.0, 1.0 + 1e-9], dtype=torch.float64)
    assert math.isnan(att.max_abs_err(torch.tensor([1.0, math.nan]), ref))
    assert att.rounding_floor(ref, torch.float32) == pytest.approx(2e-9, rel=1e-3)


class StorageTracker(TorchDispatchMode):
    """An independent count: live bytes of the storages created by ops inside the mode (views and
    in-place ops create none), freed through `weakref.finalize` on the storage."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self.seen = set()

    def _free(self, key, nbytes):
        self.live -= nbytes
        self.seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                st = t.untyped_storage()
                key = st.data_ptr()
                if key not in self.seen and key not in inputs and st.nbytes():
                    self.seen.add(key)
                    self.live += st.nbytes()
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(st, self._free, key, st.nbytes())
        return out


def tracked_peak(fn):
    with torch.no_grad(), StorageTracker() as tracker:
        out = fn()
    del out
    return tracker.peak


def test_memory_counter_against_closed_forms_and_the_allocators_running_total():
    n, d = 512, 32
    q, k, v = qkv(n, d, dtype=torch.float32)
    assert memory.peak_extra_bytes(lambda: q @ k.T, CPU)[1] == n * n * 4  # one score matrix
    assert memory.peak_extra_bytes(lambda: att.naive_attention(q, k, v, 0.1), CPU)[1] == 2 * n * n * 4  # S and P
    assert memory.peak_extra_bytes(lambda: q.T, CPU)[1] == 0  # a view allocates nothing
    with torch.no_grad(), memory.profile(activities=[memory.ProfilerActivity.CPU], profile_memory=True) as prof:
        att.tiled_attention(q, k, v, 0.1, 64, 64)
    stack, seq = list(reversed(prof.profiler.kineto_results.experimental_event_tree())), []
    while stack:  # the allocator reports its live total with each event: our order must reproduce it
        e = stack.pop()
        if isinstance(e.extra_fields, memory._ExtraFields_Allocation):
            seq.append((e.extra_fields.alloc_size, e.extra_fields.total_allocated))
        stack.extend(reversed(e.children))
    assert len(seq) > 100 and all(b[1] - a[1] == b[0] for a, b in zip(seq, seq[1:]))


def test_peak_live_bytes_ignores_storages_from_before_the_call():
    events = [(1, -500), (2, 100), (3, 50), (2, -100), (4, 70), (3, -50)]  # address 1 predates the call
    assert memory.peak_live_bytes(events) == 150


@pytest.mark.parametrize("form", ["naive", "tiled"])
def test_allocator_count_equals_an_independent_storage_tracker(form):
    n, d = 256, 64
    q, k, v = qkv(n, d, seed=2, dtype=torch.float32)
    call = {"naive": lambda: att.naive_attention(q, k, v, 0.125),
            "tiled": lambda: att.tiled_attention(q, k, v, 0.125, 64, 64)}[form]
    assert memory.peak_extra_bytes(call, CPU)[1] == tracked_peak(call)


def test_every_value_rule():
    m = {"a": {"r": [0.5, 0.9]}, "b": {"r": [0.2, 1.0]}}
    assert Every("r", ("a", "b"), 1.0).__call__(m).verdict == REPRODUCED
    assert Every("r", ("a", "b"), 0.95).__call__(m).verdict == NOT_REPRODUCED
    assert Every("r", ("a",), 0.4, "at_least").__call__(m).verdict == REPRODUCED
    assert Every("r", ("a",), 1.0).__call__({"a": {"r": [0.5, math.nan]}}).verdict == NOT_REPRODUCED


def test_speed_path_runs_on_a_cpu_for_plumbing():
    cfg = exp.Config(head_dim=16, speed_batch=1, speed_heads=2, speed_calls=2, speed_warmup=1)
    out = speed.one_length(cfg, CPU, 64, torch.Generator().manual_seed(0))
    for form in exp.SPEED_FORMS:
        assert out[form]["ms"] > 0 and out[form]["peak_bytes"] > 0 and out[form]["rule_ratio"] < 1


def test_speed_claims_tables_and_plot_come_out(tmp_path, monkeypatch):
    """The GPU-only part end to end on a CPU, `check()` bypassed: plumbing, not a speed figure."""
    monkeypatch.setattr(exp, "check", lambda cfg, device: None)
    sets = ["speed=true", "speed_lengths=[1024]", "speed_batch=1", "speed_heads=1", "speed_calls=2",
            "speed_warmup=0", "lengths=[64,128]"]
    res = mlbench.run(NAME, profile="smoke", sets=sets, results=tmp_path, threads=1)
    assert [c["id"] for c in res.summary["claims"]][-2:] == ["speed", "fused-exact"]
    assert (res.run_dir / "table-speed.csv").read_text().startswith("n,standard_ms")
    assert (res.run_dir / "plots" / "speed.png").stat().st_size > 0
    assert res.summary["measurements"]["flash@n1024"]["rule_ratio"][0] < 1


def test_gpu_sized_profiles_are_refused_on_cpu():
    from mlbench.core.spec import resolve

    with pytest.raises(UsageError, match="speed claim"):
        resolve(NAME, profile="full", device="cpu")
    with pytest.raises(UsageError, match="float64 reference"):
        resolve(NAME, profile="full", device="cpu", sets=["speed=false"])
    spec = resolve(NAME, profile="full", device="cpu", sets=["speed=false", "lengths=[1024,2048,4096,8192]"])
    assert "speed" not in {c.id for c in exp.claims(spec.cfg)}


def _files(run_dir):
    names = ["metrics.jsonl", "summary.json", "table.md", *sorted(p.relative_to(run_dir).as_posix() for d in (
        "checkpoints", "plots") for p in (run_dir / d).iterdir()), *sorted(p.name for p in run_dir.glob("table*.csv"))]
    return {n: (run_dir / n).read_bytes() for n in names}


def test_rerun_is_byte_identical_and_resumes(tmp_path):
    first = mlbench.run(NAME, profile="smoke", results=tmp_path / "a", threads=1)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C as repeat 1 starts
        mlbench.run(NAME, profile="smoke", results=tmp_path / "b", threads=1, progress=InterruptAt(2))
    resumed = mlbench.run(NAME, profile="smoke", results=tmp_path / "b", threads=1)
    assert json.loads((resumed.run_dir / "manifest.json").read_text())["resumed_units"] == ["seed0"]
    a, b = _files(first.run_dir), _files(resumed.run_dir)
    assert len(a) == 10 and a == b  # 3 tables, 2 plots, 2 checkpoints, metrics, summary, table.md


@pytest.mark.slow
def test_quick_profile_verdicts(run_once):
    summary = run_once(NAME).summary
    assert {c["id"]: c["verdict"] for c in summary["claims"]} == {
        "exact-linear-memory": "reproduced", "savings-grow": "reproduced", "rescaling": "reproduced"}
    m = summary["measurements"]
    for n in exp.Config().lengths:  # plain attention's peak is exactly S and P, on every seed
        assert m[f"naive@n{n}"]["peak_bytes"] == [2 * n * n * 4] * 3


@pytest.mark.slow
def test_negative_control_fails_for_the_stated_reason(run_once):
    """One n×n tile: still exact, but quadratic memory (part 4), and the no-rescale arm is exact too."""
    summary = run_once(NAME, sets=("negative_control=true",)).summary
    claims = {c["id"]: c for c in summary["claims"]}
    assert [p["verdict"] for p in claims["exact-linear-memory"]["parts"]] == [REPRODUCED] * 3 + [NOT_REPRODUCED]
    assert claims["savings-grow"]["verdict"] == claims["rescaling"]["verdict"] == NOT_REPRODUCED
