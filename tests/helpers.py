"""Test helpers shared by several test modules."""

from mlbench.core.context import NoProgress


class InterruptAt(NoProgress):
    """A progress sink that raises Ctrl-C when the n-th progress task starts."""

    def __init__(self, n):
        self.n = n

    def task(self, description, total):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt
        return super().task(description, total)
