"""What a run records and reuses: the seeds it drew (rule, inputs, values), the thread count it
used (said when a stored run is reused), a run's config.json as --config; and mlbench.run leaves
the caller's torch state alone."""

import json

import pytest
from typer.testing import CliRunner

import mlbench
from cli.main import app
from helpers import InterruptAt, TINY
from mlbench.core import runner
from mlbench.core import verify as verifylib
from mlbench.core.artifacts import derive_seed

SETS = sum((["--set", s] for s in TINY), [])


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def two_thread_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    return root, mlbench.run("attn-scaling", profile="smoke", sets=TINY, threads=2, results=root)


def test_mlbench_run_restores_the_callers_torch_seed_and_threads(tmp_path):
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    mlbench.run("attn-scaling", profile="smoke", sets=TINY, threads=1, results=tmp_path)
    assert torch.get_num_threads() == 2
    assert torch.equal(torch.get_rng_state(), state)


def test_manifest_gives_the_rule_inputs_and_value_of_every_seed_also_when_resumed(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        mlbench.run("attn-scaling", profile="smoke", sets=TINY, threads=1, results=tmp_path / "r",
                    progress=InterruptAt(2))
    resumed = mlbench.run("attn-scaling", profile="smoke", sets=TINY, threads=1, results=tmp_path / "r")
    fresh = mlbench.run("attn-scaling", profile="smoke", sets=TINY, threads=1, results=tmp_path / "f")
    seeds = json.loads((resumed.run_dir / "manifest.json").read_text())["seeds"]
    assert json.loads((resumed.run_dir / "manifest.json").read_text())["resumed_units"]
    assert seeds == json.loads((fresh.run_dir / "manifest.json").read_text())["seeds"]
    assert seeds["experiment"] == "attn-scaling" and seeds["indices"] == [0, 1] and "sha256" in seeds["rule"]
    assert {"init-d8", "init-d16", "data-d8", "stats-d16"} <= set(seeds["streams"])
    for stream, by_index in seeds["streams"].items():
        assert by_index == {str(k): derive_seed("attn-scaling", stream, k) for k in (0, 1)}


def test_a_stored_run_says_which_thread_count_it_used(two_thread_run):
    root, _ = two_thread_run
    res = invoke("run", "attn-scaling", "--profile", "smoke", "--threads", 1, "--results", root, *SETS)
    assert res.exit_code == 0 and "already complete (the stored run used 2 torch threads)" in res.output
    assert "the stored run used 2 torch threads, not 1" in res.output and "--force reruns it with 1" in res.output
    same = invoke("run", "attn-scaling", "--profile", "smoke", "--threads", 2, "--results", root, *SETS)
    assert same.exit_code == 0 and "not 2" not in same.output


def test_verify_reruns_with_the_stored_thread_count(two_thread_run, monkeypatch):
    _, run = two_thread_run
    assert verifylib.spec_from_run(run.run_dir, run.run_dir.parent).threads == 2
    seen = []
    real = runner.execute
    monkeypatch.setattr(runner, "execute", lambda spec, **kw: (seen.append(spec.threads), real(spec, **kw))[1])
    assert verifylib.verify(run.run_dir).outcome == "bitwise" and seen == [2]


def test_a_runs_config_json_reruns_that_run(two_thread_run, tmp_path):
    root, run = two_thread_run
    config = run.run_dir / "config.json"
    res = invoke("run", "attn-scaling", "--config", config, "--results", root)
    assert res.exit_code == 0, res.output
    assert f"run={run.run_dir.name}" in res.output and "already complete" in res.output
    seeds = invoke("run", "attn-scaling", "--config", config, "--seeds", 3, "--results", tmp_path)
    assert seeds.exit_code == 0 and json.loads(next(tmp_path.glob("attn-scaling/*/summary.json")).read_text())[
        "seeds"] == 3


@pytest.mark.parametrize("args, message", [
    (["--profile", "quick"], "conflicts with"),
    (["--experiment", "hippo-memory"], "is a run of attn-scaling, not hippo-memory"),
    (["--file", "summary.json"], "is not a run's config.json"),
])
def test_a_config_json_that_does_not_fit_is_one_line_exit_2(two_thread_run, tmp_path, args, message):
    _, run = two_thread_run
    experiment = args[1] if args[0] == "--experiment" else "attn-scaling"
    path = run.run_dir / (args[1] if args[0] == "--file" else "config.json")
    extra = args if args[0] == "--profile" else []
    res = invoke("run", experiment, "--config", path, "--results", tmp_path / "r", *extra)
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r").exists()
