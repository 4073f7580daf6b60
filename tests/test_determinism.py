"""Same command, same bytes: two runs (one in a fresh process) and a resumed run."""

import json
import subprocess
import sys

import pytest

import mlbench
from helpers import InterruptAt

COMPARED = ("metrics.jsonl", "table.csv", "table.md", "summary.json")


def files(run_dir):
    out = {f: (run_dir / f).read_bytes() for f in COMPARED}
    out.update({f"checkpoints/{p.name}": p.read_bytes() for p in sorted((run_dir / "checkpoints").iterdir())})
    return out


def test_two_runs_same_bytes_and_run_id(tmp_path):
    a = mlbench.run("attn-scaling", profile="smoke", results=tmp_path / "a", threads=1)
    cmd = [sys.executable, "-m", "cli.main", "run", "attn-scaling", "--profile", "smoke",
           "--threads", "1", "--results", str(tmp_path / "b")]
    subprocess.run(cmd, check=True, capture_output=True)
    b_dir = tmp_path / "b" / "attn-scaling" / a.run_dir.name
    assert b_dir.is_dir()  # same run id in a fresh process
    assert files(a.run_dir) == files(b_dir)


def test_interrupted_run_resumes_finished_units(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        mlbench.run("attn-scaling", profile="smoke", results=tmp_path / "r", threads=1, progress=InterruptAt(2))
    run_dir = next((tmp_path / "r" / "attn-scaling").iterdir())
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    assert not (run_dir / "summary.json").exists()
    done = sorted(p.stem for p in (run_dir / "units").glob("*.json"))
    assert "train-d8" in done and "train-d16" not in done
    resumed = mlbench.run("attn-scaling", profile="smoke", results=tmp_path / "r", threads=1)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and "train-d8" in manifest["resumed_units"]
    fresh = mlbench.run("attn-scaling", profile="smoke", results=tmp_path / "f", threads=1)
    assert files(resumed.run_dir) == files(fresh.run_dir)
