"""The terminal at 80 columns and in logs: tables, claim lines, progress, markup, help."""

import io
import json
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from cli import tables
from cli.main import app
from cli.progress import PlainProgress, RichProgress, progress_for
from mlbench.core import registry, runner
from mlbench.core.tables import Table, mean_ci_cells
from helpers import TINY, assert_cli_stays_light


def invoke(*args, **kw):
    return CliRunner().invoke(app, [str(a) for a in args], **kw)


def console(width=80):
    buf = io.StringIO()
    return Console(file=buf, width=width, color_system=None, highlight=False), buf


WIDE_HEAD = ["model", "arm", "parameters", "epoch_budget", "epochs_run", "best_epoch", "test_nll", "test_nll_ci_low",
             "test_nll_ci_high", "bits_per_pixel", "minus_fvsbn", "minus_fvsbn_ci_low", "minus_fvsbn_ci_high",
             "train_nll", "jacobian_violations", "context_nonzero", "paper_mnist_nll", "steps"]
WIDE_ROWS = [["independent pixels (closed form)", "independent", "64", "0", "0.0", "0", "25.07667064666748",
              "24.60184323064136", "25.5514980626936", "0.5652810684992657", "3.3910064697265625", "3.13336246004",
              "3.6486504794126", "25.07726764678955", "0.0", "0.0", "nan", "194"],
             ["FVSBN (λ chosen on validation)", "fvsbn", "2080", "3", "3.0", "3.0", "21.685664176940918",
              "21.468480770600834", "21.902847583281", "0.4888406276008767", "0.0", "0.0", "0.0",
              "21.457173347473145", "0.0", "3328.0", "97.45", "100.0"]]


def render_wide(width):
    out, buf = console(width)
    path_rows = [WIDE_HEAD, *WIDE_ROWS]
    parts, legend = tables.tables(path_rows[0], path_rows[1:], width)
    for t in parts:
        out.print(t)
    return buf.getvalue(), len(parts), legend


def test_a_wide_table_at_80_columns_drops_no_column_and_cuts_no_cell():
    text, blocks, legend = render_wide(80)
    assert blocks > 1 and legend
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    flat = re.sub(r"[\s│┃┏┓┗┛┡┩┳┻╇━─└┘┌┐┼┴┬]+", " ", text)
    for cell in ("independent", "2080", "3328", "97.45", "25.08 [24.6, 25.55]", "0.5653", "nan"):
        assert cell in flat, cell
    joined = text.replace("_\n", "_")
    for name in WIDE_HEAD:  # every column is there (long names wrap after an underscore)
        if not name.endswith(("_ci_low", "_ci_high")):
            assert all(part.rstrip("_") in text for part in name.split("_")), name
    assert joined


def test_integers_print_as_integers_and_numbers_never_wrap():
    text, _, _ = render_wide(80)
    assert "100.0" not in text and " 100 " in text and " 194 " in text
    assert "3328.0" not in text and "3.0" not in text
    assert tables.number_text("100.0") == "100" and tables.number_text("0.310539") == "0.3105"
    assert tables.number_text("1e20") == "1e+20" and tables.number_text("nan") == "nan"


def test_wide_console_gets_one_block():
    _, blocks, _ = render_wide(250)
    assert blocks == 1


def test_count_ci_is_clipped_at_zero_in_the_rendered_table():
    cells = mean_ci_cells("reached", [0.0, 0.0, 3.0], lower=0)
    t = Table("main", "t", ["arm", *cells], [{"arm": "a", **cells}])
    rows = list(__import__("csv").reader(io.StringIO(t.csv())))
    out, buf = console()
    parts, _ = tables.tables(rows[0], rows[1:], 80)
    out.print(parts[0])
    (ci,) = re.findall(r"\[(-?[\d.]+), (-?[\d.]+)\]", buf.getvalue())
    assert float(ci[0]) == 0.0 and float(ci[1]) > 0


def summary_with_long_evidence(tmp_path):
    claim = {"id": "generalisation", "text": "AdamW reaches a lower test error than Adam+L2 at its best settings " * 2,
             "citation": "Loshchilov & Hutter 2019", "verdict": "inconclusive", "effect": 0.050312,
             "effect_name": "difference of best_test_error, adam-l2 vs adamw-paper", "ci": [-1.48213, 1.58321],
             "seeds": 4, "reason": "the 95% CI [-1.482, 1.583] includes the bound 0", "test": "paired",
             "parts": [{"verdict": "reproduced", "test": "eff_decay_slope of adam-l2: 95% CI < -0.5",
                        "effect": -0.99951, "ci": [-1.00023, -0.99912], "seeds": 4}]}
    return {"experiment": "adam-vs-adamw", "profile": "quick", "seeds": 4, "decides": True, "claims": [claim],
            "verdict": "inconclusive", "headline": {"claim": "generalisation"}}


def test_claim_lines_wrap_at_80_columns_never_inside_a_number(tmp_path):
    from cli.run import render_summary

    out, buf = console()
    render_summary(runner.RunResult(tmp_path, summary_with_long_evidence(tmp_path), True, 0.0), out)
    text = buf.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    for number in ("0.05031", "-1.482", "1.583", "-0.9995", "-1", "-0.9991"):
        assert re.search(rf"(?<![\d.-]){re.escape(number)}(?![\d.])", text), number  # whole, on one line
    assert "  - reproduced" in text


