"""Sweep executors: threads per point, the Slurm and Dask options, and (where the extras are
installed) the same run folders from a Dask LocalCluster and submitit's local executor as from
`--executor local`, a second sweep that skips everything, and a killed Dask worker."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from mlbench.core import points
from mlbench.core import sweep as sweeplib
from mlbench.core.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
HIPPO = ["sweep", "hippo-memory", "--profile", "smoke", "--grid", "cutoff_hz=3,5"]
SKIPPED = (".lock", ".lock.json", "manifest.json")  # host, pid and times: the rest must be byte-identical


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def folder_bytes(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in SKIPPED and "slurm-logs" not in p.parts}


def manifests(root):
    return {p.parent.name: json.loads(p.read_text()) for p in root.glob("*/*/manifest.json")}


def test_sweep_points_use_the_experiments_threads_not_cpus_over_jobs(results, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)  # a bigger machine than the experiment wants
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    res = invoke("sweep", "hippo-memory", "--profile", "smoke", "--grid", "cutoff_hz=3", "--results", results)
    assert res.exit_code == 0, res.output
    assert "1 torch thread per run (the experiment's THREADS)" in res.output
    (manifest,) = manifests(results).values()
    assert manifest["determinism"]["threads"] == 1  # hippo-memory's THREADS, recorded


def test_threads_without_THREADS_come_from_slurm_then_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(6)), raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    assert points.point_threads(None, 2) == 3 and points.point_threads(None, 4) == 1
    assert points.point_threads(2, 1) == 2  # the experiment's THREADS wins
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert points.point_threads(None, 1) == 4 and points.point_threads(None, 2) == 2
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "16")  # more than the mask allows: the mask bounds it
    assert points.point_threads(None, 1) == 6


def test_slurm_options_from_the_file_and_the_cli(tmp_path, results):
    f = tmp_path / "s.sweep.toml"
    f.write_text('experiment = "hippo-memory"\nprofile = "smoke"\nexecutor = "slurm"\n[grid]\ncutoff_hz = [3, 5]\n'
                 '[slurm]\npartition = "cpu"\ntime = "1:30:00"\ncpus-per-task = 4\n[dask]\nscheduler = "tcp://h:8786"\n')
    plan = sweeplib.load_plan(f, results=results, slurm={"partition": "gpu", "gpus-per-task": 1})
    assert plan.executor == "slurm" and plan.scheduler == "tcp://h:8786"
    assert plan.slurm == {"partition": "gpu", "time": 90, "cpus-per-task": 4, "gpus-per-task": 1}
    from mlbench.core.executors.slurm import parameters, parse_time

    assert [parse_time(t, "t") for t in ("45", "2:30", "1:00:01", "1-0", "1-2:03", 7)] == [45, 3, 61, 1440, 1563, 7]
    assert parameters({**plan.slurm, "array-parallelism": 8}, "hippo-memory") == {
        "name": "mlbench-hippo-memory", "timeout_min": 90, "slurm_partition": "gpu", "cpus_per_task": 4,
        "slurm_gpus_per_task": 1, "slurm_array_parallelism": 8}


BAD = {
    "executor": (["--executor", "k8s"], "unknown executor 'k8s'"),
    "slurm time": (["--executor", "slurm", "--slurm-time", "soon"], "--slurm-time must be a Slurm time"),
    "slurm time zero": (["--executor", "slurm", "--slurm-time", "0"], "--slurm-time must be at least a minute"),
    "slurm cpus": (["--executor", "slurm", "--slurm-cpus-per-task", "0"], "--slurm-cpus-per-task must be a positive"),
    "slurm cluster": (["--executor", "slurm", "--slurm-cluster", "aws"], "--slurm-cluster must be one of slurm, local"),
    "dask without scheduler": (["--executor", "dask"], "--executor dask needs --scheduler"),
    "dask bad scheduler": (["--executor", "dask", "--scheduler", "nowhere"], "neither tcp://HOST:PORT nor"),
    "file executor": ('executor = "k8s"\n', "'executor' must be one of local, slurm, dask"),
    "file slurm key": ('[slurm]\npartitionn = "gpu"\n', "slurm: unknown keys partitionn"),
    "file slurm time": ('[slurm]\ntime = "x"\n', "slurm.time must be a Slurm time"),
    "file dask key": ('[dask]\naddress = "tcp://h:1"\n', "[dask] takes one key, scheduler"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_executor_options_are_one_line_exit_2_nothing_written(case, tmp_path, results):
    given, message = BAD[case]
    if isinstance(given, str):
        f = tmp_path / "s.sweep.toml"
        f.write_text('experiment = "hippo-memory"\n' + ('' if given.startswith("[") else given)
                     + '[grid]\ncutoff_hz = [3, 5]\n' + (given if given.startswith("[") else ''))
        res = invoke("sweep", f, "--results", results)
    else:
        res = invoke(*HIPPO, "--results", results, *given)
    assert res.exit_code == 2, (case, res.output)
    assert message in res.output and "Traceback" not in res.output, res.output
    assert not results.exists()


@pytest.mark.parametrize("module, extra", [("submitit", "slurm"), ("distributed", "dask")])
def test_a_missing_extra_names_its_pip_install(module, extra, results, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if it were not installed
    res = invoke(*HIPPO, "--results", results, "--executor", extra, "--scheduler", "tcp://127.0.0.1:1")
    assert res.exit_code == 2 and f"pip install 'mlbench[{extra}]'" in res.output, res.output
    assert not list(results.glob("hippo-memory/*"))


def test_a_worker_that_does_not_see_the_results_root_fails_its_point(tmp_path):
    args = {"results": str(tmp_path), "marker": ".mlbench-sweep-elsewhere"}
    assert "must be on a filesystem every worker sees" in points.marker_problem(**args)
    outcome = points.run_point({**args, "threads": 1, "slots": 1})
    assert outcome["status"] == "failed" and "not the sweep's" in outcome["error"]
    said = points.read_back(tmp_path / "x" / "run", {"status": "complete"})  # done, but not in our store
    assert said["status"] == "failed" and "every worker sees" in said["error"]


@pytest.fixture(scope="module")
def dask_cluster():
    """Two single-thread worker processes; a worker that dies fails its task (no silent retry)."""
    pytest.importorskip("distributed")
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=":0")
    yield cluster
    cluster.close()


@pytest.mark.slow
def test_dask_and_submitit_local_give_the_run_folders_of_local_and_then_skip(tmp_path, dask_cluster):
    pytest.importorskip("submitit")
    backends = {"local": [], "dask": ["--executor", "dask", "--scheduler", dask_cluster.scheduler_address],
                "slurm": ["--executor", "slurm", "--slurm-cluster", "local", "--slurm-time", "10"]}
    for name, options in backends.items():
        res = invoke(*HIPPO, "--results", tmp_path / name, *options)
        assert res.exit_code == 0, (name, res.output)
        assert set(manifests(tmp_path / name)) == set(manifests(tmp_path / "local"))  # the same run ids
        assert folder_bytes(tmp_path / name) == folder_bytes(tmp_path / "local"), name
        assert all(m["status"] == "complete" for m in manifests(tmp_path / name).values())
        again = invoke(*HIPPO, "--results", tmp_path / name, *options)
        assert again.exit_code == 0 and again.output.count("skipped") == 2, again.output
    assert len(manifests(tmp_path / "local")) == 2
    assert list((tmp_path / "slurm" / "slurm-logs").glob("*_log.out"))  # submitit's logs, under the root
    assert not list(tmp_path.glob("*/.mlbench-sweep-*"))  # the shared-root markers are gone


def test_a_dask_worker_that_does_not_see_the_marker_is_refused(tmp_path, dask_cluster):
    from mlbench.core.executors.dask import DaskBackend

    plan = sweeplib.SweepPlan("hippo-memory", {}, results=tmp_path, executor="dask",
                              scheduler=dask_cluster.scheduler_address)
    backend = DaskBackend(plan)
    try:
        with pytest.raises(UsageError, match="must be on a filesystem every worker sees"):
            backend.prepare(".mlbench-sweep-not-here")
    finally:
        backend.close()


def parent_of(pid):
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find a run's worker")
def test_killing_a_dask_worker_fails_its_point_and_the_rerun_finishes_it(tmp_path, dask_cluster):
    cmd = [sys.executable, "-m", "cli.main", "sweep", "hippo-memory", "--grid", "cutoff_hz=3,5", "--results",
           str(tmp_path), "--executor", "dask", "--scheduler", dask_cluster.scheduler_address]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline, running = time.time() + 180, {}
        while not running and time.time() < deadline and proc.poll() is None:
            running = {k: m for k, m in manifests(tmp_path).items() if m["status"] == "running"}
            time.sleep(0.02)
        (run_id, manifest), *_ = running.items()
        os.kill(parent_of(manifest["pid"]), signal.SIGKILL)  # the Dask worker whose subprocess runs it
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert f"failed {run_id}" in err and "rerun the sweep to resume it" in err and "Traceback" not in err
    assert manifests(tmp_path)[run_id]["status"] in ("interrupted", "running")  # running: its lock is free
    res = invoke("sweep", "hippo-memory", "--grid", "cutoff_hz=3,5", "--results", tmp_path, "--executor", "dask",
                 "--scheduler", dask_cluster.scheduler_address)
    assert res.exit_code == 0, res.output
    assert manifests(tmp_path)[run_id]["status"] == "complete" and res.output.count("skipped") == 1
    assert manifests(tmp_path)[run_id]["resumed_from"] == "interrupted"


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["dask", "slurm"])
def test_sigterm_to_a_remote_sweep_stops_its_runs_and_marks_them_interrupted(backend, tmp_path, request):
    pytest.importorskip("submitit" if backend == "slurm" else "distributed")
    options = (["--executor", "slurm", "--slurm-cluster", "local"] if backend == "slurm" else
               ["--executor", "dask", "--scheduler", request.getfixturevalue("dask_cluster").scheduler_address])
    cmd = [sys.executable, "-m", "cli.main", "sweep", "hippo-memory", "--grid", "cutoff_hz=3,5", "--results",
           str(tmp_path), *options]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        deadline = time.time() + 180
        while (len(manifests(tmp_path)) < 2 or any(m["status"] != "running" for m in manifests(tmp_path).values())) \
                and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        pids = [m["pid"] for m in manifests(tmp_path).values()]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM): 2 of 2 runs interrupted" in err
    assert [m["status"] for m in manifests(tmp_path).values()] == ["interrupted", "interrupted"]
    deadline = time.time() + 10
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)], "runs outlived the sweep"


def test_a_remote_sweep_takes_cuda_on_trust_for_its_workers(results):
    pytest.importorskip("submitit")
    plan = sweeplib.SweepPlan("hippo-memory", {"cutoff_hz": ["3"]}, profile="smoke", device="cuda", results=results,
                              executor="slurm", slurm={"cluster": "local"})
    (point,) = sweeplib.expand(plan)  # no GPU here needed: each worker checks its own when the run starts
    assert point.spec.device == "cuda" and point.args(plan, slots=1)["device"] == "cuda"


def test_the_grid_goes_to_slurm_as_one_job_array(tmp_path, monkeypatch):
    """Against stand-ins for srun/sbatch: the sbatch script submitit writes for our settings."""
    pytest.importorskip("submitit")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, body in {"srun": "exit 0", "sacct": "exit 0", "scancel": "exit 0",
                       "sbatch": f'cp "$1" {tmp_path}/script.sh; echo "Submitted batch job 4242"'}.items():
        (bin_dir / tool).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    from mlbench.core.executors.slurm import SlurmBackend

    plan = sweeplib.SweepPlan("hippo-memory", {"cutoff_hz": ["3", "4", "5"]}, profile="smoke", results=tmp_path / "r",
                              executor="slurm", slurm={"partition": "gpu", "time": "1:30:00", "gpus-per-task": 1,
                                                       "cpus-per-task": 8, "array-parallelism": 2})
    backend = SlurmBackend(plan)
    backend.prepare(None)
    try:
        futures = backend.submit_all([p.args(plan, slots=1) for p in sweeplib.expand(plan)])
    finally:
        backend.close()
    assert len(futures) == 3 and [j.job_id for j in backend.jobs] == ["4242_0", "4242_1", "4242_2"]
    script = (tmp_path / "script.sh").read_text()
    for line in ("--array=0-2%2", "--partition=gpu", "--time=90", "--gpus-per-task=1", "--cpus-per-task=8",
                 "--job-name=mlbench-hippo-memory", f"--output={tmp_path / 'r' / 'slurm-logs'}"):
        assert f"#SBATCH {line}" in script, (line, script)
    assert script.count("sbatch") == 0 and "srun" in script  # one array, each task run through srun
