"""The CLI as a user meets it: exit codes and text (Typer's CliRunner)."""

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from mlbench.core import registry
from helpers import assert_cli_stays_light

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_commands():
    res = invoke("--help")
    assert res.exit_code == 0
    for cmd in ("list", "show", "run", "report"):
        assert cmd in res.output


def test_list_table_and_json():
    res = invoke("list")
    assert res.exit_code == 0 and "attn-scaling" in res.output
    data = json.loads(invoke("list", "--json").output)
    assert {d["name"] for d in data} == set(registry.names())
    assert all(d["claim"] and d["citation"] and "quick" in d["profiles"] for d in data)


def test_show_fields_and_profiles():
    res = invoke("show", "attn-scaling")
    assert res.exit_code == 0
    for text in ("head_dims", "list[int]", "negative_control", "smoke", "quick", "full", "Vaswani"):
        assert text in res.output


@pytest.mark.parametrize("args, message", [
    (["run", "attn-scalng"], "Did you mean 'attn-scaling'?"),
    (["show", "nope"], "unknown experiment 'nope'"),
    (["run", "attn-scaling", "--set", "stepz=3"], "Did you mean 'steps'?"),
    (["run", "attn-scaling", "--set", "steps=many"], "'steps' expects int"),
    (["run", "attn-scaling", "--set", "steps"], "--set expects key=value"),
    (["run", "attn-scaling", "--profile", "huge"], "unknown profile 'huge'"),
    (["run", "attn-scaling", "--config", "missing.toml"], "config file not found"),
    (["run", "attn-scaling", "--seeds", "0"], "--seeds must be a positive integer"),
    (["run", "attn-scaling", "--device", "tpu"], "unknown device 'tpu'"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, results):
    res = invoke(*args, "--results", results) if args[0] == "run" else invoke(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert not (results / "attn-scaling").exists()  # nothing half-written


def test_malformed_toml(tmp_path, results):
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = = 3\n")
    res = invoke("run", "attn-scaling", "--config", bad, "--results", results)
    assert res.exit_code == 2 and "malformed TOML" in res.output
    bad.write_text("steps = 'ten'\n")
    res = invoke("run", "attn-scaling", "--config", bad, "--results", results)
    assert res.exit_code == 2 and "'steps' expects int" in res.output
    assert not results.exists()


def test_cuda_without_gpu(results):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    res = invoke("run", "attn-scaling", "--device", "cuda", "--results", results)
    assert res.exit_code == 2 and "no CUDA GPU" in res.output
    assert not results.exists()


def test_unwritable_results_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for root in (blocker, blocker / "sub"):
        res = invoke("run", "attn-scaling", "--profile", "smoke", "--results", root)
        assert res.exit_code == 2 and "results root" in res.output


def test_run_twice_then_report(results):
    args = ("run", "attn-scaling", "--profile", "smoke", "--results", results)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "verdict (training):" in first.output and "run folder:" in first.output
    second = invoke(*args)
    assert second.exit_code == 0 and "already complete" in second.output
    res = invoke("report", "--results", results)
    assert res.exit_code == 0
    text = (results / "REPORT.md").read_text()
    assert f"## attn-scaling (v{registry.version('attn-scaling')})" in text and "| smoke | 2 |" in text


def test_results_from_environment(results, monkeypatch):
    monkeypatch.setenv("MLBENCH_RESULTS", str(results))
    assert invoke("run", "attn-scaling", "--profile", "smoke").exit_code == 0
    assert list((results / "attn-scaling").iterdir())


def test_report_on_missing_root(tmp_path):
    res = invoke("report", "--results", tmp_path / "none")
    assert res.exit_code == 2 and "results root not found" in res.output


def test_full_disk_is_one_line_and_leaves_no_run_folder(results, monkeypatch):
    import errno
    import os

    from mlbench.core import store

    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", full)
    res = invoke("run", "attn-scaling", "--profile", "smoke", "--results", results)
    monkeypatch.setattr(store.os, "fsync", real_fsync)
    assert res.exit_code == 2 and "No space left on device" in res.output
    assert "Traceback" not in res.output
    assert not (results / "attn-scaling").exists() or not any((results / "attn-scaling").iterdir())


def test_corrupt_summary_of_a_complete_run(results):
    assert invoke("run", "attn-scaling", "--profile", "smoke", "--results", results).exit_code == 0
    (summary,) = results.glob("attn-scaling/*/summary.json")
    summary.write_text('{"verdict": "repro')
    res = invoke("run", "attn-scaling", "--profile", "smoke", "--results", results)
    assert res.exit_code == 2 and "corrupt" in res.output and "summary.json" in res.output
    assert invoke("run", "attn-scaling", "--profile", "smoke", "--results", results, "--force").exit_code == 0


def test_full_fp16_on_cpu_is_refused_before_anything_is_written(results):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    res = invoke("run", "fp16-mixed", "--profile", "full", "--device", "cpu", "--results", results)
    assert res.exit_code == 2 and "needs --device cuda" in res.output.replace("\n", " ")
    assert not (results / "fp16-mixed").exists()


@pytest.mark.parametrize("item, message", [
    ("lr=nan", "'lr' must be a finite number"),
    ("lr=1e400", "'lr' must be a finite number"),
    ("lr=-1", "'lr' must be >= 0"),
    ("steps=0", "'steps' must be >= 1"),
    ("head_dims=16,0", "'head_dims' must be >= 1"),
    ("threshold=1.5", "'threshold' must be in [0, 1]"),
])
def test_out_of_range_and_non_finite_values_are_refused_before_anything_runs(item, message, results):
    res = invoke("run", "attn-scaling", "--set", item, "--results", results)
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not results.exists()


def test_show_and_report_never_import_torch(tmp_path):
    (tmp_path / "r").mkdir()
    assert_cli_stays_light(tmp_path / "r", [["show", "attn-scaling"], ["list"], ["report", "--results", "{results}"]])


@pytest.mark.parametrize("args, says", [
    (["run", "attn-scaling", "--threads", "abc"], "Invalid value for '--threads'"),
    (["run", "--all", "--jobs", "0"], "Invalid value for '--jobs'"),
    (["show"], "Missing argument 'experiment'"),
    (["nope"], "No such command 'nope'"),
    (["run", "attn-scaling", "--bogus"], "No such option: --bogus"),
])
def test_a_usage_error_is_one_line_and_exit_2(args, says):
    res = invoke(*args)
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and says in lines[0] and lines[0].startswith("error:"), res.output
