"""`--log-with`: accelerate's trackers get every logged record and the verdicts; a tracker that is
unknown or not installed is one line and exit 2 before anything is written."""

import json
import math

import pytest
from typer.testing import CliRunner

from cli.main import app
from mlbench.core import trackers
from mlbench.core.context import Context

runner = CliRunner()
SMOKE = ["run", "hippo-memory", "--profile", "smoke", "--threads", "1", "--device", "cpu"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_unknown_tracker_is_one_line_and_exit_2(results):
    res = invoke(*SMOKE, "--log-with", "nosuch", "--results", results)
    assert res.exit_code == 2, res.output
    assert "unknown tracker 'nosuch'" in res.output and "tensorboard" in res.output
    assert "Traceback" not in res.output and not results.exists()


def test_missing_tracker_names_its_extra(results, monkeypatch):
    monkeypatch.setattr(trackers.importlib.util, "find_spec", lambda name: None)
    res = invoke(*SMOKE, "--log-with", "tensorboard", "--results", results)
    assert res.exit_code == 2, res.output
    assert "pip install 'mlbench[tensorboard]'" in res.output and not results.exists()


def test_record_scalars_are_named_by_arm_coordinates_and_seed():
    step, values = trackers.scalars({"arm": "infonce@N256,I10", "d": 64, "seed": 1, "step": 20, "train_loss": 0.5,
                                     "diverged": True, "note": "x"}, prefix="look2/")
    assert step == 20
    assert values == {"look2/train_loss/infonce_N256_I10/d64/x/seed1": 0.5,
                      "look2/diverged/infonce_N256_I10/d64/x/seed1": 1.0}
    assert trackers.scalars({"estimate": 1.5}) == (None, {"estimate": 1.5})


def test_sink_gets_each_record_once_live_or_when_a_unit_is_resumed(tmp_path):
    sent = []
    ctx = Context("hippo-memory", tmp_path, [0], sink=sent.extend)
    ctx.unit("a", lambda: ctx.log(arm="x", seed=0, v=1.0))
    assert sent == [{"arm": "x", "seed": 0, "v": 1.0}]  # live, not again when the unit joins
    ctx.log(v=2.0)
    again = []
    resumed = Context("hippo-memory", tmp_path, [0], sink=again.extend)
    resumed.unit("a", lambda: pytest.fail("a stored unit is not recomputed"))
    assert len(sent) == 2 and again == [{"arm": "x", "seed": 0, "v": 1.0}]


def test_tensorboard_event_file_holds_every_logged_scalar(tmp_path):
    """hippo-memory smoke with --log-with tensorboard: every float of every metrics.jsonl line is
    a scalar in the event file (read back with tensorboard's reader), with the verdicts, and the
    run's own files are the bytes of a run without a tracker."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    plain, tracked = tmp_path / "plain", tmp_path / "tracked"
    assert invoke(*SMOKE, "--results", plain).exit_code == 0
    res = invoke(*SMOKE, "--results", tracked, "--log-with", "tensorboard")
    assert res.exit_code == 0, res.output
    (run_dir,) = (tracked / "hippo-memory").iterdir()
    for name in ("metrics.jsonl", "summary.json", "table.csv"):
        assert (run_dir / name).read_bytes() == (plain / "hippo-memory" / run_dir.name / name).read_bytes(), name
    events = EventAccumulator(str(run_dir / "trackers" / "hippo-memory"), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    logged = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    expected = [(tag, step, value) for r in records for step, vals in [trackers.scalars(r)] for tag, value in vals.items()]
    assert len(expected) > 100
    for tag, step, value in expected:
        assert any(s == (step or 0) and math.isclose(v, value, rel_tol=1e-6) for s, v in logged[tag]), tag
    summary = json.loads((run_dir / "summary.json").read_text())
    head = summary["claims"][0]
    assert logged[f"claims/{head['id']}/effect"][0][1] == pytest.approx(head["effect"], rel=1e-6)
    assert f"claims/{head['id']}/verdict/text_summary" in events.Tags()["tensors"]


def test_mlflow_store_is_local_and_holds_the_scalars(tmp_path):
    """--log-with mlflow writes a local SQLite store under the run folder (no server, no network)."""
    mlflow = pytest.importorskip("mlflow")
    res = invoke(*SMOKE, "--results", tmp_path, "--log-with", "mlflow")
    assert res.exit_code == 0, res.output
    (run_dir,) = (tmp_path / "hippo-memory").iterdir()
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'trackers' / 'mlflow.db'}")
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.run_name == run_dir.name and run.info.status == "FINISHED"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    _, values = trackers.scalars(records[0])
    for tag, value in values.items():
        assert [m.value for m in client.get_metric_history(run.info.run_id, tag)] == [value]
