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


def _raise_terminated(signum, frame):
    raise Terminated


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises `Terminated` (main thread only; elsewhere signals are left alone)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
