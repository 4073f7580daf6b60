"""`mlbench`: reproducible one-command experiments that test claims from ML papers."""

from __future__ import annotations

import inspect
import os
import signal
import sys

# Before torch (OpenMP) is ever imported: idle worker threads sleep instead of spinning. On a
# loaded 2-core machine spinning made 2-thread runs up to 9x slower; results are bit-identical.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer  # noqa: E402
from rich.markup import escape  # noqa: E402
import typer.core  # noqa: E402

from cli import check, diff, list_cmd, report, run, runs, show, sweep, verify  # noqa: E402


def _no_bool_metavar() -> None:
    """Help shows `--force`, not `--force <bool>`: a flag takes no value (Typer >= 0.16 prints a
    type for every option; a flag's type says nothing to the reader)."""
    option = getattr(typer.core, "TyperOption", None)
    original = getattr(option, "display_type_rich", None)
    if original is None or getattr(original, "_mlbench", False):
        return

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else original(self, ctx)

    display_type_rich._mlbench = True
    option.display_type_rich = display_type_rich


_no_bool_metavar()


def _one_line_usage_errors() -> None:
    """A bad flag value or a missing argument is one line and exit 2, like every other bad
    input (Typer draws a usage box of several lines): `error: <what> (see 'mlbench run -h')`."""
    import typer.rich_utils

    def one_line(exc) -> None:
        from cli.common import err_console

        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} -h')" if ctx is not None else ""
        err_console.print(f"[bold red]error:[/] {escape(exc.format_message())}{escape(hint)}", soft_wrap=True)

    typer.rich_utils.rich_format_error = one_line


_one_line_usage_errors()

app = typer.Typer(
    name="mlbench",
    help="Reproducible one-command experiments that test claims from ML papers, each ending in a "
         "measured verdict: reproduced / not_reproduced / inconclusive.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _help(fn) -> str:
    """A command's docstring as help text: each paragraph one line, so that `--help` wraps it to
    the terminal (Typer keeps the source's line breaks after the first paragraph)."""
    paragraphs = inspect.cleandoc(fn.__doc__ or "").split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


for _name, _fn in [("list", list_cmd.list_experiments), ("show", show.show), ("run", run.run),
                   ("sweep", sweep.sweep), ("report", report.report), ("verify", verify.verify),
                   ("check", check.check), ("runs", runs.runs), ("diff", diff.diff)]:
    app.command(_name, help=_help(_fn))(_fn)


def _print_version(value: bool) -> None:
    if value:
        from mlbench import __version__

        typer.echo(f"mlbench {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", help="Print the version and exit.",
                                          callback=_print_version, is_eager=True)) -> None:
    """Eager `--version`: answered before Typer asks for a command."""


def main() -> None:
    """The `mlbench` command: the app, with Ctrl-C ending in exit 130 (SIGTERM 143) and one line
    wherever it lands: a command says what it had done; outside its work (arguments being parsed,
    the command returning, Python shutting down) this says so."""
    from cli import common

    try:
        try:
            app()
        except KeyboardInterrupt as exc:  # outside a command's own handler (as it returns)
            common.stopped(exc, "the command had returned; rerun it if unsure it finished")
    except SystemExit as exc:
        if exc.code in (130, 143):
            if not common.REPORTED:  # Typer's silent exit for Ctrl-C while it parses the arguments
                common.err_console.print("interrupted (Ctrl-C) while the command was starting or returning")
            _exit_now(exc.code)
        raise
    finally:
        signal.signal(signal.SIGINT, _interrupted_at_exit)


def _exit_now(code: int) -> None:
    """Exit with `code` now, not through the interpreter's exit: a Ctrl-C that lands inside an
    `exec` of a string (dataclasses' generated methods, while torch imports `torch._dynamo` at the
    first optimizer step) leaves CPython's "unhandled KeyboardInterrupt" flag set although it was
    handled, and `python -m` then ends by killing itself with SIGINT (-2): 4 of 58 Ctrl-Cs of one
    run did. Everything a run writes is already on disk (written atomically, fsynced)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _interrupted_at_exit(signum, frame) -> None:
    """Ctrl-C while the interpreter shuts down (after the command's own output)."""
    sys.stdout.flush()
    sys.stderr.write("interrupted (Ctrl-C) after the command had finished: its work is done\n")
    sys.stderr.flush()
    os._exit(130)


if __name__ == "__main__":
    main()
