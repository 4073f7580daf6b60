"""One writer per run folder: a kernel lock on `<run>/.lock`, its holder named in `<run>/.lock.json`.

The lock is `flock` (through `filelock`): the kernel releases it when the holding process ends,
however it ends (SIGKILL included), so there is no stale lock to detect and no pid to trust. The
holder's host and pid are written beside it for the message only: nothing decides on them. The
lock file itself stays after a run (it is empty); removing it while nobody runs is harmless.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from mlbench.core import store
from mlbench.core.errors import RunStoreError

LOCK, HOLDER = ".lock", ".lock.json"
FILES = (LOCK, HOLDER)
WAIT = 1.0  # seconds a writer waits for the lock: rides out a `report` that is probing it

_held: dict[str, Any] = {}  # run folder -> the FileLock this process holds


def lock(run_dir: Path) -> None:
    """Take the run's lock (RunStoreError naming the holder if another process has it)."""
    key = str(Path(run_dir).resolve())
    if key in _held:
        return
    from filelock import FileLock, Timeout

    held = FileLock(str(Path(run_dir) / LOCK), timeout=WAIT)
    try:
        held.acquire()
    except Timeout:
        raise RunStoreError(f"run {run_dir} is being written by another mlbench process "
                            f"({holder_text(run_dir)}); wait for it to finish") from None
    except OSError as exc:
        raise RunStoreError(f"cannot lock {run_dir}: {exc.strerror or exc}") from None
    _held[key] = held
    try:  # for the message only: a full disk shows up (and is reported) with the run's first file
        store.atomic_write_json(Path(run_dir) / HOLDER, {"host": platform.node(), "pid": os.getpid(),
                                                         "since": store.now()})
    except RunStoreError:
        pass


def unlock(run_dir: Path) -> None:
    """Release the lock if this process holds it (the holder note goes first, then the lock)."""
    held = _held.pop(str(Path(run_dir).resolve()), None)
    if held is None:
        return
    (Path(run_dir) / HOLDER).unlink(missing_ok=True)
    held.release()


def state(run_dir: Path) -> str:
    """"held" (a live process holds the lock), "free", or "unknown" (flock cannot be asked here).
    Asked with a shared, non-blocking flock on a read-only handle: nothing is written."""
    if str(Path(run_dir).resolve()) in _held:
        return "held"
    try:
        import fcntl

        fd = os.open(Path(run_dir) / LOCK, os.O_RDONLY)
    except FileNotFoundError:
        return "free"  # the writer takes the lock before it writes a manifest
    except (ImportError, OSError):
        return "unknown"
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return "held"
    except OSError:
        return "unknown"
    finally:
        os.close(fd)  # closing drops our shared lock
    return "free"


def holder_text(run_dir: Path) -> str:
    """'pid 123 on host h, since ...' from the holder note, or what is known without it."""
    try:
        info = store.read_json(Path(run_dir) / HOLDER)
        return f"pid {int(info['pid'])} on host {info['host']}, since {info['since']}"
    except (RunStoreError, KeyError, TypeError, ValueError):
        return "holder not yet named"
