"""Two gloo processes (torchrun, and accelerate launch) give the single-process result; the
gather a CUDA launch uses (CPU payloads on a gloo group beside NCCL) works."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mlbench

TINY = ["--set", "steps=6", "--set", "eval_every=2", "--set", "eval_size=64", "--set", "stats_queries=32"]
ARGS = ["run", "attn-scaling", "--profile", "smoke", "--device", "cpu", "--threads", "1", *TINY]


def _single(tmp_path):
    sets = [TINY[i + 1] for i in range(0, len(TINY), 2)]
    return mlbench.run("attn-scaling", profile="smoke", device="cpu", threads=1, sets=sets,
                       results=tmp_path / "one").run_dir


def _compare(one, two):
    for name in ("summary.json", "metrics.jsonl", "table.csv"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert sorted(p.name for p in (one / "checkpoints").iterdir()) == sorted(p.name for p in (two / "checkpoints").iterdir())


@pytest.mark.slow
def test_torchrun_two_processes_equal_one(tmp_path):
    one = _single(tmp_path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "cli.main", *ARGS, "--results", str(tmp_path / "two")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _compare(one, tmp_path / "two" / "attn-scaling" / one.name)
    manifest = json.loads((tmp_path / "two" / "attn-scaling" / one.name / "manifest.json").read_text())
    assert manifest["processes"] == 2
    assert manifest["device"]["backend"] == "gloo"  # each rank's device, from accelerate's placement
    assert [(r["rank"], r["device"].split(":")[0]) for r in manifest["device"]["ranks"]] == [(0, "cpu"), (1, "cpu")]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate") is None, reason="accelerate CLI not on PATH")
def test_accelerate_launch_two_processes_equal_one(tmp_path):
    one = _single(tmp_path)
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29518",
           "-m", "cli.main", *ARGS, "--results", str(tmp_path / "two")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _compare(one, tmp_path / "two" / "attn-scaling" / one.name)


# A CUDA launch's default group is NCCL, which has no collectives on CPU tensors. Emulated on two
# CPU processes: the default (gloo) group claims to be NCCL and refuses CPU tensors as NCCL does.
NCCL_EMULATION = """
import json, sys
import torch.distributed as dist
real_gather, real_backend, world = dist.all_gather, dist.get_backend, lambda g: g is None or g is dist.group.WORLD
dist.get_backend = lambda group=None: "nccl" if world(group) else real_backend(group)

def nccl_all_gather(out, tensor, group=None, **kw):
    if world(group) and tensor.device.type == "cpu":
        raise RuntimeError("NCCL: tensors must be on a CUDA device")
    return real_gather(out, tensor, group=group, **kw)

dist.all_gather = nccl_all_gather
from mlbench.core import device, distributed
here = device.place("cpu")
units = {f"u{here.rank}": {"result": here.rank, "log": [{"rank": here.rank}], "checkpoints": {"w": bytes([here.rank, 255])}}}
parts = distributed.all_gather_json(units, here.world)
distributed.barrier()
out = {"ranks": list(here.ranks), "group": real_backend(distributed.payload_group()),
       "parts": [{k: {**v, "checkpoints": {n: list(b) for n, b in v["checkpoints"].items()}} for k, v in p.items()} for p in parts]}
open(sys.argv[1] + f"/rank{here.rank}.json", "w").write(json.dumps(out))
"""


@pytest.mark.slow
def test_cuda_launch_gather_sends_cpu_payloads_over_a_gloo_group(tmp_path):
    script = tmp_path / "gather.py"
    script.write_text(NCCL_EMULATION)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29519",
           str(script), str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    expected = [{f"u{r}": {"result": r, "log": [{"rank": r}], "checkpoints": {"w": [r, 255]}}} for r in (0, 1)]
    for out in outs:
        assert out["group"] == "gloo" and out["parts"] == expected
        assert [(r["rank"], r["device"].split(":")[0]) for r in out["ranks"]] == [(0, "cpu"), (1, "cpu")]  # accelerate: cpu:0
