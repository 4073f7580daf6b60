"""verify (bitwise / differs) and report (formats, escaping, old versions apart, pivots)."""

import json

import pytest
from typer.testing import CliRunner

from cli.main import app
from mlbench.core import registry
from mlbench.core import report as reportlib
from mlbench.core import verify as verifylib


def test_verify_bitwise(two_runs):
    _, runs = two_runs
    res = CliRunner().invoke(app, ["verify", str(runs[0].run_dir)])
    assert res.exit_code == 0 and "bitwise" in res.output


def test_verify_detects_a_changed_file(two_runs, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(two_runs[1][1].run_dir, copy)
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    rec = json.loads(lines[0])
    rec["heldout_acc"] += 0.5
    (copy / "metrics.jsonl").write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n")
    result = verifylib.verify(copy)
    assert result.outcome == "differs" and result.max_deviation == pytest.approx(0.5)
    res = CliRunner().invoke(app, ["verify", str(copy)])
    assert res.exit_code == 1 and "differs" in res.output


def test_verify_refuses_incomplete_or_foreign_folders(tmp_path):
    res = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert res.exit_code == 2 and "not a run folder" in res.output


@pytest.mark.parametrize("fmt", reportlib.FORMATS)
def test_report_formats(two_runs, fmt):
    root, runs = two_runs
    res = CliRunner().invoke(app, ["report", "--results", str(root), "--format", fmt])
    assert res.exit_code == 0, res.output
    text = (root / f"REPORT.{fmt}").read_text()
    assert all(r.run_dir.name in text for r in runs)
    if fmt == "json":
        (group,) = json.loads(text)
        assert group["varying"] == ["lr"] and group["current"]
    if fmt == "md":
        assert "Pivot: headline effect by `lr`" in text and "| lr |" in text
    if fmt == "html":
        assert "data:image/png;base64," in text and "http" not in text.replace("http-equiv", "")


def test_report_escapes_and_separates_old_versions(two_runs, tmp_path):
    import shutil

    root, runs = two_runs
    other = tmp_path / "results"
    shutil.copytree(root, other)
    old = other / "attn-scaling" / runs[0].run_dir.name
    summary = json.loads((old / "summary.json").read_text())
    summary["experiment_version"] = 0
    summary["claims"][0]["text"] = "<script>alert(1)</script>"
    (old / "summary.json").write_text(json.dumps(summary))
    path, groups, _ = reportlib.write_report(other, fmt="html")
    html = path.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    current = registry.version("attn-scaling")
    assert [(g.version, g.current) for g in groups] == [(current, True), (0, False)]
    assert "older version 0" in html


def test_report_skips_broken_runs(two_runs, tmp_path):
    import shutil

    root, runs = two_runs
    other = tmp_path / "r"
    shutil.copytree(root, other)
    (other / "attn-scaling" / runs[0].run_dir.name / "summary.json").write_text("{trunc")
    rows, skipped = reportlib.collect(other)
    assert len(rows) == 1 and "unreadable" in skipped[0]


def test_corrupt_config_or_checkpoint_is_one_line_exit_2(two_runs, tmp_path):
    import shutil

    src = two_runs[1][0].run_dir
    bad_config = tmp_path / "c"
    shutil.copytree(src, bad_config)
    (bad_config / "config.json").write_text('{"experiment": ')
    res = CliRunner().invoke(app, ["verify", str(bad_config)])
    assert res.exit_code == 2 and "corrupt JSON" in res.output and "Traceback" not in res.output
    bad_ckpt = tmp_path / "k"
    shutil.copytree(src, bad_ckpt)
    ckpt = sorted((bad_ckpt / "checkpoints").iterdir())[0]
    ckpt.write_bytes(ckpt.read_bytes()[:40])  # truncated
    res = CliRunner().invoke(app, ["verify", str(bad_ckpt)])
    assert res.exit_code == 2 and "corrupt checkpoint" in res.output


def _copy_with_cell(src, dst, delta):
    """A copy of a run whose table.csv has one numeric cell changed by `delta`: (row, column)."""
    import csv
    import io
    import shutil

    shutil.copytree(src, dst)
    rows = list(csv.reader(io.StringIO((dst / "table.csv").read_text())))
    col = rows[0].index("H0")
    rows[2][col] = repr(float(rows[2][col]) + delta)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    (dst / "table.csv").write_text(buf.getvalue())
    return 2, "H0"


def test_verify_tolerance_and_differs_name_the_cell(two_runs, tmp_path):
    src = two_runs[1][0].run_dir
    _copy_with_cell(src, tmp_path / "tiny", 1e-12)
    res = CliRunner().invoke(app, ["verify", str(tmp_path / "tiny")])
    assert res.exit_code == 0 and "within tolerance" in res.output, res.output
    assert "table.csv row 2 column H0" in res.output.replace("\n", " ")
    _copy_with_cell(src, tmp_path / "big", 1.0)
    res = CliRunner().invoke(app, ["verify", str(tmp_path / "big")])
    assert res.exit_code == 1 and "differs" in res.output
    assert "table.csv row 2 column H0" in res.output.replace("\n", " ")


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "metrics.jsonl").write_text((d / "metrics.jsonl").read_text()[:-20]), "metrics.jsonl"),
    (lambda d: (d / "summary.json").unlink(), "summary.json"),
    (lambda d: (d / "table.csv").unlink(), "table.csv"),
    (lambda d: (d / "manifest.json").write_text("[1, 2]"), "manifest.json"),
    (lambda d: (d / "summary.json").write_text('{"claims": 5}'), "summary.json"),
    (lambda d: (d / "config.json").write_text(
        (d / "config.json").read_text().replace('"seeds": 2', '"seeds": -1')), "seeds"),
])
def test_corrupt_run_folder_is_one_line_before_any_rerun(two_runs, tmp_path, damage, message, monkeypatch):
    import shutil

    from mlbench.core import runner

    copy = tmp_path / "bad"
    shutil.copytree(two_runs[1][0].run_dir, copy)
    damage(copy)
    monkeypatch.setattr(runner, "execute", lambda *a, **k: pytest.fail("verify reran a corrupt run"))
    res = CliRunner().invoke(app, ["verify", str(copy)])
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1
