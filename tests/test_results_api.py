"""`mlbench.results(root)`: complete runs as rows, pandas DataFrames, a `datasets.Dataset`, and
each run's metrics.jsonl as a frame; an HTML repr for notebooks."""

import json
import sys

import pytest

import mlbench
from mlbench.core.errors import UsageError

TINY_ATTN = ["steps=6", "eval_every=2", "eval_size=64", "stats_queries=32"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Three smoke runs of two experiments, and one folder of a run that did not finish."""
    root = tmp_path_factory.mktemp("results")
    for seeds in (1, 2):
        mlbench.run("hippo-memory", profile="smoke", seeds=seeds, results=root, threads=1, device="cpu")
    mlbench.run("attn-scaling", profile="smoke", sets=TINY_ATTN, results=root, threads=1, device="cpu")
    broken = root / "hippo-memory" / "smoke-unfinished"
    broken.mkdir()
    (broken / "manifest.json").write_text(json.dumps({"status": "running"}))
    return root


def test_results_lists_complete_runs_with_their_verdicts(root):
    runs = mlbench.results(root)
    assert len(runs) == 3 and sorted(r.experiment for r in runs) == ["attn-scaling", "hippo-memory", "hippo-memory"]
    assert any("smoke-unfinished" in line and "interrupted" in line for line in runs.skipped)  # its writer is gone
    assert len(mlbench.results(root, experiment="attn-scaling")) == 1
    for run in runs:
        summary = json.loads((run.run_dir / "summary.json").read_text())
        assert run.summary == summary and run.verdict == summary["verdict"] == "smoke"
        assert run.config == json.loads((run.run_dir / "config.json").read_text())["config"]


def test_to_pandas_has_a_row_per_run_and_per_claim(root):
    runs = mlbench.results(root)
    df = runs.to_pandas()
    assert len(df) == 3 and list(df["run_id"]) == [r.run_id for r in runs]
    assert list(df["seeds"]) == [r.summary["seeds"] for r in runs]
    assert list(df["effect"]) == pytest.approx([r.summary["headline"]["effect"] for r in runs])
    hippo = df[df["experiment"] == "hippo-memory"]
    assert hippo["config.length"].notna().all() and df.loc[df["experiment"] == "attn-scaling", "config.steps"].item() == 6
    assert set(hippo["verdict.memory"]) == {"smoke"}
    claims = runs.to_pandas(claims=True)
    assert len(claims) == sum(len(r.claims) for r in runs)
    assert set(claims.columns) >= {"run_id", "claim", "verdict", "effect", "ci_low", "ci_high", "test"}


def test_to_dataset_keeps_the_config_as_json(root):
    runs = mlbench.results(root)
    ds = runs.to_dataset()
    assert ds.num_rows == 3 and [json.loads(c) for c in ds["config"]] == [r.config for r in runs]
    assert ds["verdict"] == [r.verdict for r in runs]
    assert runs.to_dataset(claims=True).num_rows == sum(len(r.claims) for r in runs)


def test_metrics_frame_is_metrics_jsonl(root):
    run = mlbench.results(root)[0]
    lines = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    frame = run.metrics()
    assert len(frame) == len(lines) and set(frame.columns) == {k for line in lines for k in line}
    assert frame.iloc[0].dropna().to_dict() == pytest.approx(lines[0])


def test_html_repr_shows_the_verdicts_escaped(root):
    runs = mlbench.results(root)
    page = runs[0]._repr_html_()
    assert runs[0].experiment in page and "smoke (not a verdict)" in page
    assert all(c["id"] in page for c in runs[0].claims) and "<script" not in page
    assert all(r.run_id in runs._repr_html_() for r in runs)


def test_without_pandas_one_line_names_the_extra(root, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(UsageError, match=r"pip install 'mlbench\[pandas\]'"):
        mlbench.results(root).to_pandas()
