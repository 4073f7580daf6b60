"""Two gloo processes (torchrun, and accelerate launch) give the single-process result."""

import shutil
import subprocess
import sys

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
    assert '"processes": 2' in (tmp_path / "two" / "attn-scaling" / one.name / "manifest.json").read_text()


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
