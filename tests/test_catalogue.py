"""`run --all`, shipped sweep files from any directory, and the report's summary and provenance."""

import json

import pytest
from typer.testing import CliRunner

import mlbench
from cli.main import app
from mlbench.core import registry, runner
from mlbench.core import sweep as sweeplib
from helpers import TINY

TWO = ["attn-scaling", "hippo-memory"]


def invoke(*args, **kw):
    return CliRunner().invoke(app, [str(a) for a in args], **kw)


@pytest.fixture
def two_experiments(monkeypatch):
    """`--all` over two quick-to-run experiments (the whole catalogue is `python -m benchmarks verdict`)."""
    monkeypatch.setattr(registry, "names", lambda: list(TWO))


def test_run_all_runs_each_then_one_summary_table(two_experiments, tmp_path):
    args = ["run", "--all", "--profile", "smoke", "--threads", "1", "--results", tmp_path]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "[1/2] attn-scaling" in out and "[2/2] hippo-memory" in out
    table = out[out.index("every experiment"):]
    for name in TWO:
        n = len(runner.claims_of(registry.load(name), registry.load(name).Config()))
        assert name in table and f"{n} smoke (not a verdict)" in table
    assert "2 experiments in" in out and "2 complete" in out
    again = invoke(*args)
    assert again.exit_code == 0 and again.output.count("(already complete)") == 2 and "2 skipped" in again.output
    data = json.loads(invoke(*args, "--json").stdout)
    assert [d["experiment"] for d in data] == TWO and all(d["status"] == "skipped" for d in data)
    assert data[0]["summary"]["experiment"] == "attn-scaling"


def test_run_all_jobs_2_runs_untimed_ones_in_workers_then_the_timed_alone(tmp_path, monkeypatch):
    names = ["hippo-memory", "flash-attention-tiling", "robbins-monro"]  # flash: TIMED_METRICS
    monkeypatch.setattr(registry, "names", lambda: list(names))
    base = ["run", "--all", "--profile", "smoke", "--results"]
    res = invoke(*base, tmp_path / "par", "--jobs", "2")
    assert res.exit_code == 0, res.output
    out = res.output
    assert "2 experiments 2 at a time in worker processes, then the timed ones alone: flash-attention-tiling" in out
    assert out.index("[timed 1/1] flash-attention-tiling") > max(out.index("hippo-memory ("), out.index("robbins-monro ("))
    assert "3 experiments in" in out and "3 complete" in out
    serial = invoke(*base, tmp_path / "ser")
    assert serial.exit_code == 0, serial.output
    for name in ("hippo-memory", "robbins-monro"):  # the same runs (ids, bytes) as one after another
        (par,), (ser,) = (list((tmp_path / r / name).iterdir()) for r in ("par", "ser"))
        assert par.name == ser.name
        assert (par / "metrics.jsonl").read_bytes() == (ser / "metrics.jsonl").read_bytes()
        assert json.loads((par / "manifest.json").read_text())["determinism"]["threads"] == 1
    again = invoke(*base, tmp_path / "par", "--jobs", "2")
    assert again.exit_code == 0 and "3 skipped" in again.output, again.output


def test_jobs_without_all_is_refused(tmp_path):
    res = invoke("run", "hippo-memory", "--jobs", "2", "--results", tmp_path / "r")
    assert res.exit_code == 2 and "use it with --all" in res.output and not (tmp_path / "r").exists()


def test_run_all_keeps_going_past_a_failure_and_exits_1(two_experiments, tmp_path, monkeypatch):
    real = runner.execute

    def broken(spec, **kw):
        if spec.experiment == "attn-scaling":
            raise RuntimeError("a bug in the experiment")
        return real(spec, **kw)

    monkeypatch.setattr(runner, "execute", broken)
    res = invoke("run", "--all", "--profile", "smoke", "--threads", "1", "--results", tmp_path)
    assert res.exit_code == 1, res.output
    assert "failed: RuntimeError: a bug in the experiment" in res.output
    assert "1 failed, 1 complete" in res.output and (tmp_path / "hippo-memory").is_dir()


def test_ctrl_c_during_run_all_says_what_is_done(two_experiments, tmp_path, monkeypatch):
    real = runner.execute

    def stop_at_the_second(spec, **kw):
        if spec.experiment == "hippo-memory":
            raise KeyboardInterrupt
        return real(spec, **kw)

    monkeypatch.setattr(runner, "execute", stop_at_the_second)
    res = invoke("run", "--all", "--profile", "smoke", "--threads", "1", "--results", tmp_path)
    assert res.exit_code == 130, res.output
    assert "1 of 2 experiments done: rerun the same command to finish the rest" in res.output.replace("\n", " ")
    assert "1 complete, 1 interrupted" in res.output


