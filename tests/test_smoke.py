"""Every registered experiment's smoke profile: the whole pipeline, files and all."""

import json

import pytest
from safetensors import safe_open

import mlbench
from mlbench.core import registry
from mlbench.core.verdict import OUTCOMES, SMOKE


@pytest.mark.parametrize("name", registry.names())
def test_smoke_profile_writes_a_complete_run(name, results):
    res = mlbench.run(name, profile="smoke", results=results)
    run_dir = res.run_dir
    for f in ("config.json", "manifest.json", "metrics.jsonl", "summary.json", "table.md", "table.csv"):
        assert (run_dir / f).is_file(), f
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["experiment"] == name
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == SMOKE and not summary["decides"]  # plumbing, never shown as a result
    assert all(c["verdict"] == SMOKE and c["smoke_outcome"] in OUTCOMES and c["citation"] for c in summary["claims"])
    assert summary["headline"]["claim"] == summary["claims"][0]["id"]
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines)
    plots = list((run_dir / "plots").glob("*.png"))
    assert plots and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    ckpts = list((run_dir / "checkpoints").glob("*.safetensors"))
    assert ckpts
    with safe_open(str(ckpts[0]), framework="pt") as fh:
        assert fh.metadata()["experiment"] == name and list(fh.keys())
