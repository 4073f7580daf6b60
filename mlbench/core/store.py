"""The run store: atomic files, the manifest, and reading run folders back.

Every file is written to a temporary name in the same folder and renamed into place, so a
killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import subprocess
import sys
import tempfile
import tomllib
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from mlbench.core.errors import RunStoreError

STATUSES = ("running", "complete", "failed", "interrupted")
VERSIONED = ("torch", "accelerate", "datasets", "safetensors", "numpy", "typer", "rich")


def _file_mode() -> int:
    """0o666 minus the umask: what open() would give (mkstemp alone gives 0o600)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to a temporary file beside `path`, fsync, rename. A full or read-only disk
    raises RunStoreError and leaves the old file (or none) in place, never a partial one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise RunStoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise RunStoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fsync_dir(folder: Path) -> None:
    """fsync a folder, so that a rename into it survives a power cut (not only the file's bytes).
    Filesystems that cannot fsync a folder (EINVAL) are skipped."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps(obj: Any) -> str:
    """Canonical JSON for files that must be byte-identical across runs."""
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=True) + "\n"


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, dumps(obj))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunStoreError(f"missing file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunStoreError(f"corrupt JSON in {path}: {exc}") from None
    except OSError as exc:
        raise RunStoreError(f"cannot read {path}: {exc.strerror or exc}") from None


def ensure_writable_root(root: Path) -> None:
    """Fail early (before any run folder exists) if results cannot be written under `root`."""
    if root.exists() and not root.is_dir():
        raise RunStoreError(f"results root is not a directory: {root}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".mlbench-probe-", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise RunStoreError(f"results root is not writable: {root} ({exc.strerror or exc})") from None


def project_root() -> Path | None:
    """The mlbench checkout this code runs from, or None for an installed copy: the folder two
    levels above this package must be the top of a git work tree whose pyproject names mlbench
    (a wheel installed inside someone else's repository is not that repository's code)."""
    root = Path(__file__).resolve().parents[2]
    try:
        with open(root / "pyproject.toml", "rb") as fh:
            if tomllib.load(fh).get("project", {}).get("name") != "mlbench":
                return None
        top = _git(root, "rev-parse", "--show-toplevel")
    except (OSError, ValueError, subprocess.SubprocessError):
        return None
    return root if Path(top).resolve() == root else None


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=5,
                          check=True).stdout.strip()


def git_state() -> dict[str, Any]:
    """The commit (and whether tracked files differ from it) of the checkout this code runs from;
    "unknown" for an installed copy or when git cannot tell."""
    root = project_root()
    try:
        if root is None:
            raise OSError
        return {"commit": _git(root, "rev-parse", "HEAD"),
                "dirty": bool(_git(root, "status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def versions() -> dict[str, str | None]:
    from mlbench import __version__

    out: dict[str, str | None] = {"python": platform.python_version(), "mlbench": __version__}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_manifest(*, experiment: str, experiment_version: int, run_id: str, device: dict[str, Any],
                 determinism: dict[str, Any]) -> dict[str, Any]:
    return {
        "experiment": experiment,
        "experiment_version": experiment_version,
        "run_id": run_id,
        "status": "running",
        "versions": versions(),
        "git": git_state(),
        "host": {"name": platform.node(), "platform": platform.platform(),
                 "machine": platform.machine(), "cpu_count": os.cpu_count()},
        "device": device,
        "determinism": determinism,
        "command": sys.argv[:],
        "pid": os.getpid(),
        "started": now(),
        "ended": None,
        "resumed_units": [],
        "error": None,
    }


def read_status(run_dir: Path) -> str | None:
    """The run's status from its manifest; None if there is no manifest yet."""
    path = run_dir / "manifest.json"
    if not path.exists():
        return None
    manifest = read_json(path)
    status = manifest.get("status") if isinstance(manifest, dict) else None
    if status not in STATUSES:
        raise RunStoreError(f"unknown status {status!r} in {path}")
    return status
