"""Sweeps: expansion, same run ids as `run`, parallel workers, skip, failures, sweep files."""

import json

import pytest
from typer.testing import CliRunner

import mlbench
from cli.main import app
from mlbench.core import runner as runlib
from mlbench.core import sweep as sweeplib
from mlbench.core.errors import ConfigError, UsageError
from helpers import TINY


def test_parse_grid_and_list_values():
    assert sweeplib.parse_grid(["lr=1e-3,3e-3", "head_dims=8,16;8,32"]) == {
        "lr": ["1e-3", "3e-3"], "head_dims": ["8,16", "8,32"]}
    with pytest.raises(ConfigError):
        sweeplib.parse_grid(["lr"])


def test_points_have_the_run_ids_of_plain_runs(results):
    plan = sweeplib.SweepPlan("attn-scaling", {"lr": ["0.001", "0.003"], "batch_size": ["16", "32"]},
                              profile="smoke", sets=TINY, results=results)
    points = sweeplib.expand(plan)
    assert len(points) == 4
    plain = runlib.resolve("attn-scaling", profile="smoke", sets=[*TINY, "lr=0.003", "batch_size=16"], results=results)
    assert plain.run_id in {p.spec.run_id for p in points}


def test_bad_grid_key_fails_before_running(results):
    plan = sweeplib.SweepPlan("attn-scaling", {"lrr": ["1"]}, profile="smoke", results=results)
    with pytest.raises(ConfigError, match="Did you mean 'lr'"):
        sweeplib.expand(plan)
    assert not results.exists()


def test_parallel_sweep_then_skip_and_failures_listed(results):
    res = CliRunner().invoke(app, ["sweep", "attn-scaling", "--profile", "smoke", "--grid", "lr=0.001,0.003",
                                   "--grid", "batch_size=8,16", "--jobs", "2", "--results", str(results),
                                   *sum((["--set", s] for s in TINY), [])])
    assert res.exit_code == 0, res.output
    runs = sorted((results / "attn-scaling").iterdir())
    assert len(runs) == 4
    for run_dir in runs:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "complete"
        assert manifest["determinism"]["threads"] == sweeplib.threads_per_job(2)
    # the same grid again: every point is already complete
    points = mlbench.sweep("attn-scaling", {"lr": [0.001, 0.003], "batch_size": [8, 16]}, profile="smoke",
                           sets=TINY, results=results)
    assert {p.status for p in points} == {"skipped"}
    bad = sweeplib.SweepPlan("attn-scaling", {"steps": ["4", "5"]}, profile="smoke",
                             sets=[s for s in TINY if not s.startswith("steps")] + ["n_pairs=40"], results=results)
    with pytest.raises(ConfigError, match="n_pairs"):  # the experiment's validate() runs at expansion
        sweeplib.expand(bad)


def test_a_failing_point_does_not_stop_the_others(results, monkeypatch):
    calls = []

    def fake(args):
        calls.append(args["sets"])
        if any(s == "lr=0.003" for s in args["sets"]):
            return {"status": "failed", "error": "boom"}
        return {"status": "complete", "verdict": "reproduced", "effect": 1.0}

    monkeypatch.setattr(sweeplib, "_run_point", fake)
    plan = sweeplib.SweepPlan("attn-scaling", {"lr": ["0.001", "0.003", "0.01"]}, profile="smoke", results=results)
    points = sweeplib.run_sweep(plan, sweeplib.expand(plan))
    assert [p.status for p in points] == ["complete", "failed", "complete"] and len(calls) == 3


def test_sweep_file(tmp_path, results):
    f = tmp_path / "s.sweep.toml"
    f.write_text('experiment = "attn-scaling"\nprofile = "smoke"\nseeds = 1\n[set]\nsteps = 4\n'
                 '[grid]\nhead_dims = [[8], [8, 16]]\n')
    plan = sweeplib.load_plan(f, results=results)
    points = sweeplib.expand(plan)
    assert [p.values for p in points] == [{"head_dims": "8"}, {"head_dims": "8,16"}]
    assert points[1].spec.cfg.head_dims == (8, 16) and points[0].spec.seeds == 1
    f.write_text('experiment = "attn-scaling"\n[grid]\n')
    with pytest.raises(ConfigError, match="non-empty"):
        sweeplib.load_plan(f)


def test_shipped_sweep_files_expand(results):
    from mlbench.core.registry import experiments_dir

    files = sorted(experiments_dir().glob("*.sweep.toml"))
    assert files
    for f in files:
        assert sweeplib.expand(sweeplib.load_plan(f, results=results))


BAD_SWEEP_FILES = {
    "jobs a string": ('jobs = "two"\n', "'jobs' must be a positive integer"),
    "jobs zero": ("jobs = 0\n", "'jobs' must be a positive integer"),
    "seeds a string": ('seeds = "3"\n', "'seeds' must be a positive integer"),
    "seeds a float": ("seeds = 2.5\n", "'seeds' must be a positive integer"),
    "seeds a bool": ("seeds = true\n", "'seeds' must be a positive integer"),
    "set an array": ("set = [1, 2]\n", "'set' must be a table"),
    "profile a number": ("profile = 3\n", "'profile' must be a string"),
    "grid of tables": (None, "expected a value or an array of values"),
}


@pytest.mark.parametrize("case", sorted(BAD_SWEEP_FILES))
def test_bad_sweep_file_is_one_line_exit_2_nothing_written(case, tmp_path, results):
    line, message = BAD_SWEEP_FILES[case]
    f = tmp_path / "s.sweep.toml"
    grid = '[grid]\nlr = [{a = 1}]\n' if line is None else '[grid]\nlr = [0.001, 0.003]\n'
    f.write_text('experiment = "attn-scaling"\n' + (line or "") + grid)
    res = CliRunner().invoke(app, ["sweep", str(f), "--results", str(results)])
    assert res.exit_code == 2, (case, res.output, res.exception)
    assert message in res.output and "Traceback" not in res.output
    assert not results.exists()


@pytest.mark.parametrize("jobs", ["0", "-1"])
def test_cli_jobs_below_one_is_refused_not_made_one(jobs, results):
    res = CliRunner().invoke(app, ["sweep", "attn-scaling", "--grid", "lr=0.001,0.003", "--jobs", jobs,
                                   "--results", str(results)])
    assert res.exit_code == 2 and "--jobs must be a positive integer" in res.output
    assert not results.exists()


def test_library_sweep_checks_jobs_and_seeds(results):
    for kwargs in ({"jobs": "two"}, {"jobs": True}, {"seeds": 2.5}, {"seeds": True}):
        with pytest.raises(UsageError):
            mlbench.sweep("attn-scaling", {"lr": [0.001]}, profile="smoke", results=results, **kwargs)
    assert not results.exists()
