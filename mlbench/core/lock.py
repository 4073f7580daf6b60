"""One writer per run folder: a lock file holding the writer's pid."""

from __future__ import annotations

import os
from pathlib import Path

from mlbench.core.errors import RunStoreError


def lock(run_dir: Path) -> None:
    """An O_EXCL lock file holding our pid; a stale one (dead pid) is taken over."""
    path = run_dir / ".lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(path.read_text() or "0")
            except (OSError, ValueError):
                pid = 0
            if pid == os.getpid():
                return
            if pid and _alive(pid):
                raise RunStoreError(f"run {run_dir} is being written by another mlbench process "
                                    f"(pid {pid}); wait for it to finish") from None
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as fh:
            fh.write(str(os.getpid()))
        return
    raise RunStoreError(f"could not lock {run_dir}")


def unlock(run_dir: Path) -> None:
    path = run_dir / ".lock"
    try:
        if path.read_text() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
