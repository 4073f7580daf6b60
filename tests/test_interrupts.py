"""Stopping: SIGTERM to a sweep stops its workers; Ctrl-C says what it actually stopped, wherever
it lands; a script without the __main__ guard gets a clear error, not a list of dead workers."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli.run
from cli.main import app
from mlbench.core import interrupt
from mlbench.core import sweep as sweeplib
from helpers import TINY

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_sigterm_to_a_sweep_stops_its_workers_marks_runs_interrupted_exits_143(tmp_path):
    cmd = [sys.executable, "-m", "cli.main", "sweep", "attn-scaling", "--profile", "smoke", "--jobs", "2",
           "--grid", "lr=0.001,0.002,0.003,0.004", "--set", "steps=400", "--set", "eval_every=50",
           "--set", "head_dims=8,16,32", "--results", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    pids = []
    try:
        deadline = time.time() + 180
        while len({u.parent.parent for u in tmp_path.glob("attn-scaling/*/units/*.json")}) < 2 and time.time() < deadline:
            time.sleep(0.05)  # both workers are inside a run (each has stored a unit of its own)
        manifests = [json.loads(p.read_text()) for p in tmp_path.glob("attn-scaling/*/manifest.json")]
        pids = [m["pid"] for m in manifests]
        assert len(pids) == 2 and all(m["status"] == "running" for m in manifests) and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 143, err
        assert "sweep summary" in out and "terminated (SIGTERM): 4 of 4 runs interrupted" in err
        assert "Traceback" not in err
        statuses = [json.loads(p.read_text())["status"] for p in tmp_path.glob("attn-scaling/*/manifest.json")]
        assert statuses == ["interrupted", "interrupted"]
        time.sleep(1)
        assert not [pid for pid in pids if alive(pid)], "orphan workers"
    finally:  # on a failure, leave no orphan behind: SIGTERM first (the parent stops its workers)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        for pid in pids:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_script_without_the_main_guard_gets_a_clear_error(tmp_path):
    script = tmp_path / "sweep_script.py"
    script.write_text(textwrap.dedent(f"""
        import mlbench
        mlbench.sweep("attn-scaling", {{"lr": [0.001, 0.003]}}, jobs=2, profile="smoke", seeds=1,
                      sets={TINY!r}, results={str(tmp_path / "r")!r})
        print("returned")
    """))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=ENV,
                          cwd=tmp_path)
    assert proc.returncode == 1 and "returned" not in proc.stdout
    assert 'UsageError' in proc.stderr and 'if __name__ == "__main__":' in proc.stderr
    assert "BrokenProcessPool" not in proc.stderr
    assert not list((tmp_path / "r").glob("*/*"))


def fake_point(args):
    return {"status": "complete", "verdict": "reproduced", "effect": 1.0}


def test_ctrl_c_after_every_point_finished_says_so(results, monkeypatch):
    monkeypatch.setattr(sweeplib, "_run_point", fake_point)
    real = sweeplib.run_sweep

    def then_ctrl_c(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeplib, "run_sweep", then_ctrl_c)
    res = CliRunner().invoke(app, ["sweep", "attn-scaling", "--profile", "smoke", "--grid", "lr=0.001,0.003",
                                   "--results", str(results)])
    assert res.exit_code == 130, res.output
    assert "every run had finished before the stop (2 complete): nothing to resume" in res.output
    assert "rerun the same sweep" not in res.output


def test_ctrl_c_while_a_finished_run_is_shown_says_it_is_complete(results, monkeypatch):
    args = ["run", "attn-scaling", "--profile", "smoke", "--threads", "1", "--results", str(results),
            *sum((["--set", s] for s in TINY), [])]
    assert CliRunner().invoke(app, args).exit_code == 0

    def ctrl_c(result):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.run, "render_summary", ctrl_c)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 130
    (run_dir,) = results.glob("attn-scaling/*")
    assert "interrupted (Ctrl-C): the run is complete (only its display was cut short)" in res.output
    assert run_dir.name in res.output and "resume" not in res.output


def run_main(prelude):
    code = f"import atexit, os, signal, sys\n{prelude}\nsys.argv = ['mlbench', 'list']\nimport cli.main\ncli.main.main()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=ENV)


def test_ctrl_c_as_python_shuts_down_after_the_command_exits_130():
    # the signal lands after the command's output, in an exit handler: Python's default would die of SIGINT (-2)
    proc = run_main("atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT))")
    assert proc.returncode == 130, proc.stderr
    assert "attn-scaling" in proc.stdout
    assert proc.stderr.strip().endswith("interrupted (Ctrl-C) after the command had finished: its work is done")


def test_ctrl_c_handled_inside_an_exec_still_exits_130_under_python_m(tmp_path):
    # where a real Ctrl-C landed in 4 of 58 tries: inside dataclasses' exec() while torch imports
    # lazily; CPython then flags it unhandled and `python -m` died of SIGINT (-2) after our message
    (tmp_path / "ctrl_c_in_exec.py").write_text(textwrap.dedent("""
        import cli.main
        from cli import common

        def app():
            try:
                exec("raise KeyboardInterrupt")
            except KeyboardInterrupt as exc:
                common.stopped(exc, "rerun the same command to resume")

        cli.main.app = app
        cli.main.main()
    """))
    proc = subprocess.run([sys.executable, "-m", "ctrl_c_in_exec"], capture_output=True, text=True, timeout=120,
                          env=ENV, cwd=tmp_path)
    assert proc.returncode == 130 and "interrupted (Ctrl-C): rerun the same command" in proc.stderr


def test_ctrl_c_outside_any_command_exits_130_with_a_line():
    proc = run_main("import cli.main as m\ndef app():\n    raise KeyboardInterrupt\nm.app = app")
    assert proc.returncode == 130 and "Traceback" not in proc.stderr
    assert "interrupted (Ctrl-C): the command had returned" in proc.stderr


def _sigterm_self():
    os.kill(os.getpid(), signal.SIGTERM)


def test_a_second_sigterm_while_stopping_is_ignored_and_the_next_stop_raises_again():
    cleaned = []
    with pytest.raises(interrupt.Terminated):
        with interrupt.sigterm_raises():
            try:
                with interrupt.sigterm_raises():  # nested, as the runner's blocks are
                    _sigterm_self()
            except interrupt.Terminated:
                _sigterm_self()  # the pool's second SIGTERM, during the cleanup
                cleaned.append("marked interrupted")
                raise
    assert cleaned == ["marked interrupted"]
    with pytest.raises(interrupt.Terminated):  # a later stop raises again
        with interrupt.sigterm_raises():
            _sigterm_self()
