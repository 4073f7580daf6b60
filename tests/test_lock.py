"""The run folder's lock: a kernel lock (flock) that names its holder; a dead holder's lock is free;
`report` tells a run whose process died from one that is running."""

import json
import os
import platform
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from cli.main import app
from mlbench.core import lock, results, runner
from mlbench.core.errors import RunStoreError
from helpers import TINY

HOLD = """
import fcntl, sys, time
fh = open(sys.argv[1], "a+")
fcntl.flock(fh, fcntl.LOCK_EX)  # a holder that has not written anything yet
print("held", flush=True)
time.sleep(120)
"""
HOLD_MLBENCH = """
import sys, time
from pathlib import Path
from mlbench.core import lock
lock.lock(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """holder(script, run_dir): a child process that holds run_dir's lock until killed."""
    procs = []

    def start(script, run_dir):
        proc = subprocess.Popen([sys.executable, "-c", script, str(run_dir / lock.LOCK if script is HOLD else run_dir)],
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)


def test_a_holder_that_has_not_written_its_pid_still_excludes(tmp_path, holder):
    # the old O_EXCL file read an empty file as pid 0 ("stale"), deleted it and also "held" it
    holder(HOLD, tmp_path)
    assert (tmp_path / lock.LOCK).read_text() == ""
    with pytest.raises(RunStoreError, match="being written by another mlbench process"):
        lock.lock(tmp_path)
    assert lock.state(tmp_path) == "held"


def test_a_lock_file_naming_a_live_pid_on_another_host_is_not_a_lock(tmp_path):
    # a pid check trusts what the file says: pid 1 is alive here, but nothing holds this lock
    (tmp_path / lock.LOCK).write_text("1")
    (tmp_path / lock.HOLDER).write_text(json.dumps({"host": "node-17", "pid": 1, "since": "x"}))
    assert lock.state(tmp_path) == "free"
    lock.lock(tmp_path)
    try:
        assert json.loads((tmp_path / lock.HOLDER).read_text())["pid"] == os.getpid()
    finally:
        lock.unlock(tmp_path)
    assert not (tmp_path / lock.HOLDER).exists() and lock.state(tmp_path) == "free"


def test_sigkill_releases_the_lock_and_the_message_names_host_and_pid(tmp_path, holder):
    proc = holder(HOLD_MLBENCH, tmp_path)
    assert lock.state(tmp_path) == "held"
    with pytest.raises(RunStoreError) as err:
        lock.lock(tmp_path)
    assert f"pid {proc.pid} on host {platform.node()}" in str(err.value)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert lock.state(tmp_path) == "free"
    lock.lock(tmp_path)  # the kernel released it: no stale lock to detect
    lock.unlock(tmp_path)


def test_a_second_writer_exits_2_naming_the_holder_and_writes_nothing(tmp_path, holder):
    spec = runner.resolve("attn-scaling", profile="smoke", sets=TINY, results=tmp_path, threads=1)
    spec.run_dir.mkdir(parents=True)
    proc = holder(HOLD_MLBENCH, spec.run_dir)
    sets = sum((["--set", s] for s in TINY), [])
    res = CliRunner().invoke(app, ["run", "attn-scaling", "--profile", "smoke", "--threads", "1",
                                   "--results", str(tmp_path), *sets])
    assert res.exit_code == 2, res.output
    assert f"being written by another mlbench process (pid {proc.pid} on host {platform.node()}" in res.output
    assert sorted(p.name for p in spec.run_dir.iterdir()) == sorted(lock.FILES)


def fake_run(root, status):
    run_dir = root / "attn-scaling" / "smoke-0000000000"
    run_dir.mkdir(parents=True)
    (run_dir / "manifest.json").write_text(json.dumps({"status": status}))
    return run_dir


def test_report_shows_a_running_folder_whose_process_died_as_interrupted(tmp_path):
    run_dir = fake_run(tmp_path, "running")
    (run_dir / lock.LOCK).write_text("")  # left by a writer that was SIGKILLed
    _, skipped = results.collect(tmp_path)
    assert skipped == [f"{run_dir}: interrupted (its process is gone; rerun the same command to resume)"]
    lock.lock(run_dir)  # now a live writer holds it
    try:
        _, skipped = results.collect(tmp_path)
        assert skipped == [f"{run_dir}: running (pid {os.getpid()} on host {platform.node()}, since "
                           f"{json.loads((run_dir / lock.HOLDER).read_text())['since']})"]
    finally:
        lock.unlock(run_dir)
    res = CliRunner().invoke(app, ["report", "--results", str(tmp_path)])
    assert res.exit_code == 0 and "interrupted (its process is gone" in res.output


def cli(results, *sets):
    args = ["--set", "eval_every=50", "--set", "eval_size=64", "--set", "stats_queries=64",
            "--set", "head_dims=8,16,32", *sum((["--set", s] for s in sets), [])]
    return [sys.executable, "-m", "cli.main", "run", "attn-scaling", "--profile", "smoke", "--threads", "1",
            "--results", str(results), *args]


@pytest.mark.slow
def test_two_identical_runs_the_second_started_while_the_first_writes(tmp_path):
    first = subprocess.Popen(cli(tmp_path, "steps=400"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not list(tmp_path.glob("attn-scaling/*/manifest.json")) and time.time() < deadline:
            time.sleep(0.05)
        (run_dir,) = tmp_path.glob("attn-scaling/*")
        second = subprocess.run(cli(tmp_path, "steps=400"), capture_output=True, text=True, timeout=120)
        assert first.poll() is None, "the first run ended before the second tried: make it longer"
        assert second.returncode == 2, second.stderr
        assert f"being written by another mlbench process (pid {first.pid} on host" in second.stderr
        assert "Traceback" not in second.stderr
        first.send_signal(signal.SIGTERM)  # the first stops as asked: exit 143, resumable
        _, err = first.communicate(timeout=120)
        assert first.returncode == 143 and "terminated (SIGTERM)" in err, err
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    finally:
        first.kill()
        first.wait(timeout=30)