def test_plain_progress_lines_in_a_log():
    now = [0.0]
    out, buf = console()
    sink = PlainProgress(out, every=5.0, clock=lambda: now[0])
    task = sink.task("train 24 MLPs", 100)
    for _ in range(100):
        now[0] += 0.2
        task.advance()
    task.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 4 and lines[0] == "progress: train 24 MLPs 25/100 (25%), 5 s in"
    assert lines[-1].endswith("(done)")
    quiet = PlainProgress(out, every=5.0, clock=lambda: 0.0).task("fast", 3)
    quiet.advance(3)
    quiet.close()
    assert len(buf.getvalue().splitlines()) == 4  # a task shorter than the interval says nothing


def test_progress_is_a_bar_in_a_terminal_and_lines_in_a_log():
    out, _ = console()
    with progress_for(out) as sink:
        assert isinstance(sink, PlainProgress)
    tty = Console(file=io.StringIO(), force_terminal=True, width=80)
    with progress_for(tty) as sink:
        assert isinstance(sink, RichProgress)


def test_resuming_says_how_many_units_were_done(tmp_path):
    import mlbench
    from helpers import InterruptAt

    with pytest.raises(KeyboardInterrupt):
        mlbench.run("attn-scaling", profile="smoke", results=tmp_path, threads=1, progress=InterruptAt(2))
    args = ["run", "attn-scaling", "--profile", "smoke", "--threads", "1", "--results", tmp_path]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    (done,) = re.findall(r"resuming: (\d+) units? done \(by the interrupted run\)", res.output)
    (resumed, total) = re.findall(r"resumed (\d+) of (\d+) units", res.output)[0]
    assert int(done) == int(resumed) >= 1 and int(total) > int(resumed)


def test_markup_never_eats_user_text(tmp_path):
    res = invoke("run", "attn-scaling", "--set", "[grid]x=1", "--results", tmp_path)
    assert res.exit_code == 2 and "unknown config key '[grid]x'" in res.output
    blocker = tmp_path / "[red]x"
    blocker.write_text("not a folder")
    res = invoke("run", "attn-scaling", "--profile", "smoke", "--results", blocker)
    assert res.exit_code == 2 and "[red]x" in res.output


def test_a_bad_results_root_is_one_line_without_the_run_header(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = invoke("run", "attn-scaling", "--profile", "smoke", "--results", blocker)
    assert res.exit_code == 2 and res.output.strip().splitlines() == [f"error: results root is not a directory: {blocker}"]


def test_version_is_eager():
    res = invoke("--version")
    assert res.exit_code == 0 and res.output.strip() == f"mlbench {__import__('mlbench').__version__}"


def test_help_shows_choices_defaults_and_no_bool():
    run_help = invoke("run", "--help").output
    assert "auto|cpu|cuda" in run_help and "smoke|quick|full" in run_help and "<bool>" not in run_help
    assert re.search(r"--threads.*\n(.*\n)*.*\[default:", run_help)
    report_help = invoke("report", "--help").output
    assert "md|html|json|csv" in report_help and "<bool>" not in invoke("--help").output
    assert "--install-completion" in invoke("--help").output


@pytest.mark.parametrize("words, expected", [("mlbench run attn", "attn-scaling"),
                                             ("mlbench run attn-scaling --device c", "cpu\ncuda"),
                                             ("mlbench report --format h", "html"),
                                             ("mlbench runs --status int", "interrupted")])
def test_shell_completion(words, expected):
    env = {"_MLBENCH_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
    res = CliRunner().invoke(app, [], env=env, prog_name="mlbench")
    assert res.exit_code == 0 and res.output.strip() == expected
    assert "complete -o default -F _mlbench_completion mlbench" in invoke("--show-completion", "bash").output


def test_user_texts_name_no_seed_documents():
    from mlbench.core import config as cfglib

    banned = re.compile(r"science doc|pilot|prototype|seeds? 0\d\d", re.I)
    texts = [invoke(*cmd, "--help").output for cmd in ([], ["run"], ["sweep"], ["report"], ["runs"], ["diff"])]
    for name in registry.names():
        face, info = registry.load(name), registry.info(name)
        texts += [info.summary, info.citation, *[f.help for f in cfglib.describe(face.Config)]]
        texts += [t for c in runner.claims_of(face, face.Config()) for t in (c.text, c.citation)]
    assert not [t for t in texts if banned.search(t)]


def test_json_on_run_show_and_verify(tmp_path):
    args = ["run", "attn-scaling", "--profile", "smoke", "--threads", "1", "--results", tmp_path,
            *sum((["--set", s] for s in TINY), []), "--json"]
    res = invoke(*args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    (run_dir,) = tmp_path.glob("attn-scaling/*")
    assert summary == json.loads((run_dir / "summary.json").read_text())
    assert "recreate: mlbench run attn-scaling" in res.stderr and "┏" not in res.stdout
    spec = json.loads(invoke("show", "attn-scaling", "--json").stdout)
    assert spec["name"] == "attn-scaling" and spec["claims"][0]["id"] == "training"
    assert {"key": "lr", "type": "float"}.items() <= next(f for f in spec["fields"] if f["key"] == "lr").items()
    assert spec["claims"][0]["test"]["kind"] and "quick" in spec["profiles"]
    res = invoke("verify", run_dir, "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["outcome"] == "bitwise" and "verifying" in res.stderr


def test_runs_diff_and_help_never_import_torch(tmp_path):
    (tmp_path / "r").mkdir()
    assert_cli_stays_light(tmp_path / "r", [["runs", "--results", "{results}"],
                                            ["diff", "a", "b", "--results", "{results}"], ["run", "--help"], ["--version"]])
