"""`mlbench runs`, `mlbench diff`, `--dry-run` and the command each run folder carries."""

import json
import shlex
import shutil

import pytest
from rich.console import Console
from typer.testing import CliRunner

import mlbench
from cli.main import app
from mlbench.core import lock
from helpers import TINY


def invoke(*args, **kw):
    return CliRunner().invoke(app, [str(a) for a in args], **kw)


def sets(*items):
    return sum((["--set", s] for s in items), [])


@pytest.fixture
def mixed_root(two_runs, tmp_path):
    """The two complete runs, plus a failed one and a `running` one whose process is gone."""
    root, runs = two_runs
    other = tmp_path / "results"
    shutil.copytree(root, other)
    for name, status in (("smoke-dead000000", "running"), ("smoke-failed0000", "failed")):
        d = other / "attn-scaling" / name
        shutil.copytree(runs[0].run_dir, d)
        manifest = json.loads((d / "manifest.json").read_text())
        manifest.update(status=status, error="RuntimeError: boom" if status == "failed" else None)
        (d / "manifest.json").write_text(json.dumps(manifest))
        (d / "summary.json").unlink()
        (d / lock.LOCK).write_text("")  # a lock file nobody holds: its writer died
    return other, runs


def test_runs_lists_every_run_with_its_status(mixed_root):
    root, runs = mixed_root
    res = invoke("runs", "--results", root)
    assert res.exit_code == 0, res.output
    assert "4 runs, newest first" in res.output
    for r in runs:
        assert r.run_dir.name in res.output
    assert "interrupted" in res.output and "failed" in res.output and "running" not in res.output
    assert "complete" in res.output and "smoke (not a verdict)" in res.output
    assert max(len(line) for line in res.output.splitlines()) <= 80


def test_runs_filters_json_and_commands(mixed_root):
    root, runs = mixed_root
    data = json.loads(invoke("runs", "--results", root, "--json").stdout)
    assert {d["status"] for d in data} == {"complete", "interrupted", "failed"}
    done = [d for d in data if d["status"] == "complete"]
    assert {d["run_id"] for d in done} == {r.run_dir.name for r in runs}
    assert all(d["verdict"] == "smoke" and d["profile"] == "smoke" and d["seeds"] == 2 for d in done)
    res = invoke("runs", "--results", root, "--status", "interrupted")
    assert res.exit_code == 0 and "smoke-dead000000" in res.output and runs[0].run_dir.name not in res.output
    res = invoke("runs", "--results", root, "--experiment", "hippo-memory")
    assert res.exit_code == 0 and "no runs" in res.output
    res = invoke("runs", "--results", root, "--commands")
    assert "--set lr=0.003" in res.output.replace("\n", " ")


def test_runs_wide_table_is_one_line_per_run(mixed_root, monkeypatch):
    import io

    import cli.runs

    root, runs = mixed_root
    buf = io.StringIO()
    monkeypatch.setattr(cli.runs, "console", Console(file=buf, width=140, color_system=None))
    assert invoke("runs", "--results", root).exit_code == 0
    lines = [line for line in buf.getvalue().splitlines() if runs[1].run_dir.name in line]
    assert len(lines) == 1 and "attn-scaling" in lines[0] and "smoke" in lines[0] and "complete" in lines[0]


@pytest.mark.parametrize("args, message", [
    (["--status", "done"], "unknown status 'done'"),
    (["--experiment", "attn-scalng"], "Did you mean 'attn-scaling'?"),
])
def test_runs_bad_input_is_one_line(mixed_root, args, message):
    res = invoke("runs", "--results", mixed_root[0], *args)
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1


def test_runs_on_a_missing_root(tmp_path):
    res = invoke("runs", "--results", tmp_path / "none")
    assert res.exit_code == 2 and "results root not found" in res.output


