"""Stopping on a signal: Ctrl-C (SIGINT) and SIGTERM (`kill`, `scancel`) both stop a run the same
way (KeyboardInterrupt: marked interrupted, resumable); SIGTERM raises `Terminated`, its subclass,
so that the CLI can exit 143 for it and 130 for Ctrl-C."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal number, as shells report it


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop like Ctrl-C, but exit 143."""


def exit_code(exc: BaseException) -> int:
    return EXIT_CODES[signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT]


def signal_name(exc: BaseException) -> str:
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"


_state = {"depth": 0, "stopping": False}  # open sigterm_raises blocks; a SIGTERM already raised in them


def _raise_terminated(signum, frame):
    """The first SIGTERM raises `Terminated`; later ones, while that stop unwinds (units, the
    manifest marked interrupted), are ignored: a process pool whose first worker exits SIGTERMs the
    others again (Python's broken-pool handling), which cut a run's cleanup short and left it
    `running` (1 run in 7 of `run --all --jobs 2` stopped by Ctrl-C). A stuck process still ends
    with SIGKILL."""
    if _state["stopping"]:
        return
    _state["stopping"] = True
    raise Terminated


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises `Terminated`, once (main thread only; elsewhere signals are
    left alone). When the outermost block ends, the next SIGTERM raises again."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    _state["depth"] += 1
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _state["depth"] -= 1
        if _state["depth"] == 0:
            _state["stopping"] = False


@contextmanager
def ignored() -> Iterator[None]:
    """Within the block SIGINT and SIGTERM are ignored: for the few writes that mark a run stopped
    (a second signal there would leave its status `running`). Use it only while already stopping."""
    try:
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
