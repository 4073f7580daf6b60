"""Reliability and security: kills at random moments, Ctrl-C, concurrent runs, hostile input,
no pickle anywhere, no path escapes, and a soak sweep. Every subprocess is time-bounded."""

import json
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mlbench
from cli.main import app
from mlbench.core import registry, runner
from mlbench.core.context import safe_name
from mlbench.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TINY = ["steps=30", "eval_every=5", "eval_size=64", "stats_queries=64"]


def cli(results, *extra):
    sets = sum((["--set", s] for s in TINY), [])
    return [sys.executable, "-m", "cli.main", "run", "attn-scaling", "--profile", "smoke", "--threads", "1",
            "--results", str(results), *sets, *extra]


def run_files(run_dir):
    names = ["metrics.jsonl", "table.csv", "summary.json"]
    out = {n: (run_dir / n).read_bytes() for n in names}
    out.update({p.name: p.read_bytes() for p in sorted((run_dir / "checkpoints").iterdir())})
    return out


def all_files_parse(run_dir):
    for p in run_dir.rglob("*.json"):
        json.loads(p.read_text())
    for p in run_dir.rglob("*.safetensors"):
        from safetensors import safe_open

        with safe_open(str(p), framework="pt") as fh:
            list(fh.keys())


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path):
    ref = mlbench.run("attn-scaling", profile="smoke", sets=TINY, threads=1, results=tmp_path / "ref").run_dir
    rng = random.Random(0)
    for i, delay in enumerate(sorted(rng.uniform(0.5, 7.0) for _ in range(3))):
        root = tmp_path / f"k{i}"
        proc = subprocess.Popen(cli(root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.kill()
        proc.wait(timeout=30)
        run_dir = root / "attn-scaling" / ref.name
        if run_dir.exists():
            all_files_parse(run_dir)  # atomic writes: never a half-written file
        done = subprocess.run(cli(root), capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert run_files(run_dir) == run_files(ref)
        assert not list(run_dir.rglob(".*.tmp"))


LONG = ["steps=120", "eval_every=40", "eval_size=64", "stats_queries=64", "head_dims=8,16,32"]


@pytest.mark.slow
def test_sigint_mid_run_exits_130_marks_interrupted_and_resumes(tmp_path):
    """Ctrl-C at a known unit: once the init statistics are stored, three training units remain
    (seconds each), so the signal always lands mid-run; the run must say so and resume."""
    args = [a for s in LONG for a in ("--set", s)]
    proc = subprocess.Popen(cli(tmp_path, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob("attn-scaling/*/units/init-stats-d64.json")) and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before the signal: it must be longer"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    (run_dir,) = tmp_path.glob("attn-scaling/*")
    done = sorted(p.stem for p in (run_dir / "units").glob("*.json"))
    assert proc.returncode == 130, err
    assert "interrupted (Ctrl-C): rerun the same command to resume" in err and "Traceback" not in err
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    assert "train-d32" not in done and not (run_dir / "summary.json").exists()
    resumed = subprocess.run(cli(tmp_path, *args), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["resumed_from"] == "interrupted"
    assert sorted(manifest["resumed_units"]) == done


HOSTILE_TOML = {
    "deep nesting": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "not utf-8": b"steps = \xff\xfe\n",
    "duplicate key": "steps = 1\nsteps = 2\n",
    "path-like key": '"../../etc/passwd" = 1\n',
    "python injection": 'steps = "__import__(\'os\').system(\'touch PWNED\')"\n',
    "inf for an int": "steps = inf\n",
    "table for a scalar": "[steps]\nx = 1\n",
    "empty key": '"" = 1\n',
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TOML))
def test_hostile_toml_is_one_line_exit_2(case, tmp_path, monkeypatch):
    f = tmp_path / "h.toml"
    data = HOSTILE_TOML[case]
    f.write_bytes(data if isinstance(data, bytes) else data.encode())
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["run", "attn-scaling", "--config", str(f), "--results", str(tmp_path / "r")])
    assert res.exit_code == 2, (case, res.output)
    assert "Traceback" not in res.output and not (tmp_path / "PWNED").exists()
    assert not (tmp_path / "r").exists()


def _bad_values(tp_name: str) -> list[str]:
    if tp_name == "bool":
        return ["maybe"]
    if tp_name in ("int", "float"):
        return ["abc", ""]
    if tp_name.startswith("list[") and tp_name != "list[str]":
        return ["x,y", ""]
    if "|" in tp_name:  # Literal
        return ["__no_such_choice__"]
    return []


def bad_field_cases():
    from mlbench.core import config as cfglib

    cases = []
    for name in registry.names():
        module = registry.load(name)
        for f in cfglib.describe(module.Config):
            cases += [(name, f.name, v) for v in _bad_values(f.type_name)]
    return cases


@pytest.mark.parametrize("experiment, key, value", bad_field_cases())
def test_every_config_field_rejects_wrong_types(experiment, key, value, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(f"'{key}'")):
        runner.resolve(experiment, profile="smoke", sets=[f"{key}={value}"], results=tmp_path)
    assert not tmp_path.joinpath(experiment).exists()


def test_no_pickle_or_torch_load_in_product_code():
    # torch.distributed's *_object collectives unpickle what other ranks send: not allowed either
    pattern = re.compile(r"torch\.load\(|\bpickle\b|\bdill\b|\bmarshal\b|\beval\(|\bexec\(|cloudpickle"
                         r"|all_gather_object|broadcast_object_list|scatter_object_list|gather_object")
    hits = [f"{p}:{i}" for d in ("mlbench", "cli") for p in sorted((ROOT / d).rglob("*.py"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert hits == []


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "x\\y", "", "a..b", "a b"])
def test_unsafe_names_are_rejected(name):
    with pytest.raises(ValueError):
        safe_name(name)


def test_experiment_names_cannot_escape_the_results_root(tmp_path):
    res = CliRunner().invoke(app, ["run", "../../attn-scaling", "--results", str(tmp_path / "r")])
    assert res.exit_code == 2 and "unknown experiment" in res.output
    spec = runner.resolve("attn-scaling", profile="smoke", results=tmp_path / "r")
    assert re.fullmatch(r"smoke-[0-9a-f]{10}", spec.run_id)
    assert spec.run_dir.resolve().is_relative_to((tmp_path / "r").resolve())


@pytest.mark.slow
def test_soak_sweep_of_50_runs_with_2_workers(tmp_path):
    lrs = [f"{x:.4f}" for x in (0.001 + 0.0005 * i for i in range(10))]
    tiny = ["steps=3", "eval_every=3", "eval_size=16", "stats_dims=8,16", "stats_queries=8",
            "head_dims=8", "batch_size=8", "n_pairs=4", "n_keys=8", "n_values=8"]
    points = mlbench.sweep("attn-scaling", {"lr": lrs, "d_model": [8, 12, 16, 20, 24]}, jobs=2,
                           profile="smoke", seeds=1, sets=tiny, results=tmp_path)
    assert len(points) == 50 and {p.status for p in points} == {"complete"}
    path, groups, skipped = __import__("mlbench.core.report", fromlist=["x"]).write_report(tmp_path)
    assert skipped == [] and sum(len(g.runs) for g in groups) == 50
    assert len(list(tmp_path.glob("attn-scaling/*/summary.json"))) == 50
    assert len(path.read_text().splitlines()) > 50
