"""Shared CLI plumbing: consoles and turning library errors into one line + exit code 2."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from mlbench.core.errors import MlbenchError
from mlbench.core.interrupt import exit_code, signal_name

F = TypeVar("F", bound=Callable[..., Any])

console = Console(highlight=False, soft_wrap=True, emoji=False)  # long lines wrap in the terminal, not mid-path
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

VERDICT_STYLE = {"reproduced": "bold green", "not_reproduced": "bold red", "inconclusive": "bold yellow",
                 "smoke": "dim"}


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)  # `[grid]` prints as typed
    return typer.Exit(code)


def user_errors(fn: F) -> F:
    """Run a command; an MlbenchError becomes `error: <message>` and exit code 2; Ctrl-C exit 130
    and SIGTERM exit 143, each with one line (a command that knows better says what was done)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MlbenchError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt as exc:
            stopped(exc, "rerun the same command to resume (finished work is kept)")

    return wrapper  # type: ignore[return-value]


REPORTED = False  # set once `stopped` has said why the command ends


def stopped(exc: BaseException, what: str) -> None:
    """`interrupted (Ctrl-C): <what>` or `terminated (SIGTERM): <what>` on stderr, exit 130 / 143."""
    global REPORTED
    REPORTED = True
    word = "terminated" if exit_code(exc) == 143 else "interrupted"
    err_console.print(f"{word} ({signal_name(exc)}): {escape(what)}", soft_wrap=True)
    sys.exit(exit_code(exc))


def verdict_text(verdict: str) -> str:
    label = "smoke (not a verdict)" if verdict == "smoke" else verdict
    return f"[{VERDICT_STYLE.get(verdict, 'bold')}]{label}[/]"


PROFILES = ("smoke", "quick", "full")  # every experiment's (experiments/<name>.toml); checked by the library
PROFILE_HELP = "smoke (seconds, plumbing only) | quick (the verdict, about a minute on a CPU) | full (paper-like scale)."
DEVICE_HELP = "auto (cuda if there is one) | cpu | cuda."


def complete_experiment(incomplete: str) -> list[str]:
    from mlbench.core import registry

    return [n for n in registry.names() if n.startswith(incomplete)]


def complete_profile(incomplete: str) -> list[str]:
    return [p for p in PROFILES if p.startswith(incomplete)]


def complete_device(incomplete: str) -> list[str]:
    return [d for d in ("auto", "cpu", "cuda") if d.startswith(incomplete)]
