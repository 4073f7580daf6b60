"""`python -m mlbench.core.executors.child PARENT_PID ARGS...`: `python -m cli.main ARGS...` that
ends with the process that started it.

A Dask worker runs each point as this subprocess. If the worker is killed (SIGKILL, out of
memory), Linux sends the run SIGTERM (`PR_SET_PDEATHSIG`, kept across the exec), which marks it
interrupted and frees its lock: no orphan run keeps writing a point that the next sweep resumes.
Elsewhere (no prctl) the run simply goes on alone until it ends.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main() -> None:
    parent, args = int(sys.argv[1]), sys.argv[2:]
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux
        pass
    if os.getppid() != parent:  # the worker died before the signal was armed
        sys.exit(143)
    os.execv(sys.executable, [sys.executable, "-m", "cli.main", *args])


if __name__ == "__main__":
    main()
