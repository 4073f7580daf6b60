"""`mlbench check`: a baseline of verdicts, and a non-zero exit when a claim flips."""

import json

import pytest
from typer.testing import CliRunner

import mlbench
from cli.main import app

TINY = ["steps=4", "eval_every=2", "eval_size=32", "stats_dims=16,64", "stats_queries=16", "head_dims=8,16"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    mlbench.run("attn-scaling", profile="quick", seeds=2, sets=TINY, results=root, threads=1)
    mlbench.run("attn-scaling", profile="smoke", results=root, threads=1)  # never baselined
    return root


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_write_then_check_passes_and_a_flip_fails(root, tmp_path):
    base = tmp_path / "baseline.json"
    res = invoke("check", base, "--write", "--results", root)
    assert res.exit_code == 0 and "3 claims of 1 experiment\n" in res.output
    data = json.loads(base.read_text())
    assert data["experiments"]["attn-scaling"]["profile"] == "quick"  # the smoke run is not a verdict
    assert invoke("check", base, "--results", root).exit_code == 0
    claims = data["experiments"]["attn-scaling"]["claims"]
    claims["t5-init"] = "reproduced" if claims["t5-init"] != "reproduced" else "not_reproduced"
    base.write_text(json.dumps(data))
    res = invoke("check", base, "--results", root)
    assert res.exit_code == 1 and "t5-init" in res.output and "flipped" in res.output
    changes = json.loads(invoke("check", base, "--results", root, "--json").stdout)
    assert [c["claim"] for c in changes if c["failing"]] == ["t5-init"]


def test_missing_or_corrupt_baseline_is_one_line_exit_2(root, tmp_path):
    res = invoke("check", tmp_path / "none.json", "--results", root)
    assert res.exit_code == 2 and "check --write" in res.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "mlbench-baseline/1", "experiments": 3}')
    res = invoke("check", bad, "--results", root)
    assert res.exit_code == 2 and "corrupt baseline" in res.output