def test_run_all_marks_a_refused_profile(two_experiments, tmp_path, monkeypatch):
    real = runner.resolve

    def refuse(name, **kw):
        if name == "hippo-memory":
            raise mlbench.core.errors.DeviceError("this profile needs --device cuda")
        return real(name, **kw)

    monkeypatch.setattr(runner, "resolve", refuse)
    res = invoke("run", "--all", "--profile", "smoke", "--threads", "1", "--results", tmp_path)
    assert res.exit_code == 1 and "refused: this profile needs --device cuda" in res.output


@pytest.mark.parametrize("args", [["attn-scaling", "--all"], ["--all", "--set", "lr=1"]])
def test_run_all_with_one_experiments_fields_is_refused(args, tmp_path):
    res = invoke("run", *args, "--results", tmp_path)
    assert res.exit_code == 2 and "--all runs every experiment" in res.output and not tmp_path.joinpath("x").exists()


def test_run_without_an_experiment_says_what_to_give():
    res = invoke("run")
    assert res.exit_code == 2 and "give an experiment name" in res.output


@pytest.mark.parametrize("args", [["attn-scaling.sweep"], ["attn-scaling.sweep.toml"],
                                  ["--sweep-file", "attn-scaling.sweep"], ["experiments/attn-scaling.sweep.toml"]])
def test_a_shipped_sweep_works_from_any_directory(args, tmp_path, monkeypatch):
    seen = {}

    def fake_run(plan, points, on_done=lambda p: None, on_start=None):
        seen["plan"] = plan
        return points

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweeplib, "run_sweep", fake_run)
    res = invoke("sweep", *args, "--profile", "smoke", "--results", tmp_path / "r")
    assert res.exit_code == 0, res.output
    assert seen["plan"].experiment == "attn-scaling" and seen["plan"].grid


def test_a_missing_sweep_file_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke("sweep", "nope.sweep")
    assert res.exit_code == 2 and "sweep file not found: nope.sweep" in res.output and "attn-scaling.sweep" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_config_given_a_profile_file_says_to_use_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = invoke("run", "attn-scaling", "--config", "attn-scaling.toml", "--results", tmp_path / "r")
    assert res.exit_code == 2 and "holds an experiment's profiles" in res.output and "--profile" in res.output
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def report_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    mlbench.run("attn-scaling", profile="smoke", sets=TINY, results=root, threads=1)
    mlbench.run("hippo-memory", profile="smoke", results=root, threads=1)
    return root


def test_report_opens_with_a_summary_and_carries_provenance(report_root):
    res = invoke("report", "--results", report_root)
    assert res.exit_code == 0, res.output
    assert res.output.index("summary: latest run") < res.output.index("attn-scaling v")
    assert max(len(line) for line in res.output.splitlines()) <= 80
    md = (report_root / "REPORT.md").read_text()
    assert md.index("## Summary") < md.index("## attn-scaling") < md.index("## hippo-memory")
    summary = md[md.index("## Summary"):md.index("## attn-scaling")]
    assert "| attn-scaling | training | **smoke (not a verdict)** |" in summary
    assert "| experiment | claim | verdict | paper vs measured | seeds | profile |" in summary
    assert "paper " in summary and " vs ours " in summary  # init-saturation has the paper's figure
    assert "Provenance: commit " in md and "torch " in md and "mlbench run attn-scaling --profile smoke" in md
    html = invoke("report", "--results", report_root, "--format", "html")
    text = (report_root / "REPORT.html").read_text()
    assert html.exit_code == 0 and "<h2>Summary</h2>" in text and "recreate: <code>mlbench run" in text


def test_report_of_one_experiment_writes_its_own_file(report_root):
    assert invoke("report", "--results", report_root).exit_code == 0
    whole = (report_root / "REPORT.md").read_text()
    res = invoke("report", "--results", report_root, "--experiment", "hippo-memory")
    assert res.exit_code == 0 and "REPORT-hippo-memory.md" in res.output
    assert (report_root / "REPORT.md").read_text() == whole
    own = (report_root / "REPORT-hippo-memory.md").read_text()
    assert "## hippo-memory" in own and "## attn-scaling" not in own
