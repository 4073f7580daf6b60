"""Progress on stderr: a live bar in a terminal, plain lines in a log (stderr not a terminal).

In a log (a batch job, `2> run.log`, a CI step) a live bar prints nothing until the end; there a
line is printed every `PlainProgress.every` seconds instead:
`progress: train 24 MLPs 120/400 (30%), 12 s in` (seconds since the command's work began).
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mlbench.core.progress import Progress as ProgressSink
from mlbench.core.progress import ProgressTask


class RichProgress:
    """Adapts rich's Progress to the library's `Progress` protocol."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar

    def task(self, description: str, total: int | None) -> ProgressTask:
        bar, task_id = self.bar, self.bar.add_task(escape(description), total=total)

        class _Task:
            def advance(self, n: int = 1) -> None:
                bar.advance(task_id, n)

            def close(self) -> None:
                bar.refresh()

        return _Task()


class PlainProgress:
    """A plain line every `every` seconds, and one when a task that was reported ends."""

    def __init__(self, out: Console, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.out, self.every, self.clock = out, every, clock
        self.start = self.last = clock()

    def line(self, text: str) -> None:
        self.out.print(f"progress: {escape(text)}", soft_wrap=True, highlight=False)
        self.last = self.clock()

    def task(self, description: str, total: int | None) -> ProgressTask:
        return _PlainTask(self, description, total)


class _PlainTask:
    def __init__(self, parent: PlainProgress, description: str, total: int | None) -> None:
        self.parent, self.description, self.total = parent, description, total
        self.done, self.reported = 0, False

    def _text(self) -> str:
        seconds = f"{self.parent.clock() - self.parent.start:.0f} s in"
        if not self.total:
            return f"{self.description}: {self.done} done, {seconds}"
        return f"{self.description} {self.done}/{self.total} ({100 * self.done // self.total}%), {seconds}"

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.parent.clock() - self.parent.last >= self.parent.every:
            self.parent.line(self._text())
            self.reported = True

    def close(self) -> None:
        if self.reported:
            self.parent.line(self._text() + " (done)")


@contextmanager
def progress_for(out: Console) -> Iterator[ProgressSink]:
    """A live bar when `out` is a terminal, else plain lines every few seconds."""
    if not out.is_terminal:
        yield PlainProgress(out)
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=out, transient=False)
    with bar:
        yield RichProgress(bar)