def test_diff_config_claims_and_table(two_runs):
    root, runs = two_runs
    a, b = (r.run_dir.name for r in runs)
    res = invoke("diff", a, f"attn-scaling/{b}", "--results", root)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "config keys that differ" in out and "0.001" in out and "0.003" in out
    assert out.index("config keys") < out.index("claims") < out.index("main table")
    assert "training" in out and "smoke (not a verdict)" in out
    data = json.loads(invoke("diff", runs[0].run_dir, runs[1].run_dir, "--json").stdout)
    assert data["config"] == [{"key": "lr", "a": 0.001, "b": 0.003}]
    assert [c["id"] for c in data["claims"]] == ["training", "init-saturation", "t5-init"]
    cell = data["table"]["differ"][0]
    assert cell["delta"] == pytest.approx(cell["b"] - cell["a"]) and cell["row"].startswith("d=")


def test_diff_of_a_run_with_itself_says_identical(two_runs):
    root, runs = two_runs
    res = invoke("diff", runs[0].run_dir, runs[0].run_dir)
    assert res.exit_code == 0 and "config: identical" in res.output
    assert "shared numeric cells are equal" in res.output


@pytest.mark.parametrize("ref, message", [("smoke", "matches 2 runs"), ("nothing-like-it", "no run 'nothing-like-it'")])
def test_diff_ambiguous_or_unknown_run(two_runs, ref, message):
    root, runs = two_runs
    res = invoke("diff", ref, runs[0].run_dir, "--results", root)
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1


def test_diff_refuses_two_experiments(two_runs, tmp_path):
    root, runs = two_runs
    other = tmp_path / "hippo"
    shutil.copytree(runs[0].run_dir, other)
    record = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**record, "experiment": "hippo-memory"}))
    res = invoke("diff", runs[0].run_dir, other)
    assert res.exit_code == 2 and "two runs of one experiment" in res.output


def test_dry_run_shows_sources_and_writes_nothing(tmp_path):
    root = tmp_path / "never"
    toml = tmp_path / "mine.toml"
    toml.write_text("batch_size = 16\n")
    res = invoke("run", "attn-scaling", "--profile", "smoke", "--config", toml, *sets("lr=0.003"),
                 "--dry-run", "--results", root)
    assert res.exit_code == 0, res.output
    assert not root.exists()
    out = res.output
    for text in ("dry run: nothing is run or written", "not run yet", "profile smoke", str(toml), "--config", "--set",
                 "head_dims", "8,16", "16,64,256", "seeds", "device", "cpu"):
        assert text in out, text
    spec = mlbench.core.runner.resolve("attn-scaling", profile="smoke", config_file=toml, sets=["lr=0.003"],
                                       results=root)
    assert spec.run_id in out
    plan = json.loads(invoke("run", "attn-scaling", "--dry-run", "--json", "--results", root).stdout)
    assert plan["exists"] is False and plan["config"]["lr"]["source"] == "default" and plan["seeds"] == 4


def test_dry_run_says_the_run_exists(two_runs):
    root, runs = two_runs
    res = invoke("run", "attn-scaling", "--profile", "smoke", "--threads", "1", *sets(*TINY, "lr=0.001"),
                 "--dry-run", "--results", root)
    assert res.exit_code == 0 and runs[0].run_dir.name in res.output
    assert "complete: a run would show the stored result" in res.output


def test_each_run_carries_the_command_that_recreates_it(two_runs, tmp_path):
    root, runs = two_runs
    for r in runs:
        command = json.loads((r.run_dir / "manifest.json").read_text())["rerun"]
        assert command.startswith("mlbench run attn-scaling --profile smoke ")
        res = invoke(*shlex.split(command)[1:], "--results", root)
        assert res.exit_code == 0 and "already complete" in res.output, res.output
        assert r.run_dir.name in res.output and f"recreate: {command}" in res.output.replace("\n", "")


def test_a_sweep_point_carries_its_own_command_not_the_sweep_argv(tmp_path):
    points = mlbench.sweep("attn-scaling", {"lr": [0.002]}, profile="smoke", sets=TINY, results=tmp_path)
    manifest = json.loads((points[0].spec.run_dir / "manifest.json").read_text())
    assert "--set lr=0.002" in manifest["rerun"] and "sweep" not in manifest["rerun"]
    report = invoke("report", "--results", tmp_path)
    assert report.exit_code == 0
    assert manifest["rerun"] in (tmp_path / "REPORT.md").read_text()
