"""`mlbench`: reproducible one-command experiments that test claims from ML papers."""

from __future__ import annotations

import os

# Before torch (OpenMP) is ever imported: idle worker threads sleep instead of spinning. On a
# loaded 2-core machine spinning made 2-thread runs up to 9x slower; results are bit-identical.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer  # noqa: E402

from cli import check, list_cmd, report, run, show, sweep, verify  # noqa: E402

app = typer.Typer(
    name="mlbench",
    help="Reproducible one-command experiments that test claims from ML papers, each ending in a "
         "measured verdict: reproduced / not_reproduced / inconclusive.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("list")(list_cmd.list_experiments)
app.command("show")(show.show)
app.command("run")(run.run)
app.command("sweep")(sweep.sweep)
app.command("report")(report.report)
app.command("verify")(verify.verify)
app.command("check")(check.check)


@app.callback()
def main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        from mlbench import __version__

        typer.echo(f"mlbench {__version__}")
        raise typer.Exit()


if __name__ == "__main__":
    app()
