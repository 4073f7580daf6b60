"""Progress reporting: the library talks to a `Progress`; the CLI plugs in a rich bar."""

from __future__ import annotations

from typing import Protocol


class ProgressTask(Protocol):
    def advance(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


class Progress(Protocol):
    def task(self, description: str, total: int | None) -> ProgressTask: ...


class _NoTask:
    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class NoProgress:
    """Reports nothing (library use, tests)."""

    def task(self, description: str, total: int | None) -> ProgressTask:
        return _NoTask()
